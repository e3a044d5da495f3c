-- The audit trail is append-only in the database too, not only in access/audit-trail.ts: an entry
-- cannot be changed, and only the retention step deletes, inside a transaction that has said so
-- (`set local ctem.audit_prune = 'on'`, access/audit-trail.ts pruneAudit). TRUNCATE is refused
-- outright. A superuser can still disable the trigger; the hash chain is what catches that.
CREATE OR REPLACE FUNCTION audit_log_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND coalesce(current_setting('ctem.audit_prune', true), '') = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'entries are removed only by the retention step (CTEM_AUDIT_RETENTION)';
END;
$$;
