CREATE TABLE "vulnerability_aliases" (
	"alias" text PRIMARY KEY NOT NULL,
	"canonical" text NOT NULL,
	"source" text NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "aliases" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
CREATE INDEX "vulnerability_aliases_canonical_idx" ON "vulnerability_aliases" USING btree ("canonical");--> statement-breakpoint
CREATE INDEX "findings_aliases_idx" ON "findings" USING gin ("aliases");