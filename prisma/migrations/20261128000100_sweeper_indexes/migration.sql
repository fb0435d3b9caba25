-- One partial index per sweeper selection, matching its predicate and order, so that an idle
-- pass reads an empty index range whatever the table size. Idempotent; PostgreSQL 15 and PGlite.

-- Expiry DMs: running, not yet warned, expiring within the horizon (ordered by expires_at).
CREATE INDEX IF NOT EXISTS idx_sandboxes_expiry_notice ON sandboxes (expires_at)
  WHERE status = 'running' AND expiry_notified_at IS NULL;

-- Stuck creates: pending/creating rows by how long they have been so.
CREATE INDEX IF NOT EXISTS idx_sandboxes_stuck_create ON sandboxes (status_changed_at)
  WHERE status IN ('pending', 'creating');

-- Teardown retries: destroying rows, oldest first.
CREATE INDEX IF NOT EXISTS idx_sandboxes_destroying ON sandboxes (status_changed_at)
  WHERE status = 'destroying';

-- Failed rows to clean up, oldest first.
CREATE INDEX IF NOT EXISTS idx_sandboxes_failed ON sandboxes (status_changed_at)
  WHERE status = 'failed';

-- Drift checks walk running/expired rows in id order, a slice per pass (keyset on id).
CREATE INDEX IF NOT EXISTS idx_sandboxes_drift ON sandboxes (id)
  WHERE status IN ('running', 'expired');

-- Orphan lookup probes live rows by schema name.
CREATE INDEX IF NOT EXISTS idx_sandboxes_live_schema ON sandboxes (schema_name)
  WHERE status <> 'destroyed';
