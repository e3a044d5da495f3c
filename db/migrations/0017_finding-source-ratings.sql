-- 0016's snapshot (and db/schema.ts) declare each source's rating on finding_sources, but its SQL
-- never added the columns; written by hand since drizzle-kit sees no difference to generate.
ALTER TABLE "finding_sources" ADD COLUMN IF NOT EXISTS "severity" text;--> statement-breakpoint
ALTER TABLE "finding_sources" ADD COLUMN IF NOT EXISTS "cvss_score" real;--> statement-breakpoint
ALTER TABLE "finding_sources" ADD COLUMN IF NOT EXISTS "cvss_vector" text;
