-- Sandbox roles get CONNECT on the control database and EXECUTE on sandbox_self_status() through ONE
-- group role per control database, `sandbox_connect_<database oid>` (NOLOGIN, nothing else granted),
-- instead of a grant each. A grant each put one ACL entry per live sandbox into the database's and the
-- function's catalog tuple: every create and destroy rewrote both (3.3 ms per GRANT CONNECT with 5,000
-- entries here, against 0.23 ms with none) under one server-wide lock held to commit, so concurrent
-- creates queued behind it. A membership is a row of its own (pg_auth_members): nothing shared is
-- written, and no lock is needed. Sandbox roles are now INHERIT (the group is the only role they are
-- members of, so they inherit exactly its two privileges). Roles made before this migration keep their
-- own grants until they are re-granted (create_sandbox_role) or dropped.

-- This database's group role name. The one place it is derived.
CREATE OR REPLACE FUNCTION sandbox_connect_role_name() RETURNS text
LANGUAGE sql STABLE
AS $fn$ SELECT 'sandbox_connect_' || (SELECT oid FROM pg_database WHERE datname = current_database())::text $fn$;

-- The group role pattern (a regex: '_' is a wildcard in LIKE).
CREATE OR REPLACE FUNCTION is_sandbox_connect_role_name(p_name text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT p_name ~ '^sandbox_connect_[0-9]{1,10}$' $fn$;

-- Makes this database's group role with its two grants when it is missing, and returns its name. In
-- the steady state it only reads: the role exists and both ACLs name it. Otherwise it takes the
-- server-wide lock (two first creates at once would race on pg_authid and the ACLs) and makes what
-- is missing; CREATE ROLE is skipped when another transaction made it meanwhile, GRANT is idempotent.
CREATE OR REPLACE FUNCTION ensure_sandbox_connect_role() RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
  g text := sandbox_connect_role_name();
  gid oid := (SELECT oid FROM pg_roles WHERE rolname = g);
  fn regprocedure := format('%I.sandbox_self_status()', current_schema())::regprocedure;
BEGIN
  IF gid IS NOT NULL
     AND EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a
                 WHERE d.datname = current_database() AND a.privilege_type = 'CONNECT' AND a.grantee = gid)
     AND EXISTS (SELECT 1 FROM pg_proc p, aclexplode(p.proacl) a
                 WHERE p.oid = fn AND a.privilege_type = 'EXECUTE' AND a.grantee = gid) THEN
    RETURN g;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('sandbox_role_acl', 0));
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = g) THEN
    EXECUTE format('CREATE ROLE %I WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS', g);
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), g);
  EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, g);
  RETURN g;
END
$fn$;

CREATE OR REPLACE FUNCTION create_sandbox_role(p_sandbox_id uuid, p_password text) RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
  r text := sandbox_role_name(p_sandbox_id);
  s text := sandbox_schema_name(p_sandbox_id);
  g text;
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
  g := ensure_sandbox_connect_role();

  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
    EXECUTE format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS PASSWORD %L', r, p_password);
    IF NOT pg_has_role(r, g, 'MEMBER') THEN
      EXECUTE format('GRANT %I TO %I', g, r);
    END IF;
  ELSE
    EXECUTE format('CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS PASSWORD %L IN ROLE %I', r, p_password, g);
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
  RETURN r;
END
$fn$;

CREATE OR REPLACE FUNCTION drop_sandbox_role(p_sandbox_id uuid) RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
  r text := sandbox_role_name(p_sandbox_id);
  rid oid;
