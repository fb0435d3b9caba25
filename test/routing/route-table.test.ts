import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { RouteTable } from '../../src/routing/route-table.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { botJoined, createTestDatabase, makeManager, snowflake, type TestDatabase } from '../support/db.ts';
import { insertSandbox, mapGuild, unmapGuild, waitFor } from './support/routing.ts';

let db: TestDatabase;
const tables: RouteTable[] = [];

function table(opts: Partial<ConstructorParameters<typeof RouteTable>[0]> = {}) {
  const events = { reloads: [] as string[], invalidations: [] as number[], entries: -1, version: -1 };
  const t = new RouteTable({
    pool: db.pool,
    connectionString: db.url,
    logger: silentLogger(),
    observer: {
      reloaded: (r) => events.reloads.push(r),
      invalidation: (s) => events.invalidations.push(s),
      applied: (n, v) => {
        events.entries = n;
        events.version = v;
      },
    },
    ...opts,
  });
  tables.push(t);
  return { t, events };
}

async function liveVersion(): Promise<number> {
  const { rows } = await db.pool.query<{ v: string }>('SELECT version::text AS v FROM sandbox_route_version');
  return Number(rows[0]!.v);
}

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  for (const t of tables) await t.stop();
  await db?.drop();
});

describe('route feed trigger', () => {
  it('bumps the version once per mapping change, logs it, and notifies at commit', async () => {
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    const notices: string[] = [];
    listener.on('notification', (n) => notices.push(n.payload ?? ''));
    await listener.query('LISTEN sandbox_routes');
    try {
      const sandbox = await insertSandbox(db);
      const guild = snowflake();
      const before = await liveVersion();
      const c = await db.pool.connect();
      try {
        await c.query('BEGIN');
        await c.query('INSERT INTO sandbox_guild_mapping (guild_id, sandbox_id) VALUES ($1, $2)', [guild, sandbox]);
        await new Promise((r) => setTimeout(r, 100));
        expect(notices).toEqual([]); // nothing before the commit
        await c.query('COMMIT');
      } finally {
        c.release();
      }
      await waitFor(() => notices.length === 1, 'the notice');
      const notice = JSON.parse(notices[0]!) as { v: number; t: number };
      expect(notice.v).toBe(before + 1);
      expect(Math.abs(Date.now() - notice.t)).toBeLessThan(5000);
      await unmapGuild(db, guild);
      await waitFor(() => notices.length === 2, 'the second notice');
      expect(await liveVersion()).toBe(before + 2);
      const { rows } = await db.pool.query('SELECT version::int AS version, guild_id, sandbox_id FROM sandbox_route_change WHERE version > $1 ORDER BY version', [before]);
      expect(rows).toEqual([
        { version: before + 1, guild_id: guild, sandbox_id: sandbox },
        { version: before + 2, guild_id: guild, sandbox_id: null },
      ]);
    } finally {
      await listener.end();
    }
  });

  it('a rolled-back change leaves no version, no log row and no notice', async () => {
    const before = await liveVersion();
    const sandbox = await insertSandbox(db);
    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('INSERT INTO sandbox_guild_mapping (guild_id, sandbox_id) VALUES ($1, $2)', [snowflake(), sandbox]);
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
    expect(await liveVersion()).toBe(before);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM sandbox_route_change WHERE version > $1', [before]);
    expect(rows[0].n).toBe(0);
  });

  it('pruning keeps the newest change row', async () => {
    await mapGuild(db, snowflake(), await insertSandbox(db));
    const newest = await liveVersion();
    await db.pool.query(`SELECT prune_sandbox_route_changes(interval '0 seconds')`);
    const { rows } = await db.pool.query<{ version: string }>('SELECT version::text AS version FROM sandbox_route_change');
    expect(rows.map((r) => Number(r.version))).toEqual([newest]);
  });
});

