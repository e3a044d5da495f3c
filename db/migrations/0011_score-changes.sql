-- A finding keeps its latest change of tier or due date; only superseded changes are rows of their
-- own (score_changes, the former score_history table, whose rows all stay valid). score_history and
-- exposure_events become views over both.
DROP VIEW "exposure_events";--> statement-breakpoint
ALTER TABLE "score_history" RENAME TO "score_changes";--> statement-breakpoint
ALTER SEQUENCE "score_history_id_seq" RENAME TO "score_changes_id_seq";--> statement-breakpoint
ALTER TABLE "score_changes" RENAME CONSTRAINT "score_history_pkey" TO "score_changes_pkey";--> statement-breakpoint
ALTER INDEX "score_history_finding_idx" RENAME TO "score_changes_finding_idx";--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "change_id" bigint;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "changed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "change_reason" text;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "change_policy" text;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "previous_tier" text;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "previous_due_at" timestamp with time zone;--> statement-breakpoint
CREATE VIEW "score_history" AS
SELECT "id", "finding_id", "asset_id", "old_tier", "tier", "score", "old_due_at", "due_at", "policy_version",
       "explanation_vuln", "explanation_asset", "explanation_context", "reason", "at"
FROM "score_changes"
UNION ALL
SELECT "change_id", "id", "asset_id", "previous_tier", "tier", "score", "previous_due_at", "due_at", "change_policy",
       "explanation_vuln", "explanation_asset", "explanation_context", "change_reason", "changed_at"
FROM "findings" WHERE "change_id" IS NOT NULL;--> statement-breakpoint
CREATE VIEW "exposure_events" AS
SELECT "id", "finding_id", "asset_id", "old_tier", "tier" AS "new_tier", "old_due_at", "due_at" AS "new_due_at", "reason", "at"
FROM "score_history";--> statement-breakpoint
CREATE FUNCTION "explanation"("score_history") RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT explanation_assemble((SELECT body FROM explanation_parts WHERE id = $1.explanation_vuln),
                              (SELECT body FROM explanation_parts WHERE id = $1.explanation_asset),
                              (SELECT body FROM explanation_parts WHERE id = $1.explanation_context),
                              (SELECT component FROM findings WHERE id = $1.finding_id), $1.score)
$$;--> statement-breakpoint
-- A complete rescan no longer rewrites source rows (source_coverage says when they were last seen):
-- they need little free room per page, and a million of them half as many pages.
ALTER TABLE "finding_sources" SET (fillfactor = 90);--> statement-breakpoint
-- A scored finding is ~40% wider than a new one (tier, score, due date, explanation part ids, latest
-- change): for the scoring update to stay on the page (HOT) the page must hold both versions of every
-- row, first as new and scored, then as scored and rescored.
ALTER TABLE "findings" SET (fillfactor = 30);
