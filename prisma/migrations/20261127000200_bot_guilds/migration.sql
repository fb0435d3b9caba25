-- Every guild the bot has seen, so startup reconciliation applies the join rules only to
-- guilds never seen before (a deliberately unregistered guild is not re-mapped on restart).
CREATE TABLE IF NOT EXISTS bot_guilds (
  guild_id      text PRIMARY KEY,
  first_seen_at timestamptz(6) NOT NULL DEFAULT now(),
  left_at       timestamptz(6),
  CONSTRAINT bot_guilds_guild_id_format CHECK (guild_id ~ '^[0-9]{17,20}$')
);
