-- Hardening (#8): a guild may hold several claims, at most one per sandbox; a claim never
-- removes another. Claims expire (CLAIM_TTL_HOURS) and count against a per-user cap; a join
-- check deferred by a transient Discord error is retried a bounded number of times.
-- Idempotent; PostgreSQL 15 and PGlite.
ALTER TABLE sandbox_guild_claims DROP CONSTRAINT IF EXISTS sandbox_guild_claims_pkey;
ALTER TABLE sandbox_guild_claims ADD CONSTRAINT sandbox_guild_claims_pkey PRIMARY KEY (guild_id, sandbox_id);
ALTER TABLE sandbox_guild_claims ADD COLUMN IF NOT EXISTS expires_at timestamptz(6);
UPDATE sandbox_guild_claims SET expires_at = created_at + interval '72 hours' WHERE expires_at IS NULL;
ALTER TABLE sandbox_guild_claims ALTER COLUMN expires_at SET NOT NULL;
ALTER TABLE sandbox_guild_claims ADD COLUMN IF NOT EXISTS check_attempts integer NOT NULL DEFAULT 0;

-- Join: a guild's claims oldest first.
CREATE INDEX IF NOT EXISTS idx_sandbox_guild_claims_guild_created ON sandbox_guild_claims (guild_id, created_at);
-- Sweeper: expired claims.
CREATE INDEX IF NOT EXISTS idx_sandbox_guild_claims_expires ON sandbox_guild_claims (expires_at);
-- Per-user cap: a claimant's live claims.
CREATE INDEX IF NOT EXISTS idx_sandbox_guild_claims_claimed_by ON sandbox_guild_claims (claimed_by, expires_at);

-- The global cap (SANDBOX_MAX_TOTAL) reads idx_sandboxes_status with LIMIT cap+1; no new index.
-- Autocomplete: live sandboxes by owner and name prefix, and by name prefix for admins.
CREATE INDEX IF NOT EXISTS idx_sandboxes_live_owner_name ON sandboxes (owner, name text_pattern_ops)
  WHERE status <> 'destroyed';
CREATE INDEX IF NOT EXISTS idx_sandboxes_live_name_prefix ON sandboxes (name text_pattern_ops)
  WHERE status <> 'destroyed';
