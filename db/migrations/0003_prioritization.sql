CREATE TABLE "compensating_controls" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"mitigates" jsonb NOT NULL,
	"applies_to" jsonb NOT NULL,
	"effect" text NOT NULL,
	"description" text,
	"expires_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "compensating_controls_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "exposure_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"finding_id" bigint NOT NULL,
	"asset_id" bigint NOT NULL,
	"old_tier" text,
	"new_tier" text NOT NULL,
	"old_due_at" timestamp with time zone,
	"new_due_at" timestamp with time zone,
	"reason" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "noise_snapshots" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"scope" text NOT NULL,
	"counts" jsonb NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "policies" (
	"version" text PRIMARY KEY NOT NULL,
	"document" jsonb NOT NULL,
	"status" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"activated_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "scopes" (
	"name" text PRIMARY KEY NOT NULL,
	"selector" jsonb NOT NULL,
	"description" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "score_history" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"finding_id" bigint NOT NULL,
	"tier" text NOT NULL,
	"score" double precision NOT NULL,
	"due_at" timestamp with time zone,
	"policy_version" text NOT NULL,
	"explanation" jsonb,
	"reason" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "epss_scores" DROP CONSTRAINT "epss_scores_pkey";--> statement-breakpoint
ALTER TABLE "kev_entries" DROP CONSTRAINT "kev_entries_pkey";--> statement-breakpoint
ALTER TABLE "epss_scores" ADD CONSTRAINT "epss_scores_feed_version_cve_pk" PRIMARY KEY("feed_version","cve");--> statement-breakpoint
ALTER TABLE "kev_entries" ADD CONSTRAINT "kev_entries_feed_version_cve_pk" PRIMARY KEY("feed_version","cve");--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "cvss_vector" text;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "cwes" text[];--> statement-breakpoint
ALTER TABLE "intel_feeds" ADD COLUMN "status" text DEFAULT 'active' NOT NULL;--> statement-breakpoint
ALTER TABLE "intel_feeds" ADD COLUMN "published_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "intel_feeds" ADD COLUMN "origin" text;--> statement-breakpoint
ALTER TABLE "intel_feeds" ADD COLUMN "validation" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "intel_feeds" ADD COLUMN "activated_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "exposure_events" ADD CONSTRAINT "exposure_events_finding_id_findings_id_fk" FOREIGN KEY ("finding_id") REFERENCES "public"."findings"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "score_history" ADD CONSTRAINT "score_history_finding_id_findings_id_fk" FOREIGN KEY ("finding_id") REFERENCES "public"."findings"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "exposure_events_at_idx" ON "exposure_events" USING btree ("at");--> statement-breakpoint
CREATE INDEX "noise_snapshots_scope_idx" ON "noise_snapshots" USING btree ("scope","at");--> statement-breakpoint
CREATE INDEX "score_history_finding_idx" ON "score_history" USING btree ("finding_id","at");