CREATE TABLE "validation_evidence" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"evidence_key" text NOT NULL,
	"asset_id" bigint NOT NULL,
	"vulnerability" text NOT NULL,
	"result" text NOT NULL,
	"tool" text NOT NULL,
	"source" text NOT NULL,
	"target" text,
	"port" text,
	"tested_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"detail" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "validation_evidence_evidence_key_unique" UNIQUE("evidence_key")
);
--> statement-breakpoint
CREATE TABLE "validation_runs" (
	"id" text PRIMARY KEY NOT NULL,
	"scope" text NOT NULL,
	"trigger" text NOT NULL,
	"requested_by" text,
	"status" text DEFAULT 'running' NOT NULL,
	"results" jsonb,
	"error" text,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "compensating_controls" ADD COLUMN "verification" text DEFAULT 'unverified' NOT NULL;--> statement-breakpoint
ALTER TABLE "compensating_controls" ADD COLUMN "verified_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "compensating_controls" ADD COLUMN "verification_detail" jsonb;--> statement-breakpoint
ALTER TABLE "validation_evidence" ADD CONSTRAINT "validation_evidence_asset_id_assets_id_fk" FOREIGN KEY ("asset_id") REFERENCES "public"."assets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "validation_evidence_pair_idx" ON "validation_evidence" USING btree ("asset_id","vulnerability");--> statement-breakpoint
CREATE INDEX "validation_evidence_expiry_idx" ON "validation_evidence" USING btree ("expires_at");