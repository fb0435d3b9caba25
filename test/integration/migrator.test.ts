// The migrator applies prisma/migrations itself (Prisma's engine cannot be downloaded here) and
// records them in _prisma_migrations exactly as Prisma does, so `prisma migrate status` agrees.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createEmptyDatabase } from '../support/db.ts';
import { createPool } from '../../src/db/database.ts';
import { migrate, readMigrations } from '../../src/db/migrator.ts';
import { silentLogger } from '../../src/logger.ts';
import { MIGRATIONS_DIR } from '../../src/paths.ts';

let empty: Awaited<ReturnType<typeof createEmptyDatabase>>;
let pools: pg.Pool[] = [];
const pool = () => {
  const p = createPool(empty.url, silentLogger(), 3);
  pools.push(p);
  return p;
};
const names = readdirSync(MIGRATIONS_DIR, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

beforeEach(async () => {
  empty = await createEmptyDatabase('sbx_migr');
});
afterEach(async () => {
  for (const p of pools) await p.end();
  pools = [];
  await empty.drop();
});
afterAll(() => undefined);

describe('migrator', () => {
  it('applies every migration on a fresh database and records it as Prisma does', async () => {
    const p = pool();
    const r = await migrate(p, silentLogger());
    expect(r).toEqual({ applied: names, skipped: [] });
    const { rows } = await p.query('SELECT * FROM _prisma_migrations ORDER BY migration_name');
    expect(rows.map((x) => x.migration_name)).toEqual(names);
    for (const row of rows) {
      const file = readFileSync(join(MIGRATIONS_DIR, row.migration_name, 'migration.sql'));
      expect(row.checksum).toBe(createHash('sha256').update(file).digest('hex'));
      expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.rolled_back_at).toBeNull();
      expect(row.logs).toBeNull();
      expect(row.applied_steps_count).toBe(1);
    }
    const cols = await p.query(
      `SELECT column_name, data_type, character_maximum_length, is_nullable FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    );
    expect(cols.rows.map((c) => [c.column_name, c.data_type, c.character_maximum_length, c.is_nullable])).toEqual([
      ['id', 'character varying', 36, 'NO'],
      ['checksum', 'character varying', 64, 'NO'],
      ['finished_at', 'timestamp with time zone', null, 'YES'],
      ['migration_name', 'character varying', 255, 'NO'],
      ['logs', 'text', null, 'YES'],
      ['rolled_back_at', 'timestamp with time zone', null, 'YES'],
      ['started_at', 'timestamp with time zone', null, 'NO'],
      ['applied_steps_count', 'integer', null, 'NO'],
    ]);
    const fns = await p.query(`SELECT proname FROM pg_proc WHERE proname LIKE '%sandbox%' ORDER BY 1`);
    expect(fns.rows.map((f) => f.proname)).toEqual([
      'create_sandbox_role', 'create_sandbox_schema', 'drop_orphan_sandbox_connect_roles', 'drop_sandbox_connect_role', 'drop_sandbox_role', 'drop_sandbox_schema',
      'ensure_sandbox_connect_role', 'get_sandbox_schema_stats', 'is_sandbox_connect_role_name', 'is_sandbox_role_name', 'is_sandbox_schema_name', 'list_sandbox_roles', 'prune_sandbox_route_changes', 'sandbox_build_schema', 'sandbox_clone_if_unchanged', 'sandbox_connect_role_name',
      'sandbox_insert_creating', 'sandbox_role_name', 'sandbox_route_feed', 'sandbox_route_record', 'sandbox_run_in_schema', 'sandbox_schema_exists',
      'sandbox_schema_fingerprint', 'sandbox_schema_name', 'sandbox_self_status', 'sandbox_template_cache_key', 'sandbox_template_instantiate',
      'sandbox_template_reset', 'sandbox_template_version', 'set_sandbox_role_password',
    ]);
  });

  it('a re-apply is a no-op', async () => {
    const p = pool();
    await migrate(p, silentLogger());
    const before = (await p.query('SELECT id, finished_at FROM _prisma_migrations ORDER BY id')).rows;
    expect(await migrate(p, silentLogger())).toEqual({ applied: [], skipped: names });
    expect((await p.query('SELECT id, finished_at FROM _prisma_migrations ORDER BY id')).rows).toEqual(before);
  });

  it('two concurrent appliers apply each migration exactly once', async () => {
    const results = await Promise.all([migrate(pool(), silentLogger()), migrate(pool(), silentLogger()), migrate(pool(), silentLogger())]);
    const applied = results.flatMap((r) => r.applied).sort();
    expect(applied).toEqual(names);
    const { rows } = await pool().query('SELECT migration_name, count(*)::int AS n FROM _prisma_migrations GROUP BY 1 ORDER BY 1');
    expect(rows).toEqual(names.map((n) => ({ migration_name: n, n: 1 })));
  });

  it('refuses to proceed when an applied migration file has changed, naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbx-migrations-'));
    try {
      cpSync(MIGRATIONS_DIR, dir, { recursive: true });
      const p = pool();
      await migrate(p, silentLogger(), dir);
      const target = join(dir, names[0]!, 'migration.sql');
      writeFileSync(target, `${readFileSync(target, 'utf8')}\n-- edited after apply\n`);
      await expect(migrate(p, silentLogger(), dir)).rejects.toThrow(new RegExp(`Migration ${names[0]} was changed after it was applied`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a failing migration rolls back completely, is recorded as failed, and can be fixed and re-run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbx-migrations-'));
    try {
      cpSync(MIGRATIONS_DIR, dir, { recursive: true });
      const bad = join(dir, '29990101000000_broken');
      cpSync(join(dir, names[0]!), bad, { recursive: true });
      writeFileSync(join(bad, 'migration.sql'), 'CREATE TABLE half_done (id int);\nSELECT this_is_not_a_function();\n');
      const p = pool();
      await expect(migrate(p, silentLogger(), dir)).rejects.toThrow(/Migration 29990101000000_broken failed/);
      expect((await p.query(`SELECT to_regclass('half_done') AS t`)).rows[0].t).toBeNull();
      const failed = (await p.query(`SELECT finished_at, logs FROM _prisma_migrations WHERE migration_name = '29990101000000_broken'`)).rows;
      expect(failed).toHaveLength(1);
      expect(failed[0].finished_at).toBeNull();
      expect(failed[0].logs).toMatch(/this_is_not_a_function/);
      writeFileSync(join(bad, 'migration.sql'), 'CREATE TABLE half_done (id int);\n');
      expect((await migrate(p, silentLogger(), dir)).applied).toEqual(['29990101000000_broken']);
      expect((await readMigrations(dir)).map((m) => m.name)).toContain('29990101000000_broken');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
