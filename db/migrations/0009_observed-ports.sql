CREATE TABLE "observed_ports" (
	"asset_id" bigint NOT NULL,
	"source" text NOT NULL,
	"port" text NOT NULL,
	"scan_id" uuid NOT NULL,
	"observed_at" timestamp with time zone NOT NULL,
	CONSTRAINT "observed_ports_asset_id_source_port_pk" PRIMARY KEY("asset_id","source","port")
);
--> statement-breakpoint
ALTER TABLE "scans" ADD COLUMN "vantage" text;--> statement-breakpoint
ALTER TABLE "observed_ports" ADD CONSTRAINT "observed_ports_asset_id_assets_id_fk" FOREIGN KEY ("asset_id") REFERENCES "public"."assets"("id") ON DELETE no action ON UPDATE no action;