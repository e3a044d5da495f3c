CREATE TABLE "asset_identifiers" (
	"kind" text NOT NULL,
	"value" text NOT NULL,
	"asset_id" bigint NOT NULL,
	"source" text NOT NULL,
	CONSTRAINT "asset_identifiers_kind_value_pk" PRIMARY KEY("kind","value")
);
--> statement-breakpoint
CREATE TABLE "asset_relations" (
	"asset_id" bigint NOT NULL,
	"relation" text NOT NULL,
	"target_id" bigint NOT NULL,
	"source" text NOT NULL,
	CONSTRAINT "asset_relations_asset_id_relation_target_id_pk" PRIMARY KEY("asset_id","relation","target_id")
);
--> statement-breakpoint
CREATE TABLE "discovery_sources" (
	"name" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"config" jsonb NOT NULL,
	"schedule" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "exposure_rules" (
	"source" text NOT NULL,
	"security_group" text NOT NULL,
	"protocol" text NOT NULL,
	"from_port" integer NOT NULL,
	"to_port" integer NOT NULL,
	"cidr" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "reports" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"body" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "runtime_evidence" (
	"asset_id" bigint NOT NULL,
	"package" text DEFAULT '' NOT NULL,
	"version" text DEFAULT '' NOT NULL,
	"process" text DEFAULT '' NOT NULL,
	"source" text NOT NULL,
	"observed_at" timestamp with time zone NOT NULL,
	CONSTRAINT "runtime_evidence_asset_id_package_version_process_pk" PRIMARY KEY("asset_id","package","version","process")
);
--> statement-breakpoint
CREATE TABLE "scan_assets" (
	"scan_id" uuid NOT NULL,
	"asset_id" bigint NOT NULL,
	CONSTRAINT "scan_assets_scan_id_asset_id_pk" PRIMARY KEY("scan_id","asset_id")
);
--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "environment" text;--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "exposed_ports" text[];--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "public_ips" text[];--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "security_groups" text[];--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "tags" jsonb;--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "attribute_sources" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "assets" ADD COLUMN "last_scanned_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "asset_identifiers" ADD CONSTRAINT "asset_identifiers_asset_id_assets_id_fk" FOREIGN KEY ("asset_id") REFERENCES "public"."assets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "asset_relations" ADD CONSTRAINT "asset_relations_asset_id_assets_id_fk" FOREIGN KEY ("asset_id") REFERENCES "public"."assets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "asset_relations" ADD CONSTRAINT "asset_relations_target_id_assets_id_fk" FOREIGN KEY ("target_id") REFERENCES "public"."assets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runtime_evidence" ADD CONSTRAINT "runtime_evidence_asset_id_assets_id_fk" FOREIGN KEY ("asset_id") REFERENCES "public"."assets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "scan_assets" ADD CONSTRAINT "scan_assets_asset_id_assets_id_fk" FOREIGN KEY ("asset_id") REFERENCES "public"."assets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "asset_identifiers_asset_idx" ON "asset_identifiers" USING btree ("asset_id");--> statement-breakpoint
CREATE INDEX "exposure_rules_group_idx" ON "exposure_rules" USING btree ("security_group");