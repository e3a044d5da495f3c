ALTER TABLE "scans" ADD COLUMN "strict" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "scans" ADD COLUMN "warnings" jsonb DEFAULT '[]'::jsonb NOT NULL;