-- Placement (#10): the database server that holds a sandbox's schema (and its role). `default` is
-- the control server itself; other names come from SANDBOX_DATABASE_SERVERS. Existing rows were
-- all made on the control server, so the column's default backfills them (a constant default is a
-- catalog-only change). PostgreSQL 15 and PGlite.
ALTER TABLE sandboxes ADD COLUMN IF NOT EXISTS server text NOT NULL DEFAULT 'default';
ALTER TABLE sandboxes DROP CONSTRAINT IF EXISTS sandboxes_server_name;
ALTER TABLE sandboxes ADD CONSTRAINT sandboxes_server_name CHECK (server ~ '^[a-z0-9_-]{1,32}$');

-- Live sandboxes per server (placement counts them; an index-only range per server), and the
-- per-server drift slices (missing schemas, missing roles) in id order.
CREATE INDEX IF NOT EXISTS idx_sandboxes_live_server ON sandboxes (server, id) WHERE status <> 'destroyed';

-- Create's first commit now also places the sandbox: among p_servers (the servers that are up, in
-- the configured order, `default` first), the one with the fewest live sandboxes; ties go to the
-- first. With more than one candidate the count runs under one more installation-wide key
-- ('sandboxes:placement', after the owner's and the global cap's), so concurrent creates see each
-- other's rows and the split stays even. With one candidate (a single server, or a clone, which
-- goes on its source's server) nothing is counted. The server is recorded on the row, in this
-- commit, before any DDL. Everything else is as in 20261128001000_insert_creating.
DROP FUNCTION IF EXISTS sandbox_insert_creating(uuid, text, text, timestamptz, timestamptz, jsonb, text, jsonb, sandbox_status[], int, text[], int, boolean);
CREATE OR REPLACE FUNCTION sandbox_insert_creating(
  p_id uuid, p_name text, p_owner text, p_now timestamptz, p_expires_at timestamptz, p_metadata jsonb,
  p_actor text, p_audit jsonb, p_counted sandbox_status[], p_owner_cap int, p_free_guilds text[],
  p_max_total int, p_async_commit boolean, p_servers text[])
RETURNS TABLE (r_schema_name text, r_refused text, r_count int, r_guild_id text, r_mapped_name text, r_server text)
LANGUAGE plpgsql AS $$
DECLARE
  v_count int;
  v_schema text;
  v_guild text;
  v_mapped text;
  v_server text;
BEGIN
  IF cardinality(p_servers) IS NULL OR cardinality(p_servers) = 0 THEN
    RAISE EXCEPTION 'no database server to place the sandbox on' USING ERRCODE = '22023';
  END IF;
  -- The same keys, in the same order, as lockKey(`owner:<owner>`) then lockKey('sandboxes:total').
  PERFORM pg_advisory_xact_lock(hashtextextended('owner:' || p_owner, 0));
  -- Only when nothing outside the database is made before the provisioning commit (see create.ts).
  IF p_async_commit THEN PERFORM set_config('synchronous_commit', 'off', true); END IF;
  IF p_max_total IS NOT NULL THEN PERFORM pg_advisory_xact_lock(hashtextextended('sandboxes:total', 0)); END IF;

  SELECT count(*)::int INTO v_count FROM (
    SELECT 1 FROM sandboxes s WHERE s.owner = p_owner AND s.status = ANY(p_counted) LIMIT p_owner_cap) c;
  IF v_count >= p_owner_cap THEN
    RETURN QUERY SELECT NULL::text, 'owner_limit'::text, v_count, NULL::text, NULL::text, NULL::text;
    RETURN;
  END IF;

  IF p_max_total IS NOT NULL THEN
    SELECT count(*)::int INTO v_count FROM (
      SELECT 1 FROM sandboxes s WHERE s.status = ANY(p_counted) LIMIT p_max_total) t;
    IF v_count >= p_max_total THEN
      RETURN QUERY SELECT NULL::text, 'total_limit'::text, v_count, NULL::text, NULL::text, NULL::text;
      RETURN;
    END IF;
  END IF;

  IF cardinality(p_free_guilds) > 0 THEN
    SELECT m.guild_id, s.name INTO v_guild, v_mapped
    FROM sandbox_guild_mapping m JOIN sandboxes s ON s.id = m.sandbox_id
    WHERE m.guild_id = ANY(p_free_guilds) LIMIT 1;
    IF v_guild IS NOT NULL THEN
      RETURN QUERY SELECT NULL::text, 'guild_mapped'::text, NULL::int, v_guild, v_mapped, NULL::text;
      RETURN;
    END IF;
  END IF;

  IF cardinality(p_servers) = 1 THEN
    v_server := p_servers[1];
  ELSE
    PERFORM pg_advisory_xact_lock(hashtextextended('sandboxes:placement', 0));
    SELECT u.name INTO v_server
    FROM unnest(p_servers) WITH ORDINALITY AS u(name, ord)
    ORDER BY (SELECT count(*) FROM sandboxes s WHERE s.server = u.name AND s.status <> 'destroyed'), u.ord
    LIMIT 1;
  END IF;

  INSERT INTO sandboxes (id, name, owner, status, schema_name, created_at, expires_at, last_activity_at, status_changed_at, metadata, server)
  VALUES (p_id, p_name, p_owner, 'creating', sandbox_schema_name(p_id), p_now, p_expires_at, p_now, p_now, p_metadata, v_server)
  RETURNING sandboxes.schema_name INTO v_schema;
  -- The `created` audit row, where the chain of status_changed rows starts (it records `status`).
  INSERT INTO sandbox_audit_log (sandbox_id, event_type, actor, details, created_at)
  VALUES (p_id, 'created', p_actor, p_audit || jsonb_build_object('schemaName', v_schema, 'status', 'creating')
    || CASE WHEN v_server = 'default' THEN '{}'::jsonb ELSE jsonb_build_object('server', v_server) END, p_now);
  RETURN QUERY SELECT v_schema, NULL::text, NULL::int, NULL::text, NULL::text, v_server;
END
$$;

REVOKE EXECUTE ON FUNCTION sandbox_insert_creating(uuid, text, text, timestamptz, timestamptz, jsonb, text, jsonb, sandbox_status[], int, text[], int, boolean, text[]) FROM PUBLIC;
