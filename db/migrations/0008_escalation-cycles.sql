DROP INDEX "escalations_once_idx";--> statement-breakpoint
ALTER TABLE "escalations" ADD COLUMN "cycle" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "escalations_once_idx" ON "escalations" USING btree ("ticket_key","phase","level","cycle");