CREATE TABLE "assets" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"asset_key" text NOT NULL,
	"kind" text NOT NULL,
	"name" text NOT NULL,
	"digest" text,
	"owner" text,
	"business_service" text,
	"criticality" text,
	"internet_facing" boolean,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "assets_asset_key_unique" UNIQUE("asset_key")
);
--> statement-breakpoint
CREATE TABLE "epss_scores" (
	"cve" text PRIMARY KEY NOT NULL,
	"epss" double precision NOT NULL,
	"percentile" double precision NOT NULL,
	"feed_version" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "escalations" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ticket_key" text NOT NULL,
	"phase" text NOT NULL,
	"level" integer NOT NULL,
	"notified_user" text,
	"notified_name" text,
	"reason" text NOT NULL,
	"ticket_noted_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "findings" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"fingerprint" text NOT NULL,
	"asset_id" bigint NOT NULL,
	"kind" text NOT NULL,
	"issue_id" text NOT NULL,
	"component" text NOT NULL,
	"version" text NOT NULL,
	"location" text DEFAULT '' NOT NULL,
	"fixed_version" text,
	"severity" text NOT NULL,
	"cvss_score" real,
	"title" text,
	"status" text DEFAULT 'open' NOT NULL,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"first_scan_id" uuid NOT NULL,
	"last_scan_id" uuid NOT NULL,
	"tier" text,
	"score" double precision,
	"due_at" timestamp with time zone,
	"explanation" jsonb,
	"scored_at" timestamp with time zone,
	"ticket_key" text,
	CONSTRAINT "findings_fingerprint_unique" UNIQUE("fingerprint")
);
--> statement-breakpoint
CREATE TABLE "intel_feeds" (
	"kind" text NOT NULL,
	"version" text NOT NULL,
	"rows" integer NOT NULL,
	"sha256" text NOT NULL,
	"imported_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "intel_feeds_kind_version_pk" PRIMARY KEY("kind","version")
);
--> statement-breakpoint
CREATE TABLE "kev_entries" (
	"cve" text PRIMARY KEY NOT NULL,
	"vendor" text,
	"product" text,
	"date_added" text,
	"due_date" text,
	"known_ransomware" boolean DEFAULT false NOT NULL,
	"feed_version" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "scans" (
	"id" uuid PRIMARY KEY NOT NULL,
	"source" text NOT NULL,
	"target" text,
	"format" text NOT NULL,
	"report_name" text NOT NULL,
	"status" text NOT NULL,
	"workflow_id" text NOT NULL,
	"report_path" text NOT NULL,
	"report_sha256" text NOT NULL,
	"report_bytes" bigint NOT NULL,
	"owner" text,
	"counts" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "ticket_events" (
	"event_id" text PRIMARY KEY NOT NULL,
	"ticket_key" text NOT NULL,
	"state" text NOT NULL,
	"payload" jsonb NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tickets" (
	"key" text PRIMARY KEY NOT NULL,
	"workflow_id" text NOT NULL,
	"asset_id" bigint NOT NULL,
	"component" text NOT NULL,
	"fixed_version" text NOT NULL,
	"owner" text,
	"state" text NOT NULL,
	"tier" text NOT NULL,
	"external_sys_id" text,
	"external_number" text,
	"ack_due_at" timestamp with time zone NOT NULL,
	"due_at" timestamp with time zone NOT NULL,
	"escalation_level" integer DEFAULT 0 NOT NULL,
	"finding_count" integer DEFAULT 0 NOT NULL,
	"acknowledged_at" timestamp with time zone,
	"resolved_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "escalations" ADD CONSTRAINT "escalations_ticket_key_tickets_key_fk" FOREIGN KEY ("ticket_key") REFERENCES "public"."tickets"("key") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "findings" ADD CONSTRAINT "findings_asset_id_assets_id_fk" FOREIGN KEY ("asset_id") REFERENCES "public"."assets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tickets" ADD CONSTRAINT "tickets_asset_id_assets_id_fk" FOREIGN KEY ("asset_id") REFERENCES "public"."assets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "escalations_once_idx" ON "escalations" USING btree ("ticket_key","phase","level");--> statement-breakpoint
CREATE INDEX "findings_asset_idx" ON "findings" USING btree ("asset_id");--> statement-breakpoint
CREATE INDEX "findings_issue_idx" ON "findings" USING btree ("issue_id");--> statement-breakpoint
CREATE INDEX "findings_tier_idx" ON "findings" USING btree ("tier") WHERE "findings"."status" = 'open';--> statement-breakpoint
CREATE INDEX "findings_ticket_idx" ON "findings" USING btree ("ticket_key");--> statement-breakpoint
CREATE INDEX "tickets_owner_idx" ON "tickets" USING btree ("owner");--> statement-breakpoint
CREATE UNIQUE INDEX "tickets_external_idx" ON "tickets" USING btree ("external_sys_id");