CREATE TABLE "finding_sources" (
	"finding_id" bigint NOT NULL,
	"source" text NOT NULL,
	"present" boolean DEFAULT true NOT NULL,
	"vendor_status" text,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_scan_id" uuid NOT NULL,
	CONSTRAINT "finding_sources_finding_id_source_pk" PRIMARY KEY("finding_id","source")
);
--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "vendor_status" text;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "closed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "closed_reason" text;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "closed_by_scan_id" uuid;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "reopen_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "scans" ADD COLUMN "complete" boolean;--> statement-breakpoint
ALTER TABLE "finding_sources" ADD CONSTRAINT "finding_sources_finding_id_findings_id_fk" FOREIGN KEY ("finding_id") REFERENCES "public"."findings"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "finding_sources_source_idx" ON "finding_sources" USING btree ("source","present");