-- Templates: the default template schema, the record of applied template files, the cache of
-- generated DDL, and the functions that build, reset and check a sandbox schema from them.
-- Idempotent, and runs on PostgreSQL 15 and on PGlite (reports 18).

-- The default template: today's three tables, exactly as create_sandbox_schema makes them.
CREATE SCHEMA IF NOT EXISTS sandbox_template;

CREATE TABLE IF NOT EXISTS sandbox_template.communities (
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
);

CREATE TABLE IF NOT EXISTS sandbox_template.profiles (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  community_id     uuid NOT NULL REFERENCES sandbox_template.communities (id) ON DELETE CASCADE,
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
);

CREATE TABLE IF NOT EXISTS sandbox_template.badges (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  profile_id uuid NOT NULL REFERENCES sandbox_template.profiles (id) ON DELETE CASCADE,
  badge_type text NOT NULL,
  awarded_at timestamptz NOT NULL DEFAULT now(),
  metadata   jsonb NOT NULL DEFAULT '{}'::jsonb,
  CONSTRAINT badges_profile_badge_type_key UNIQUE (profile_id, badge_type)
);

CREATE INDEX IF NOT EXISTS idx_profiles_community ON sandbox_template.profiles (community_id);
CREATE INDEX IF NOT EXISTS idx_profiles_wallet ON sandbox_template.profiles (wallet_address);
CREATE INDEX IF NOT EXISTS idx_badges_profile ON sandbox_template.badges (profile_id);
CREATE INDEX IF NOT EXISTS idx_badges_type ON sandbox_template.badges (badge_type);

-- Template files applied by `sandbox template apply`, kept like _prisma_migrations. The SQL is
-- kept too, so `sandbox upgrade` can bring a sandbox that is behind up to date.
CREATE TABLE IF NOT EXISTS sandbox_template_migrations (
  template   text NOT NULL,
  name       text NOT NULL,
  checksum   varchar(64) NOT NULL,
  sql        text NOT NULL,
  applied_at timestamptz(6) NOT NULL DEFAULT now(),
  CONSTRAINT sandbox_template_migrations_pkey PRIMARY KEY (template, name),
  CONSTRAINT sandbox_template_migrations_template_format CHECK (template ~ '^[a-z_][a-z0-9_]{0,62}$'),
  CONSTRAINT sandbox_template_migrations_checksum_format CHECK (checksum ~ '^[0-9a-f]{64}$')
);

-- Generated DDL, read from the template's catalog once per template version. Each statement
-- is a format() string whose only argument is the new schema's name (%1$I / %1$L; % doubled).
CREATE TABLE IF NOT EXISTS sandbox_template_cache (
  cache_key  varchar(64) PRIMARY KEY,
  template   text NOT NULL,
  version    text NOT NULL,
  ddl        jsonb NOT NULL,
  seed       jsonb NOT NULL,
  post       jsonb NOT NULL,
  created_at timestamptz(6) NOT NULL DEFAULT now()
);

-- Each sandbox records the template version its schema was built from or upgraded to
-- (`<last file name>@<checksum>`, or 'initial' before any file was applied). NULL: built before templates.
ALTER TABLE sandboxes ADD COLUMN IF NOT EXISTS template_version text;

-- The template's version: name and checksum of its last applied file.
CREATE OR REPLACE FUNCTION sandbox_template_version(p_template text) RETURNS text
LANGUAGE sql STABLE STRICT
AS $fn$
  SELECT coalesce((SELECT m.name || '@' || m.checksum FROM sandbox_template_migrations m
                   WHERE m.template = p_template ORDER BY m.name DESC LIMIT 1), 'initial')
$fn$;

