CREATE TABLE "hypotheses" (
	"name" text PRIMARY KEY NOT NULL,
	"statement" text NOT NULL,
	"query" jsonb NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "hypothesis_results" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"hypothesis" text NOT NULL,
	"matched" integer NOT NULL,
	"urgent" integer NOT NULL,
	"counts" jsonb NOT NULL,
	"trigger" text NOT NULL,
	"campaign_id" text,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "metric_snapshots" (
	"day" text NOT NULL,
	"scope" text NOT NULL,
	"metrics" jsonb NOT NULL,
	"taken_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "metric_snapshots_day_scope_pk" PRIMARY KEY("day","scope")
);
--> statement-breakpoint
ALTER TABLE "hypothesis_results" ADD CONSTRAINT "hypothesis_results_hypothesis_hypotheses_name_fk" FOREIGN KEY ("hypothesis") REFERENCES "public"."hypotheses"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "hypothesis_results_at_idx" ON "hypothesis_results" USING btree ("hypothesis","at");