BEGIN
  IF r IS NULL OR NOT is_sandbox_role_name(r) THEN
    RAISE EXCEPTION 'invalid sandbox role name %', r USING ERRCODE = '22023';
  END IF;
  SELECT oid INTO rid FROM pg_roles WHERE rolname = r;
  IF rid IS NULL THEN
    RETURN false;
  END IF;
  EXECUTE format('ALTER ROLE %I WITH NOLOGIN', r);
  BEGIN
    PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = r AND pid <> pg_backend_pid();
  EXCEPTION WHEN insufficient_privilege OR undefined_function THEN
    NULL;
  END;
  -- A role made before the group (20261128001200) holds its own CONNECT and sandbox_self_status()
  -- grants, in the database's and the function's shared ACL tuple: DROP OWNED revokes them, and
  -- concurrent revokes of one tuple fail ("tuple concurrently updated") unless ordered by this lock.
  IF EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = current_database() AND a.grantee = rid)
     OR EXISTS (SELECT 1 FROM pg_proc p, aclexplode(p.proacl) a
                WHERE p.oid = format('%I.sandbox_self_status()', current_schema())::regprocedure AND a.grantee = rid) THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('sandbox_role_acl', 0));
  END IF;
  EXECUTE format('REASSIGN OWNED BY %I TO %I', r, current_user);
  EXECUTE format('DROP OWNED BY %I', r);
  EXECUTE format('DROP ROLE %I', r);
  RETURN true;
END
$fn$;

-- Drops group roles whose database no longer exists (a dropped control database leaves its group
-- behind: roles are server-wide). Only the exact pattern, and only when no database has that oid, so
-- a live database's group is never touched. Returns the names dropped.
CREATE OR REPLACE FUNCTION drop_orphan_sandbox_connect_roles() RETURNS SETOF text
LANGUAGE plpgsql
AS $fn$
DECLARE
  g text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname >= 'sandbox_connect_'::name AND rolname < 'sandbox_connect`'::name
                 AND is_sandbox_connect_role_name(rolname::text)
                 AND NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.oid::text = substr(rolname::text, 17))) THEN
    RETURN;
  END IF;
  -- Sweepers of other control databases on this server may be dropping the same ones: one at a time.
  PERFORM pg_advisory_xact_lock(hashtextextended('sandbox_role_acl', 0));
  FOR g IN
    SELECT rolname::text FROM pg_roles
    WHERE rolname >= 'sandbox_connect_'::name AND rolname < 'sandbox_connect`'::name
      AND is_sandbox_connect_role_name(rolname::text)
      AND NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.oid::text = substr(rolname::text, 17))
    ORDER BY rolname
  LOOP
    EXECUTE format('DROP ROLE IF EXISTS %I', g);
    RETURN NEXT g;
  END LOOP;
END
$fn$;

-- Drops this database's group role (before the database itself is dropped: tests, the bench). Its
-- grants are revoked first; its members (sandbox roles) lose only the membership.
CREATE OR REPLACE FUNCTION drop_sandbox_connect_role() RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
  g text := sandbox_connect_role_name();
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = g) THEN
    RETURN false;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('sandbox_role_acl', 0));
  EXECUTE format('DROP OWNED BY %I', g);
  EXECUTE format('DROP ROLE %I', g);
  RETURN true;
END
$fn$;

REVOKE EXECUTE ON FUNCTION sandbox_connect_role_name(), is_sandbox_connect_role_name(text), ensure_sandbox_connect_role(),
  drop_orphan_sandbox_connect_roles(), drop_sandbox_connect_role() FROM PUBLIC;

-- connects_here: the role connects here through THIS database's grants (its group, or a grant of its
-- own from before the group). has_database_privilege also counted PUBLIC's CONNECT, which a new
-- database grants by default: every sandbox role on the server looked like one of ours.
CREATE OR REPLACE FUNCTION list_sandbox_roles()
RETURNS TABLE (sandbox_id uuid, role_name text, connects_here boolean)
LANGUAGE sql STABLE
AS $fn$
  SELECT substr(r.rolname, 9)::uuid, r.rolname::text,
         EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                 WHERE m.member = r.oid AND g.rolname = sandbox_connect_role_name())
         OR EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a
                    WHERE d.datname = current_database() AND a.grantee = r.oid AND a.privilege_type = 'CONNECT')
  FROM pg_roles r WHERE is_sandbox_role_name(r.rolname::text) ORDER BY r.rolname
$fn$;
REVOKE EXECUTE ON FUNCTION list_sandbox_roles() FROM PUBLIC;
