CREATE TABLE "explanation_parts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"body" jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "source_coverage" (
	"asset_id" bigint NOT NULL,
	"source" text NOT NULL,
	"last_complete_scan_id" uuid NOT NULL,
	"last_complete_at" timestamp with time zone NOT NULL,
	CONSTRAINT "source_coverage_asset_id_source_pk" PRIMARY KEY("asset_id","source")
);
--> statement-breakpoint
ALTER TABLE "finding_sources" DROP CONSTRAINT "finding_sources_finding_id_findings_id_fk";
--> statement-breakpoint
ALTER TABLE "findings" DROP CONSTRAINT "findings_asset_id_assets_id_fk";
--> statement-breakpoint
ALTER TABLE "score_history" DROP CONSTRAINT "score_history_finding_id_findings_id_fk";
--> statement-breakpoint
DROP INDEX "finding_sources_source_idx";--> statement-breakpoint
DROP INDEX "findings_tier_idx";--> statement-breakpoint
DROP INDEX "findings_ticket_idx";--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "explanation_vuln" uuid;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "explanation_context" uuid;--> statement-breakpoint
ALTER TABLE "score_history" ADD COLUMN "asset_id" bigint;--> statement-breakpoint
ALTER TABLE "score_history" ADD COLUMN "old_tier" text;--> statement-breakpoint
ALTER TABLE "score_history" ADD COLUMN "old_due_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "score_history" ADD COLUMN "explanation_vuln" uuid;--> statement-breakpoint
ALTER TABLE "score_history" ADD COLUMN "explanation_context" uuid;--> statement-breakpoint
CREATE INDEX "findings_ticket_idx" ON "findings" USING btree ("ticket_key") WHERE "findings"."ticket_key" is not null;--> statement-breakpoint
-- Rows written before this migration: each history row takes its asset and, from the event written
-- with it, the tier and due date it replaced; whole explanations become one part each.
UPDATE "score_history" h SET "asset_id" = f."asset_id" FROM "findings" f WHERE f."id" = h."finding_id";--> statement-breakpoint
UPDATE "score_history" h SET "old_tier" = e."old_tier", "old_due_at" = e."old_due_at"
FROM "exposure_events" e WHERE e."finding_id" = h."finding_id" AND e."at" = h."at" AND e."reason" = h."reason";--> statement-breakpoint
INSERT INTO "explanation_parts" ("id", "body")
SELECT DISTINCT md5(jsonb_build_object('factors', x."explanation")::text)::uuid, jsonb_build_object('factors', x."explanation")
FROM (SELECT "explanation" FROM "findings" WHERE "explanation" IS NOT NULL
      UNION SELECT "explanation" FROM "score_history" WHERE "explanation" IS NOT NULL) x
ON CONFLICT DO NOTHING;--> statement-breakpoint
UPDATE "findings" SET "explanation_context" = md5(jsonb_build_object('factors', "explanation")::text)::uuid WHERE "explanation" IS NOT NULL;--> statement-breakpoint
UPDATE "score_history" SET "explanation_context" = md5(jsonb_build_object('factors', "explanation")::text)::uuid WHERE "explanation" IS NOT NULL;--> statement-breakpoint
ALTER TABLE "score_history" ALTER COLUMN "asset_id" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "exposure_events" DISABLE ROW LEVEL SECURITY;--> statement-breakpoint
DROP TABLE "exposure_events" CASCADE;--> statement-breakpoint
ALTER TABLE "findings" DROP COLUMN "explanation";--> statement-breakpoint
ALTER TABLE "score_history" DROP COLUMN "explanation";--> statement-breakpoint
-- A history row is a change of tier or due date: the events mobilization reads are the same rows.
CREATE VIEW "exposure_events" AS
SELECT "id", "finding_id", "asset_id", "old_tier", "tier" AS "new_tier", "old_due_at", "due_at" AS "new_due_at", "reason", "at"
FROM "score_history";