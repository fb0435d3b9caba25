-- Pending claims: a guild someone asked to map before the bot was in it.
-- The newest claim for a guild replaces the older one; a claim dies with its sandbox.
CREATE TABLE IF NOT EXISTS sandbox_guild_claims (
  guild_id   text PRIMARY KEY,
  sandbox_id uuid NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
  claimed_by text NOT NULL,
  created_at timestamptz(6) NOT NULL DEFAULT now(),
  CONSTRAINT sandbox_guild_claims_guild_id_format CHECK (guild_id ~ '^[0-9]{17,20}$')
);
CREATE INDEX IF NOT EXISTS idx_sandbox_guild_claims_sandbox ON sandbox_guild_claims (sandbox_id);
