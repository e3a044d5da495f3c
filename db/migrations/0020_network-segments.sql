CREATE TABLE "network_flows" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"source" text NOT NULL,
	"from_segment" text NOT NULL,
	"to_segment" text NOT NULL,
	"from_cidrs" text[] NOT NULL,
	"to_cidrs" text[] NOT NULL,
	"ports" text[] NOT NULL,
	"description" text
);
--> statement-breakpoint
CREATE INDEX "network_flows_source_idx" ON "network_flows" USING btree ("source","to_segment");