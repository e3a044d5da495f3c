CREATE TABLE "risk_acceptances" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ticket_key" text NOT NULL,
	"requester" text NOT NULL,
	"approver" text NOT NULL,
	"reason" text NOT NULL,
	"accepted_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"ended_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "risk_acceptances" ADD CONSTRAINT "risk_acceptances_ticket_key_tickets_key_fk" FOREIGN KEY ("ticket_key") REFERENCES "public"."tickets"("key") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "risk_acceptances_once_idx" ON "risk_acceptances" USING btree ("ticket_key","accepted_at","expires_at");