describe('RouteTable', () => {
  it('loads the whole map, then applies another connection’s commit from its notice', async () => {
    const a = await insertSandbox(db);
    const g1 = snowflake();
    await mapGuild(db, g1, a);
    const { t, events } = table();
    await t.start();
    expect(t.lookup(g1)).toBe(a);
    expect(t.version).toBe(await liveVersion());
    const g2 = snowflake();
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    await other.query('INSERT INTO sandbox_guild_mapping (guild_id, sandbox_id) VALUES ($1, $2)', [g2, a]);
    await other.end();
    await waitFor(() => t.lookup(g2) === a, 'the notice to be applied', 2000, 1);
    expect(events.invalidations.length).toBeGreaterThan(0);
    expect(events.invalidations.at(-1)!).toBeLessThan(1);
    expect(events.entries).toBe(t.size);
    expect(events.reloads).toEqual(['start']); // incremental, not a reload
    await unmapGuild(db, g2);
    await waitFor(() => t.lookup(g2) === undefined, 'the unmap to be applied', 2000, 1);
  });

  it('catchUp applies a committed change at once', async () => {
    const { t } = table({ reloadIntervalMs: 3_600_000 });
    await t.start();
    const s = await insertSandbox(db);
    const g = snowflake();
    await mapGuild(db, g, s);
    await t.catchUp();
    expect(t.lookup(g)).toBe(s);
    expect(t.version).toBe(await liveVersion());
  });

  it('reloads the whole table when the change log has a gap (pruned rows)', async () => {
    const { t, events } = table({ poll: true, pollIntervalMs: 3_600_000, reloadIntervalMs: 3_600_000 });
    await t.start();
    const s = await insertSandbox(db);
    const gs = [snowflake(), snowflake(), snowflake()];
    for (const g of gs) await mapGuild(db, g, s);
    await db.pool.query(`SELECT prune_sandbox_route_changes(interval '0 seconds')`);
    await t.catchUp();
    expect(events.reloads).toEqual(['start', 'gap']);
    for (const g of gs) expect(t.lookup(g)).toBe(s);
    expect(t.version).toBe(await liveVersion());
  });

  it('a reload never overwrites a newer version with an older one', async () => {
    const s = await insertSandbox(db);
    const g = snowflake();
    // A reader whose snapshot predates the mapping, standing in for a slow reload.
    const stale = new pg.Client({ connectionString: db.url });
    await stale.connect();
    await stale.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await stale.query('SELECT 1 FROM sandbox_route_version');
    try {
      let useStale = false;
      const pool = {
        query: (text: string, params?: unknown[]) => (useStale ? stale.query(text, params) : db.pool.query(text, params)),
      } as unknown as pg.Pool;
      const { t, events } = table({ pool, poll: true, pollIntervalMs: 3_600_000, reloadIntervalMs: 3_600_000 });
      await t.start();
      await mapGuild(db, g, s);
      await t.catchUp();
      expect(t.lookup(g)).toBe(s);
      const newer = t.version;
      useStale = true;
      await t.reload('periodic');
      expect(t.lookup(g)).toBe(s);
      expect(t.version).toBe(newer);
      expect(events.reloads).toEqual(['start']);
    } finally {
      await stale.query('ROLLBACK');
      await stale.end();
    }
  });

  it('reloads after its listening connection is cut, catching changes made meanwhile', async () => {
    const { t, events } = table({ reloadIntervalMs: 3_600_000 });
    await t.start();
    const s = await insertSandbox(db);
    const g = snowflake();
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'sandbox-route-feed'`,
      );
      expect(rows[0]!.n).toBeGreaterThanOrEqual(1);
      await mapGuild(db, g, s); // likely before the listener is back
      await waitFor(() => events.reloads.includes('reconnect'), 'a reconnect reload', 10_000);
      await waitFor(() => t.lookup(g) === s, 'the mapping after reconnect', 5000);
      const g2 = snowflake();
      await mapGuild(db, g2, s);
      await waitFor(() => t.lookup(g2) === s, 'notices after reconnect', 2000, 1);
    } finally {
      await admin.end();
    }
  });

  it('polls the version when NOTIFY cannot reach it (embedded mode)', async () => {
    const { t } = table({ poll: true, pollIntervalMs: 100, reloadIntervalMs: 3_600_000 });
    await t.start();
    const s = await insertSandbox(db);
    const g = snowflake();
    await mapGuild(db, g, s);
    await waitFor(() => t.lookup(g) === s, 'the polled change', 2000);
  });

  it('the periodic check repairs a table that missed everything', async () => {
    const { t, events } = table({ poll: true, pollIntervalMs: 3_600_000, reloadIntervalMs: 200 });
    await t.start();
    const s = await insertSandbox(db);
    const g = snowflake();
    await mapGuild(db, g, s);
    await waitFor(() => t.lookup(g) === s, 'the periodic reload', 3000);
    expect(events.reloads).toContain('periodic');
  });

  it('a mapping made by the CLI in another process reaches the table as it commits', async () => {
    const { t } = table({ reloadIntervalMs: 3_600_000 });
    await t.start();
    const manager = makeManager(db);
    const name = `cli-${snowflake().slice(0, 8)}`;
    const created = await manager.create({ name, owner: 'cli:other' }, { kind: 'operator', name: 'test' });
    const guild = snowflake();
    await botJoined(db, guild);
    const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: db.url, SANDBOX_ISOLATION: 'off', LOG_LEVEL: 'silent' };
    delete env.NATS_URL;
    const { stdout } = await promisify(execFile)('node', ['bin/sandbox.js', 'register-guild', name, guild], { env });
    expect(stdout).toContain('now mapped');
    const exited = Date.now();
    await waitFor(() => t.lookup(guild) === created.sandbox.id, 'the CLI’s mapping', 2000, 1);
    expect(Date.now() - exited).toBeLessThan(500);
    await promisify(execFile)('node', ['bin/sandbox.js', 'unregister-guild', name, guild], { env });
    await waitFor(() => t.lookup(guild) === undefined, 'the CLI’s unmapping', 2000, 1);
  });
});
