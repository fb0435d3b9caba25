-- Enforced isolation: one PostgreSQL login role per sandbox, and the functions that manage it.
-- The role is named by the same rule as the schema (sandbox_<32 hex>), may use and create in its
-- own schema only, and learns its own sandbox's status through sandbox_self_status() without
-- reading control tables. Runs on PostgreSQL 15 and PGlite (where login roles mean little: the
-- functions only need to be creatable there; isolation is off on the embedded database).

-- The one place a role name is derived from a sandbox id: the schema's naming rule, unchanged.
CREATE OR REPLACE FUNCTION sandbox_role_name(p_sandbox_id uuid) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT sandbox_schema_name(p_sandbox_id) $fn$;

-- The one place the role-name pattern lives (a regex: '_' is a wildcard in LIKE).
CREATE OR REPLACE FUNCTION is_sandbox_role_name(p_name text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT p_name ~ '^sandbox_[0-9a-f]{32}$' $fn$;

-- Creates (or, when it exists, re-keys and re-grants) the sandbox's login role. Call it in the
-- provisioning transaction after create_sandbox_schema, and again after a reset re-creates the
-- schema. p_password may be a SCRAM-SHA-256 verifier (preferred: the password never reaches the
-- server) or clear text. The caller (the control role) needs CREATEROLE.
CREATE OR REPLACE FUNCTION create_sandbox_role(p_sandbox_id uuid, p_password text) RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
  r text := sandbox_role_name(p_sandbox_id);
  s text := sandbox_schema_name(p_sandbox_id);
  ctl text := current_schema();
BEGIN
  IF r IS NULL OR NOT is_sandbox_role_name(r) THEN
    RAISE EXCEPTION 'invalid sandbox role name %', r USING ERRCODE = '22023';
  END IF;
  IF p_password IS NULL OR length(p_password) < 32 THEN
    RAISE EXCEPTION 'sandbox role password must be at least 32 characters' USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s) THEN
    RAISE EXCEPTION 'schema % does not exist', s USING ERRCODE = '3F000';
  END IF;

  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
    EXECUTE format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD %L', r, p_password);
  ELSE
    EXECUTE format('CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD %L', r, p_password);
  END IF;

  -- A non-superuser control role (CREATEROLE) needs the role's privileges for REASSIGN/DROP OWNED at teardown.
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AND NOT pg_has_role(current_user, r, 'USAGE') THEN
    EXECUTE format('GRANT %I TO %I', r, current_user);
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);
  EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', s, r);
  EXECUTE format('GRANT ALL ON ALL TABLES IN SCHEMA %I TO %I', s, r);
  EXECUTE format('GRANT ALL ON ALL SEQUENCES IN SCHEMA %I TO %I', s, r);
  EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO %I', s, r);
  -- Tables, sequences and functions the control role (a template, a reset) creates there later.
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT ALL ON TABLES TO %I', current_user, s, r);
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT ALL ON SEQUENCES TO %I', current_user, s, r);
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT EXECUTE ON FUNCTIONS TO %I', current_user, s, r);
  EXECUTE format('GRANT EXECUTE ON FUNCTION %I.sandbox_self_status() TO %I', ctl, r);
  RETURN r;
END
$fn$;

-- Idempotent: true when a role was dropped, false when there was none. Ends the role's sessions
-- where the caller may (a worker idle in a transaction would otherwise hold locks on its tables),
-- hands anything it owns to the caller, revokes its privileges here, then drops it.
CREATE OR REPLACE FUNCTION drop_sandbox_role(p_sandbox_id uuid) RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
  r text := sandbox_role_name(p_sandbox_id);
BEGIN
  IF r IS NULL OR NOT is_sandbox_role_name(r) THEN
    RAISE EXCEPTION 'invalid sandbox role name %', r USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
    RETURN false;
  END IF;
  EXECUTE format('ALTER ROLE %I WITH NOLOGIN', r);
  BEGIN
    PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = r AND pid <> pg_backend_pid();
  EXCEPTION WHEN insufficient_privilege OR undefined_function THEN
    NULL;
  END;
  EXECUTE format('REASSIGN OWNED BY %I TO %I', r, current_user);
  EXECUTE format('DROP OWNED BY %I', r);
  EXECUTE format('DROP ROLE %I', r);
  RETURN true;
END
$fn$;

-- Re-keys a sandbox role (rotate-credentials). False when the role does not exist.
CREATE OR REPLACE FUNCTION set_sandbox_role_password(p_sandbox_id uuid, p_password text) RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
  r text := sandbox_role_name(p_sandbox_id);
BEGIN
  IF r IS NULL OR NOT is_sandbox_role_name(r) THEN
    RAISE EXCEPTION 'invalid sandbox role name %', r USING ERRCODE = '22023';
  END IF;
  IF p_password IS NULL OR length(p_password) < 32 THEN
    RAISE EXCEPTION 'sandbox role password must be at least 32 characters' USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
    RETURN false;
  END IF;
  EXECUTE format('ALTER ROLE %I WITH PASSWORD %L', r, p_password);
  RETURN true;
END
$fn$;

-- Every sandbox-pattern role on the SERVER (roles are cluster-wide: other databases' sandboxes
-- appear too), with whether it may connect to this database. For the sweeper's orphan and
-- missing passes; it removes a role only when this database has a destroyed or failed row for it.
CREATE OR REPLACE FUNCTION list_sandbox_roles()
RETURNS TABLE (sandbox_id uuid, role_name text, connects_here boolean)
LANGUAGE sql STABLE
AS $fn$
  SELECT substr(rolname, 9)::uuid, rolname::text, has_database_privilege(oid, current_database(), 'CONNECT')
  FROM pg_roles WHERE is_sandbox_role_name(rolname::text) ORDER BY rolname
$fn$;

-- The caller's own sandbox status, for a worker logged in as its sandbox role (which may read no
-- control table). NULL when the caller is not a sandbox role or its sandbox has no row.
-- SECURITY DEFINER with a fixed search_path (pg_temp last), built for the control schema.
DO $$
BEGIN
  EXECUTE format($def$
    CREATE OR REPLACE FUNCTION sandbox_self_status() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, %1$I, pg_temp
    AS $body$
      SELECT s.status::text FROM %1$I.sandboxes s
      WHERE s.id = CASE WHEN %1$I.is_sandbox_role_name(session_user::text)
                        THEN substr(session_user::text, 9)::uuid END
    $body$
  $def$, current_schema());
END
$$;

-- Nothing here is callable by everyone: sandbox roles get EXECUTE on sandbox_self_status() when
-- created, the control role owns the rest. Also for functions that later migrations add.
DO $$
BEGIN
  EXECUTE format('REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA %I FROM PUBLIC', current_schema());
  EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM PUBLIC', current_schema());
  EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM PUBLIC', current_schema());
  -- PostgreSQL 15 already denies PUBLIC CREATE on public; older clusters upgraded in place may not.
  EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', current_schema());
  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') THEN
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
  END IF;
END
$$;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
