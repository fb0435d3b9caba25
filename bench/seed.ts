import type pg from 'pg';

/** The guild mapped to seeded sandbox number `g` (18 digits, a valid snowflake). */
export const seedGuildId = (g: number): string => String(200_000_000_000_000_000n + BigInt(g));

/**
 * One statement per batch: the sandboxes (running, valid names `seed-000001`, schema name from
 * sandbox_schema_name), one guild mapping each and four audit rows each, as a real create leaves.
 * Owners are Discord-style ids, three sandboxes per owner.
 */
const INSERT_BATCH = `
  WITH src AS MATERIALIZED (
    SELECT g, gen_random_uuid() AS id, now() - make_interval(secs => g) AS at
    FROM generate_series($1::int, $2::int) g
  ), sb AS (
    INSERT INTO sandboxes (id, name, owner, status, schema_name, created_at, expires_at, last_activity_at, status_changed_at, metadata)
    SELECT id, 'seed-' || lpad(g::text, 6, '0'), (100000000000000000 + g / 3)::text, 'running', sandbox_schema_name(id),
           at, now() + interval '100 hours', at, at, jsonb_build_object('seed', g)
    FROM src
    RETURNING 1
  ), mp AS (
    INSERT INTO sandbox_guild_mapping (guild_id, sandbox_id, created_at)
    SELECT (200000000000000000 + g)::text, id, at FROM src
    RETURNING 1
  ), au AS (
    INSERT INTO sandbox_audit_log (sandbox_id, event_type, actor, details, created_at)
    SELECT src.id, e.event_type, 'operator:bench-seed', e.details, src.at
    FROM src CROSS JOIN (VALUES
      ('created', '{"seed": true, "status": "creating"}'::jsonb),
      ('schema_created', '{}'::jsonb),
      ('guild_registered', '{}'::jsonb),
      ('status_changed', '{"from": "creating", "to": "running"}'::jsonb)
    ) AS e(event_type, details)
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM sb) AS sandboxes, (SELECT count(*) FROM mp) AS mappings, (SELECT count(*) FROM au) AS audits`;

/**
 * Empty schemas (CREATE SCHEMA only, no tables) for the batch's rows, so drift checks see healthy
 * sandboxes and pg_namespace has its real size. Creating the full tables would only slow seeding:
 * the control-plane queries look at names, never inside.
 */
const schemasFor = (from: number, to: number): string => `
  DO $$ DECLARE s text; BEGIN
    FOR s IN SELECT schema_name FROM sandboxes WHERE (metadata->>'seed')::int BETWEEN ${from} AND ${to} LOOP
      EXECUTE format('CREATE SCHEMA %I', s);
    END LOOP;
  END $$`;

/**
 * Seeds sandboxes number `from`..`to` (1-based, inclusive) in batches, then VACUUM ANALYZEs the
 * database (catalogs included), so what follows is measured in a steady state and not while
 * autovacuum digests the seed.
 */
export async function seedSandboxes(pool: pg.Pool, from: number, to: number, batch: number): Promise<void> {
  if (!Number.isInteger(from) || !Number.isInteger(to)) throw new Error('seed bounds must be integers');
  const client = await pool.connect();
  try {
    for (let a = from; a <= to; a += batch) {
      const b = Math.min(to, a + batch - 1);
      await client.query('BEGIN');
      await client.query(INSERT_BATCH, [a, b]);
      await client.query(schemasFor(a, b));
      await client.query('COMMIT');
    }
    await client.query('VACUUM (ANALYZE)');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Exact count of live (not destroyed) sandboxes. */
export async function liveSandboxes(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM sandboxes WHERE status <> 'destroyed'`);
  return Number(rows[0]!.n);
}
