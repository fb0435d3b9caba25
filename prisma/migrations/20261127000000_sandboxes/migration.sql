-- Control plane for Discord Server Sandboxes: sandboxes, guild mappings, audit log,
-- and the PL/pgSQL functions that manage each sandbox's own schema.
-- Idempotent, and runs on PostgreSQL 15 and on PGlite (17+).

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                 WHERE t.typname = 'sandbox_status' AND n.nspname = current_schema()) THEN
    CREATE TYPE sandbox_status AS ENUM
      ('pending', 'creating', 'running', 'expired', 'destroying', 'destroyed', 'failed');
  END IF;
END
$$;

CREATE TABLE IF NOT EXISTS sandboxes (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name              text NOT NULL,
  owner             text NOT NULL,
  status            sandbox_status NOT NULL DEFAULT 'pending',
  schema_name       text NOT NULL,
  discord_token_id  uuid,
  created_at        timestamptz(6) NOT NULL DEFAULT now(),
  expires_at        timestamptz(6) NOT NULL,
  destroyed_at      timestamptz(6),
  last_activity_at  timestamptz(6) NOT NULL DEFAULT now(),
  status_changed_at timestamptz(6) NOT NULL DEFAULT now(),
  metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
  CONSTRAINT sandboxes_schema_name_key UNIQUE (schema_name),
  CONSTRAINT sandboxes_name_format CHECK (name ~ '^[a-z0-9][a-z0-9-]{2,63}$'),
  CONSTRAINT sandboxes_schema_name_format CHECK (schema_name ~ '^sandbox_[0-9a-f]{32}$'),
  CONSTRAINT sandboxes_destroyed_at_check CHECK ((status = 'destroyed') = (destroyed_at IS NOT NULL))
);

CREATE INDEX IF NOT EXISTS idx_sandboxes_status ON sandboxes (status);
CREATE INDEX IF NOT EXISTS idx_sandboxes_owner ON sandboxes (owner);
CREATE INDEX IF NOT EXISTS idx_sandboxes_expires ON sandboxes (expires_at) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS idx_sandboxes_created ON sandboxes (created_at DESC);
-- Names are unique among live sandboxes only, so a name is free again after destroy.
CREATE UNIQUE INDEX IF NOT EXISTS uq_sandboxes_live_name ON sandboxes (name) WHERE status <> 'destroyed';

CREATE TABLE IF NOT EXISTS sandbox_guild_mapping (
  guild_id   text PRIMARY KEY,
  sandbox_id uuid NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
  created_at timestamptz(6) NOT NULL DEFAULT now(),
  CONSTRAINT sandbox_guild_mapping_guild_id_format CHECK (guild_id ~ '^[0-9]{17,20}$')
);
CREATE INDEX IF NOT EXISTS idx_sandbox_guild_mapping_sandbox ON sandbox_guild_mapping (sandbox_id);

