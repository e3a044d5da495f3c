-- Every rescan rewrites last_seen_at / last_scan_id of each finding it reports (and of its source
-- row). With half of each page left free those updates stay on the page (HOT): no new entry in
-- any index, a fraction of the WAL. Applies to pages written from now on.
ALTER TABLE "findings" SET (fillfactor = 50);--> statement-breakpoint
ALTER TABLE "finding_sources" SET (fillfactor = 50);
