CREATE TABLE "escalation_digests" (
	"key" text PRIMARY KEY NOT NULL,
	"manager" text NOT NULL,
	"round_at" timestamp with time zone NOT NULL,
	"ticket_keys" text[] NOT NULL,
	"sent_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "escalations" ADD COLUMN "digest_key" text;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "ecosystem" text;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "package_class" text;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "manifest" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "source_package" text;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "fix_source" text;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "escalation_peak" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "escalation_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "last_escalated_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "action" text DEFAULT 'package' NOT NULL;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "orphan_reason" text;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "itsm" text DEFAULT 'servicenow' NOT NULL;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "external_url" text;--> statement-breakpoint
CREATE INDEX "escalations_undigested_idx" ON "escalations" USING btree ("notified_user") WHERE "escalations"."digest_key" is null;--> statement-breakpoint
CREATE INDEX "tickets_orphan_idx" ON "tickets" USING btree ("orphan_reason") WHERE "tickets"."orphan_reason" is not null;--> statement-breakpoint
-- Escalations sent before digests existed were told one by one: no digest owes them.
UPDATE "escalations" SET "digest_key" = 'sent-before-digests' WHERE "digest_key" IS NULL;--> statement-breakpoint
-- The escalation history tickets had: their peak, count and latest escalation.
UPDATE "tickets" t SET "escalation_peak" = e.peak, "escalation_count" = e.n, "last_escalated_at" = e.latest
FROM (SELECT "ticket_key", max("level") AS peak, count(*)::int AS n, max("created_at") AS latest FROM "escalations" GROUP BY "ticket_key") e
WHERE e."ticket_key" = t."key";
