-- Create's first commit in ONE statement (#5): the owner's advisory key, then the installation-wide
-- key of the global cap (SANDBOX_MAX_TOTAL), then the checks and the insert. A PL/pgSQL function
-- (not one SQL statement) because each of its statements takes a fresh snapshot after the locks
-- were granted, so the counts see every create that committed while this one waited: the limits
-- stay exact under concurrency. Called outside any transaction block, the statement is its own
-- transaction: no BEGIN/COMMIT round trips, and the global key is held only while it runs.
-- Returns either the new row's schema name, or why nothing was inserted (checked in this order):
-- 'owner_limit' (r_count = the owner's counted sandboxes), 'total_limit', 'guild_mapped'
-- (r_guild_id and the sandbox it is mapped to). Idempotent; PostgreSQL 15 and PGlite.
CREATE OR REPLACE FUNCTION sandbox_insert_creating(
  p_id uuid, p_name text, p_owner text, p_now timestamptz, p_expires_at timestamptz, p_metadata jsonb,
  p_actor text, p_audit jsonb, p_counted sandbox_status[], p_owner_cap int, p_free_guilds text[],
  p_max_total int, p_async_commit boolean)
RETURNS TABLE (r_schema_name text, r_refused text, r_count int, r_guild_id text, r_mapped_name text)
LANGUAGE plpgsql AS $$
DECLARE
  v_count int;
  v_schema text;
  v_guild text;
  v_mapped text;
BEGIN
  -- The same keys, in the same order, as lockKey(`owner:<owner>`) then lockKey('sandboxes:total').
  PERFORM pg_advisory_xact_lock(hashtextextended('owner:' || p_owner, 0));
  -- Only when nothing outside the database is made before the provisioning commit (see create.ts).
  IF p_async_commit THEN PERFORM set_config('synchronous_commit', 'off', true); END IF;
  IF p_max_total IS NOT NULL THEN PERFORM pg_advisory_xact_lock(hashtextextended('sandboxes:total', 0)); END IF;

  SELECT count(*)::int INTO v_count FROM (
    SELECT 1 FROM sandboxes s WHERE s.owner = p_owner AND s.status = ANY(p_counted) LIMIT p_owner_cap) c;
  IF v_count >= p_owner_cap THEN
    RETURN QUERY SELECT NULL::text, 'owner_limit'::text, v_count, NULL::text, NULL::text;
    RETURN;
  END IF;

  IF p_max_total IS NOT NULL THEN
    SELECT count(*)::int INTO v_count FROM (
      SELECT 1 FROM sandboxes s WHERE s.status = ANY(p_counted) LIMIT p_max_total) t;
    IF v_count >= p_max_total THEN
      RETURN QUERY SELECT NULL::text, 'total_limit'::text, v_count, NULL::text, NULL::text;
      RETURN;
    END IF;
  END IF;

  IF cardinality(p_free_guilds) > 0 THEN
    SELECT m.guild_id, s.name INTO v_guild, v_mapped
    FROM sandbox_guild_mapping m JOIN sandboxes s ON s.id = m.sandbox_id
    WHERE m.guild_id = ANY(p_free_guilds) LIMIT 1;
    IF v_guild IS NOT NULL THEN
      RETURN QUERY SELECT NULL::text, 'guild_mapped'::text, NULL::int, v_guild, v_mapped;
      RETURN;
    END IF;
  END IF;

  INSERT INTO sandboxes (id, name, owner, status, schema_name, created_at, expires_at, last_activity_at, status_changed_at, metadata)
  VALUES (p_id, p_name, p_owner, 'creating', sandbox_schema_name(p_id), p_now, p_expires_at, p_now, p_now, p_metadata)
  RETURNING sandboxes.schema_name INTO v_schema;
  -- The `created` audit row, where the chain of status_changed rows starts (it records `status`).
  INSERT INTO sandbox_audit_log (sandbox_id, event_type, actor, details, created_at)
  VALUES (p_id, 'created', p_actor, p_audit || jsonb_build_object('schemaName', v_schema, 'status', 'creating'), p_now);
  RETURN QUERY SELECT v_schema, NULL::text, NULL::int, NULL::text, NULL::text;
END
$$;

REVOKE EXECUTE ON FUNCTION sandbox_insert_creating(uuid, text, text, timestamptz, timestamptz, jsonb, text, jsonb, sandbox_status[], int, text[], int, boolean) FROM PUBLIC;
