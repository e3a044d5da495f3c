DROP INDEX "tickets_owner_idx";--> statement-breakpoint
CREATE INDEX "assets_name_idx" ON "assets" USING btree ("name","id");--> statement-breakpoint
CREATE INDEX "findings_list_idx" ON "findings" USING btree ("status",(-coalesce("score", '-Infinity'::float8)),coalesce("due_at", 'infinity'::timestamptz),"id");--> statement-breakpoint
CREATE INDEX "findings_list_tier_idx" ON "findings" USING btree ("status","tier",(-coalesce("score", '-Infinity'::float8)),coalesce("due_at", 'infinity'::timestamptz),"id");--> statement-breakpoint
CREATE INDEX "findings_component_idx" ON "findings" USING btree ("component" text_pattern_ops) WHERE "findings"."status" = 'open';--> statement-breakpoint
CREATE INDEX "tickets_due_idx" ON "tickets" USING btree ("due_at","key");--> statement-breakpoint
CREATE INDEX "tickets_state_due_idx" ON "tickets" USING btree ("state","due_at","key");--> statement-breakpoint
CREATE INDEX "tickets_owner_idx" ON "tickets" USING btree ("owner","due_at","key");