-- Concurrent creates (and destroys) of isolated sandboxes: the grants on the control database and on
-- sandbox_self_status() live in one catalog tuple each, which concurrent GRANTs/REVOKEs fail to update
-- ("tuple concurrently updated"). Both functions now take one transaction-scoped advisory lock before
-- touching them. Lock order stays: the sandbox's key (and row), then this lock.

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
  EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', s, r);
  EXECUTE format('GRANT ALL ON ALL TABLES IN SCHEMA %I TO %I', s, r);
  EXECUTE format('GRANT ALL ON ALL SEQUENCES IN SCHEMA %I TO %I', s, r);
  EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO %I', s, r);
  -- Tables, sequences and functions the control role (a template, a reset) creates there later.
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT ALL ON TABLES TO %I', current_user, s, r);
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT ALL ON SEQUENCES TO %I', current_user, s, r);
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT EXECUTE ON FUNCTIONS TO %I', current_user, s, r);
  -- Every role's CONNECT and sandbox_self_status() grant updates ONE shared catalog tuple (the
  -- database's and the function's ACL); two transactions doing it at once fail with "tuple
  -- concurrently updated". One transaction-scoped lock orders them (held to commit).
  PERFORM pg_advisory_xact_lock(hashtextextended('sandbox_role_acl', 0));
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);
  EXECUTE format('GRANT EXECUTE ON FUNCTION %I.sandbox_self_status() TO %I', ctl, r);
  RETURN r;
END
$fn$;

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
  -- DROP OWNED revokes the role's CONNECT and sandbox_self_status() grants, which update ONE shared catalog tuple (the
  -- database's and the function's ACL); two transactions doing it at once fail with "tuple
  -- concurrently updated". One transaction-scoped lock orders them (held to commit).
  PERFORM pg_advisory_xact_lock(hashtextextended('sandbox_role_acl', 0));
  EXECUTE format('REASSIGN OWNED BY %I TO %I', r, current_user);
  EXECUTE format('DROP OWNED BY %I', r);
  EXECUTE format('DROP ROLE %I', r);
  RETURN true;
END
$fn$;
