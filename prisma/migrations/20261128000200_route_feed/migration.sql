-- Route feed: every change to sandbox_guild_mapping bumps one route version, is logged with that version, and is
-- announced with NOTIFY, all inside the changing transaction. The version lives in one row, bumped with
-- UPDATE ... SET version = version + 1: the row lock is held to commit, so commit order == version order and the
-- versions a reader can see are always a gap-free prefix. Routing processes hold the whole map in memory and apply
-- the log rows newer than their version (see src/routing/route-table.ts).

CREATE TABLE IF NOT EXISTS sandbox_route_version (
  id      boolean PRIMARY KEY DEFAULT true,
  version bigint NOT NULL DEFAULT 0,
  CONSTRAINT sandbox_route_version_single_row CHECK (id)
);
INSERT INTO sandbox_route_version (id, version) VALUES (true, 0) ON CONFLICT (id) DO NOTHING;

-- One row per mapping change; sandbox_id NULL means the guild is unmapped as of that version.
CREATE TABLE IF NOT EXISTS sandbox_route_change (
  version    bigint PRIMARY KEY,
  guild_id   text NOT NULL,
  sandbox_id uuid,
  changed_at timestamptz(6) NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS idx_sandbox_route_change_changed_at ON sandbox_route_change (changed_at);

CREATE OR REPLACE FUNCTION sandbox_route_record(p_guild text, p_sandbox uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v bigint;
  at timestamptz := clock_timestamp();
BEGIN
  UPDATE sandbox_route_version SET version = version + 1 WHERE id RETURNING version INTO v;
  IF v IS NULL THEN
    INSERT INTO sandbox_route_version (id, version) VALUES (true, 1) RETURNING version INTO v;
  END IF;
  INSERT INTO sandbox_route_change (version, guild_id, sandbox_id, changed_at) VALUES (v, p_guild, p_sandbox, at);
  -- Delivered at commit, to every listener; t is milliseconds since the epoch of the change (the commit is moments later).
  PERFORM pg_notify('sandbox_routes', json_build_object('v', v, 't', floor(extract(epoch FROM at) * 1000))::text);
END;
$$;

CREATE OR REPLACE FUNCTION sandbox_route_feed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM sandbox_route_record(NEW.guild_id, NEW.sandbox_id);
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM sandbox_route_record(OLD.guild_id, NULL);
  ELSE
    IF OLD.guild_id IS DISTINCT FROM NEW.guild_id THEN
      PERFORM sandbox_route_record(OLD.guild_id, NULL);
      PERFORM sandbox_route_record(NEW.guild_id, NEW.sandbox_id);
    ELSIF OLD.sandbox_id IS DISTINCT FROM NEW.sandbox_id THEN
      PERFORM sandbox_route_record(NEW.guild_id, NEW.sandbox_id);
    END IF;
  END IF;
  RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS sandbox_guild_mapping_route_feed ON sandbox_guild_mapping;
CREATE TRIGGER sandbox_guild_mapping_route_feed
  AFTER INSERT OR UPDATE OR DELETE ON sandbox_guild_mapping
  FOR EACH ROW EXECUTE FUNCTION sandbox_route_feed();

-- Deletes change rows older than p_keep (never the newest one). A process that falls behind the pruned log sees a
-- gap and reloads the whole table. Returns the number of rows deleted.
CREATE OR REPLACE FUNCTION prune_sandbox_route_changes(p_keep interval DEFAULT interval '1 hour') RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  DELETE FROM sandbox_route_change
   WHERE changed_at < clock_timestamp() - p_keep
     AND version < (SELECT max(version) FROM sandbox_route_change);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END;
$$;