-- Audit rows are never deleted. sandbox_id is nullable for events with no sandbox.
CREATE TABLE IF NOT EXISTS sandbox_audit_log (
  id         bigserial PRIMARY KEY,
  sandbox_id uuid REFERENCES sandboxes (id) ON DELETE SET NULL,
  event_type text NOT NULL,
  actor      text NOT NULL,
  details    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz(6) NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_sandbox_audit_log_sandbox_time ON sandbox_audit_log (sandbox_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_sandbox_audit_log_type ON sandbox_audit_log (event_type);

-- The one place a schema name is derived from a sandbox id: all 128 bits of the id.
CREATE OR REPLACE FUNCTION sandbox_schema_name(p_sandbox_id uuid) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT 'sandbox_' || replace(p_sandbox_id::text, '-', '') $fn$;

-- The one place the schema-name pattern lives (no LIKE: '_' is a wildcard there).
CREATE OR REPLACE FUNCTION is_sandbox_schema_name(p_name text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT p_name ~ '^sandbox_[0-9a-f]{32}$' $fn$;

-- Creates the schema and its tables; fails if the schema already exists (never adopts one).
CREATE OR REPLACE FUNCTION create_sandbox_schema(p_sandbox_id uuid) RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
  s text := sandbox_schema_name(p_sandbox_id);
BEGIN
  IF s IS NULL OR NOT is_sandbox_schema_name(s) THEN
    RAISE EXCEPTION 'invalid sandbox schema name %', s USING ERRCODE = '22023';
  END IF;

  EXECUTE format('CREATE SCHEMA %I', s);

  EXECUTE format($ddl$
    CREATE TABLE %I.communities (
      id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name             text NOT NULL,
      discord_guild_id text,
      telegram_chat_id text,
      settings         jsonb NOT NULL DEFAULT '{}'::jsonb,
      is_active        boolean NOT NULL DEFAULT true,
      created_at       timestamptz NOT NULL DEFAULT now(),
      updated_at       timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT communities_discord_guild_id_key UNIQUE (discord_guild_id),
      CONSTRAINT communities_telegram_chat_id_key UNIQUE (telegram_chat_id)
    )$ddl$, s);

  EXECUTE format($ddl$
    CREATE TABLE %1$I.profiles (
      id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      community_id     uuid NOT NULL REFERENCES %1$I.communities (id) ON DELETE CASCADE,
      discord_id       text,
      telegram_id      text,
      wallet_address   text,
      tier             text,
      conviction_score integer NOT NULL DEFAULT 0,
      activity_score   integer NOT NULL DEFAULT 0,
      metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at       timestamptz NOT NULL DEFAULT now(),
      updated_at       timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT profiles_community_discord_key UNIQUE (community_id, discord_id),
      CONSTRAINT profiles_community_telegram_key UNIQUE (community_id, telegram_id),
      CONSTRAINT profiles_community_wallet_key UNIQUE (community_id, wallet_address)
    )$ddl$, s);

  EXECUTE format($ddl$
    CREATE TABLE %1$I.badges (
      id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      profile_id uuid NOT NULL REFERENCES %1$I.profiles (id) ON DELETE CASCADE,
      badge_type text NOT NULL,
      awarded_at timestamptz NOT NULL DEFAULT now(),
      metadata   jsonb NOT NULL DEFAULT '{}'::jsonb,
      CONSTRAINT badges_profile_badge_type_key UNIQUE (profile_id, badge_type)
    )$ddl$, s);

  EXECUTE format('CREATE INDEX %I ON %I.profiles (community_id)', 'idx_profiles_community', s);
  EXECUTE format('CREATE INDEX %I ON %I.profiles (wallet_address)', 'idx_profiles_wallet', s);
  EXECUTE format('CREATE INDEX %I ON %I.badges (profile_id)', 'idx_badges_profile', s);
  EXECUTE format('CREATE INDEX %I ON %I.badges (badge_type)', 'idx_badges_type', s);

  -- Grant to the application role when it exists; its absence is fine.
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sandbox_app') THEN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO sandbox_app', s);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO sandbox_app', s);
  END IF;

  RETURN s;
END
$fn$;

-- Idempotent: returns true when a schema was dropped, false when there was none.
CREATE OR REPLACE FUNCTION drop_sandbox_schema(p_sandbox_id uuid) RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
  s text := sandbox_schema_name(p_sandbox_id);
BEGIN
  IF s IS NULL OR NOT is_sandbox_schema_name(s) THEN
    RAISE EXCEPTION 'invalid sandbox schema name %', s USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s) THEN
    RETURN false;
  END IF;
  EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', s);
  RETURN true;
END
$fn$;

-- pg_namespace, not information_schema, which hides schemas from unprivileged users.
CREATE OR REPLACE FUNCTION sandbox_schema_exists(p_sandbox_id uuid) RETURNS boolean
LANGUAGE sql STABLE STRICT
AS $fn$ SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = sandbox_schema_name(p_sandbox_id)) $fn$;

-- Exact row counts of every table in the sandbox schema (empty when the schema is missing).
CREATE OR REPLACE FUNCTION get_sandbox_schema_stats(p_sandbox_id uuid)
RETURNS TABLE (table_name text, row_count bigint)
LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
  s text := sandbox_schema_name(p_sandbox_id);
  t text;
BEGIN
  FOR t IN
    SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = s AND c.relkind IN ('r', 'p') ORDER BY c.relname
  LOOP
    table_name := t;
    EXECUTE format('SELECT count(*) FROM %I.%I', s, t) INTO row_count;
    RETURN NEXT;
  END LOOP;
END
$fn$;
