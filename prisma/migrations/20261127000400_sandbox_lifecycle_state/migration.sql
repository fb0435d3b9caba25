-- What the sweeper needs to remember per sandbox: the expiry DM, and destroy retries with backoff.
ALTER TABLE sandboxes ADD COLUMN IF NOT EXISTS expiry_notified_at timestamptz(6);
ALTER TABLE sandboxes ADD COLUMN IF NOT EXISTS destroy_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE sandboxes ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz(6);
CREATE INDEX IF NOT EXISTS idx_sandboxes_expired ON sandboxes (expires_at) WHERE status = 'expired';