-- The DDL cache key: a hash of the generator's version, the template's name and its version.
CREATE OR REPLACE FUNCTION sandbox_template_cache_key(p_generator integer, p_template text, p_version text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $fn$ SELECT encode(sha256(convert_to(p_generator::text || E'\n' || p_template || E'\n' || p_version, 'UTF8')), 'hex') $fn$;

-- Creates p_schema (which must not exist) and runs the statements in it with
-- search_path = p_schema, pg_catalog, so unqualified types, sequences and tables in defaults,
-- checks and foreign keys resolve inside the new schema. Grants as create_sandbox_schema does.
CREATE OR REPLACE FUNCTION sandbox_build_schema(p_schema text, p_statements jsonb) RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  old_path text := current_setting('search_path');
  stmt text;
BEGIN
  IF p_schema IS NULL OR NOT is_sandbox_schema_name(p_schema) THEN
    RAISE EXCEPTION 'invalid sandbox schema name %', p_schema USING ERRCODE = '22023';
  END IF;
  EXECUTE format('CREATE SCHEMA %I', p_schema);
  PERFORM set_config('search_path', format('%I, pg_catalog', p_schema), true);
  FOR stmt IN SELECT jsonb_array_elements_text(p_statements) LOOP
    EXECUTE format(stmt, p_schema);
  END LOOP;
  PERFORM set_config('search_path', old_path, true);
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sandbox_app') THEN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO sandbox_app', p_schema);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO sandbox_app', p_schema);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO sandbox_app', p_schema);
  END IF;
END
$fn$;

-- Builds p_schema from the cached DDL of the template's current version, with the seed rows
-- unless p_seed is false. Returns the version built, or NULL (having done nothing) when the
-- cache has no entry for that version yet: the caller generates it and calls again.
CREATE OR REPLACE FUNCTION sandbox_template_instantiate(p_schema text, p_template text, p_generator integer, p_seed boolean)
RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
  v text := sandbox_template_version(p_template);
  c sandbox_template_cache;
BEGIN
  SELECT * INTO c FROM sandbox_template_cache WHERE cache_key = sandbox_template_cache_key(p_generator, p_template, v);
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  PERFORM sandbox_build_schema(p_schema, CASE WHEN p_seed THEN c.ddl || c.seed || c.post ELSE c.ddl || c.post END);
  RETURN v;
END
$fn$;

-- Puts p_schema back to the template's current version (structure and seed) in the calling
-- transaction: drop and rebuild. Returns the version, or NULL (having done nothing) on a cache miss.
CREATE OR REPLACE FUNCTION sandbox_template_reset(p_schema text, p_template text, p_generator integer, p_seed boolean)
RETURNS text
LANGUAGE plpgsql
AS $fn$
BEGIN
  IF p_schema IS NULL OR NOT is_sandbox_schema_name(p_schema) THEN
    RAISE EXCEPTION 'invalid sandbox schema name %', p_schema USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM sandbox_template_cache
                 WHERE cache_key = sandbox_template_cache_key(p_generator, p_template, sandbox_template_version(p_template))) THEN
    RETURN NULL;
  END IF;
  EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', p_schema);
  RETURN sandbox_template_instantiate(p_schema, p_template, p_generator, p_seed);
END
$fn$;

-- Runs one template file's SQL with search_path = p_schema, pg_catalog for its duration (template
-- apply runs it in the template, sandbox upgrade in a sandbox's schema), in the caller's transaction.
CREATE OR REPLACE FUNCTION sandbox_run_in_schema(p_schema text, p_sql text) RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  old_path text := current_setting('search_path');
BEGIN
  IF p_schema IS NULL OR p_schema !~ '^[a-z_][a-z0-9_]{0,62}$' OR p_schema = 'public' OR p_schema LIKE 'pg\_%' THEN
    RAISE EXCEPTION 'invalid schema name %', p_schema USING ERRCODE = '22023';
  END IF;
  -- A missing schema would be skipped silently by search_path: refuse instead.
  IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = p_schema) THEN
    RAISE EXCEPTION 'schema % does not exist', p_schema USING ERRCODE = '3F000';
  END IF;
  PERFORM set_config('search_path', format('%I, pg_catalog', p_schema), true);
  EXECUTE p_sql;
  PERFORM set_config('search_path', old_path, true);
END
$fn$;
