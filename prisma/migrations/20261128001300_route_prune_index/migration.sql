-- The prune ran `changed_at < clock_timestamp() - p_keep`: a volatile expression is evaluated per row,
-- so the changed_at index could not be used and every sweeper pass scanned the whole change log
-- (1 ms at 5,000 rows here, growing with it). The cutoff is now computed once, as a plain value.
CREATE OR REPLACE FUNCTION prune_sandbox_route_changes(p_keep interval DEFAULT interval '1 hour') RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  n integer;
  cutoff timestamptz := clock_timestamp() - p_keep;
BEGIN
  DELETE FROM sandbox_route_change
   WHERE changed_at < cutoff
     AND version < (SELECT max(version) FROM sandbox_route_change);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END;
$$;
REVOKE EXECUTE ON FUNCTION prune_sandbox_route_changes(interval) FROM PUBLIC;
