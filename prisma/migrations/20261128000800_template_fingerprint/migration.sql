-- The exact state of a schema's catalog rows, for the clone DDL cache (src/sandbox/template/template.ts):
-- every row (oid or key, and xmin) of the catalogs the DDL generator reads or refuses, for objects in the
-- schema. Any DDL on them writes new row versions (a new xmin) or adds/removes rows, so an unchanged
-- fingerprint means an unchanged structure; OIDs make it specific to this schema. NULL when the schema
-- does not exist. PL/pgSQL, so its plan is cached per connection. Idempotent; PostgreSQL 15 and PGlite.
CREATE OR REPLACE FUNCTION sandbox_schema_fingerprint(p_schema text) RETURNS text
LANGUAGE plpgsql STABLE STRICT
AS $fn$
BEGIN
  RETURN (
  WITH ns AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = p_schema),
  rel AS (SELECT c.oid, c.xmin FROM pg_catalog.pg_class c, ns WHERE c.relnamespace = ns.oid),
  typ AS (SELECT t.oid, t.xmin FROM pg_catalog.pg_type t, ns WHERE t.typnamespace = ns.oid),
  con AS (SELECT k.oid, k.xmin FROM pg_catalog.pg_constraint k, ns WHERE k.connamespace = ns.oid),
  rows AS (
    SELECT 'c' || oid || ':' || xmin AS r FROM rel
    UNION ALL SELECT 't' || oid || ':' || xmin FROM typ
    UNION ALL SELECT 'k' || oid || ':' || xmin FROM con
    UNION ALL SELECT 'a' || a.attrelid || '.' || a.attnum || ':' || a.xmin FROM pg_catalog.pg_attribute a JOIN rel ON rel.oid = a.attrelid AND a.attnum > 0
    UNION ALL SELECT 'd' || d.oid || ':' || d.xmin FROM pg_catalog.pg_attrdef d JOIN rel ON rel.oid = d.adrelid
    UNION ALL SELECT 'i' || i.indexrelid || ':' || i.xmin FROM pg_catalog.pg_index i JOIN rel ON rel.oid = i.indrelid
    UNION ALL SELECT 's' || q.seqrelid || ':' || q.xmin FROM pg_catalog.pg_sequence q JOIN rel ON rel.oid = q.seqrelid
    UNION ALL SELECT 'e' || e.oid || ':' || e.xmin FROM pg_catalog.pg_enum e JOIN typ ON typ.oid = e.enumtypid
    UNION ALL SELECT 'm' || x.objoid || '.' || x.classoid || '.' || x.objsubid || ':' || x.xmin FROM pg_catalog.pg_description x
      WHERE x.objoid IN (SELECT oid FROM rel UNION ALL SELECT oid FROM typ UNION ALL SELECT oid FROM con)
    -- Sequence ownership (OWNED BY, identity): the only dependency that changes without another catalog row.
    UNION ALL SELECT 'p' || d.objid || '>' || d.refobjid || '.' || d.refobjsubid || d.deptype::text
      FROM pg_catalog.pg_depend d JOIN rel ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = rel.oid AND d.deptype IN ('a', 'i')
    UNION ALL SELECT 'f' || f.oid || ':' || f.xmin FROM pg_catalog.pg_proc f, ns WHERE f.pronamespace = ns.oid
    UNION ALL SELECT 'g' || g.oid || ':' || g.xmin FROM pg_catalog.pg_trigger g JOIN rel ON rel.oid = g.tgrelid
    UNION ALL SELECT 'r' || w.oid || ':' || w.xmin FROM pg_catalog.pg_rewrite w JOIN rel ON rel.oid = w.ev_class
    UNION ALL SELECT 'o' || y.oid || ':' || y.xmin FROM pg_catalog.pg_policy y JOIN rel ON rel.oid = y.polrelid
    UNION ALL SELECT 'h' || h.inhrelid || '.' || h.inhparent || ':' || h.xmin FROM pg_catalog.pg_inherits h JOIN rel ON rel.oid = h.inhrelid
    UNION ALL SELECT 'x' || z.oid || ':' || z.xmin FROM pg_catalog.pg_statistic_ext z, ns WHERE z.stxnamespace = ns.oid
  )
  SELECT CASE WHEN (SELECT oid FROM ns) IS NULL THEN NULL ELSE pg_catalog.md5(coalesce(string_agg(r, ',' ORDER BY r), '')) END FROM rows
  );
END
$fn$;

-- Clone in one call when the caller has the source's generated statements for its current
-- fingerprint: builds p_target from p_statements only if p_fingerprint is the source's fingerprint
-- now. Returns the source's fingerprint (NULL: the source schema does not exist; nothing built).
-- The caller knows it built when the returned fingerprint equals the one it passed with statements;
-- otherwise it regenerates the statements from the catalog and builds with sandbox_build_schema.
CREATE OR REPLACE FUNCTION sandbox_clone_if_unchanged(p_source text, p_target text, p_fingerprint text, p_statements jsonb)
RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
  fp text := sandbox_schema_fingerprint(p_source);
BEGIN
  IF fp IS NOT NULL AND p_fingerprint IS NOT NULL AND p_statements IS NOT NULL AND fp = p_fingerprint THEN
    PERFORM sandbox_build_schema(p_target, p_statements);
  END IF;
  RETURN fp;
END
$fn$;
