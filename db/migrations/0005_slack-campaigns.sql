CREATE TABLE "campaigns" (
	"id" text PRIMARY KEY NOT NULL,
	"scope" text NOT NULL,
	"hypothesis" text,
	"requested_by" text NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"results" jsonb,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "exception_requests" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ticket_key" text NOT NULL,
	"requester" text NOT NULL,
	"reason" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"decided_by" text,
	"decided_at" timestamp with time zone,
	"channel" text,
	"message_ts" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "slack_notices" (
	"notice_id" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"channel" text,
	"message_ts" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "slack_requests" (
	"signature" text PRIMARY KEY NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "exception_requests" ADD CONSTRAINT "exception_requests_ticket_key_tickets_key_fk" FOREIGN KEY ("ticket_key") REFERENCES "public"."tickets"("key") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "exception_requests_ticket_idx" ON "exception_requests" USING btree ("ticket_key");--> statement-breakpoint
CREATE INDEX "slack_requests_received_idx" ON "slack_requests" USING btree ("received_at");