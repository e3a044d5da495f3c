CREATE TABLE "asset_merges" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"survivor_id" bigint NOT NULL,
	"merged_id" bigint NOT NULL,
	"reason" jsonb NOT NULL,
	"moved" jsonb NOT NULL,
	"merged_at" timestamp with time zone DEFAULT now() NOT NULL,
	"undone_at" timestamp with time zone,
	"undone_by" text
);
--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "merged_into" bigint;--> statement-breakpoint
ALTER TABLE "asset_merges" ADD CONSTRAINT "asset_merges_survivor_id_assets_id_fk" FOREIGN KEY ("survivor_id") REFERENCES "public"."assets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "asset_merges" ADD CONSTRAINT "asset_merges_merged_id_assets_id_fk" FOREIGN KEY ("merged_id") REFERENCES "public"."assets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "asset_merges_survivor_idx" ON "asset_merges" USING btree ("survivor_id");--> statement-breakpoint
CREATE INDEX "asset_merges_merged_idx" ON "asset_merges" USING btree ("merged_id");