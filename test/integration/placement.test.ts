/**
 * Placement (#10): sandbox schemas on several PostgreSQL servers. The control database is a fresh
 * database on the shared server (`default`); server `s2` is a private cluster this file starts
 * (initdb as the postgres user, its own port) and removes. Every assertion about where something
 * is reads the catalogs of both servers directly.
 * - 20 creates (concurrent, five at a time) split 10 and 10; ties go to `default`.
 * - status, env, reset, clone, destroy and the sweeper's orphan and missing-schema passes act on
 *   the sandbox's own server, and never on the other.
 * - With s2 stopped: creates go to `default`, status and destroy of an s2 sandbox say SANDBOX_011
 *   naming s2, a sweep touches nothing on `default` and reports s2 down; after s2 is back, it all works.
 * - A remote create that fails after its DDL committed on s2 is compensated (schema and role dropped
 *   there); one killed at that point is reconciled by the next sweep, on s2.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.ts';
import { loadConfig } from '../../src/config.ts';
import { applyTemplateDir } from '../../src/sandbox/store/template/apply.ts';
import { openServerHandle } from '../../src/db/servers.ts';
import { wireIsolation, type IsolationWiring } from '../../src/isolation.ts';
import { Sweeper, type SweepSummary } from '../../src/jobs/sweeper.ts';
import { silentLogger } from '../../src/logger.ts';
import { ErrorCode, SandboxError } from '../../src/sandbox/errors.ts';
import { InjectedFault, type FaultInjector, type FaultPoint } from '../../src/sandbox/faults.ts';
import { SandboxManager } from '../../src/sandbox/manager.ts';
import { SandboxServers } from '../../src/sandbox/servers.ts';
import { connectSandbox } from '../../src/sdk/index.ts';
import type { Actor, Sandbox } from '../../src/sandbox/types.ts';
import { crashChild } from '../fault/support/crash.ts';
import { createTestDatabase, schemaExists, type TestDatabase } from '../support/db.ts';
import { startSecondCluster, type SecondCluster } from '../support/second-cluster.ts';

const operator: Actor = { kind: 'operator', name: 'placement-test' };
const SECRET = 'placement-test-credential-secret-0123456789';
const STUCK_MS = 60_000;

/** Armed by a test: throws at one fault point, once. */
class Faults implements FaultInjector {
  armed: FaultPoint | undefined;
  hit(point: FaultPoint): void {
    if (point !== this.armed) return;
    this.armed = undefined;
    throw new InjectedFault(point);
  }
}

describe('sandboxes placed on two PostgreSQL servers', () => {
  let db: TestDatabase;
  let cluster: SecondCluster;
  let s2Url: string;
  let s2: pg.Pool;
  let servers: SandboxServers;
  let isolation: IsolationWiring;
  let manager: SandboxManager;
  const faults = new Faults();
  /** The servers' clock: moved forward to end the few seconds a failed server counts as down. */
  let clockMs = 0;

  const makeManager = (clock?: () => Date): SandboxManager =>
    new SandboxManager({
      prisma: db.prisma,
      logger: silentLogger(),
      servers,
      postgresResources: isolation.postgresResources,
      connectionEnv: (s, url) => isolation.connectionEnv(s, url),
      limits: { maxPerOwner: 1000, maxTotal: 1000 },
      faults,
      ...(clock ? { clock } : {}),
    });
  const sweep = (opts: { aheadMs?: number } = {}): Promise<SweepSummary> => {
    const ahead = opts.aheadMs ?? 0;
    return new Sweeper({ manager: makeManager(() => new Date(Date.now() + ahead)), logger: silentLogger(), settings: { stuckAfterMs: STUCK_MS } }).runPass();
  };
  const schemasOn = async (pool: pg.Pool): Promise<string[]> =>
    (await pool.query<{ n: string }>(`SELECT nspname::text AS n FROM pg_namespace WHERE nspname ~ '^sandbox_[0-9a-f]{32}$' ORDER BY 1`)).rows.map((r) => r.n);
  const roleOn = async (pool: pg.Pool, id: string): Promise<{ connect: boolean } | undefined> => {
    const { rows } = await pool.query<{ connect: boolean }>(
      `SELECT has_database_privilege(oid, current_database(), 'CONNECT') AS connect FROM pg_roles WHERE rolname = $1`,
      [`sandbox_${id.replaceAll('-', '')}`],
    );
    return rows[0];
  };
  const serverOf = async (id: string): Promise<string> => (await db.pool.query<{ server: string }>('SELECT server FROM sandboxes WHERE id = $1', [id])).rows[0]!.server;
  const failure = async (op: Promise<unknown>): Promise<SandboxError> => {
    const err = await op.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
    return err as SandboxError;
  };
  const create = async (name: string): Promise<Sandbox> => (await manager.create({ name, owner: 'cli:placement' }, operator)).sandbox;
  const liveCounts = async (): Promise<{ default: number; s2: number }> => {
    const { rows } = await db.pool.query<{ server: string; n: number }>(`SELECT server, count(*)::int AS n FROM sandboxes WHERE status <> 'destroyed' GROUP BY server`);
    const n = (server: string): number => rows.find((r) => r.server === server)?.n ?? 0;
    return { default: n('default'), s2: n('s2') };
  };
  /** A sandbox placed on `server`: fillers first until the placement rule (fewest live, ties to default) picks it. */
  const createOn = async (server: 'default' | 's2', name: string): Promise<Sandbox> => {
    for (;;) {
      const c = await liveCounts();
      if ((server === 's2') === c.s2 < c.default) break;
      await create(`filler-${randomUUID().slice(0, 8)}`);
    }
    const s = await create(name);
    expect(s.server).toBe(server);
    return s;
  };

  beforeAll(async () => {
    [db, cluster] = await Promise.all([createTestDatabase({ poolSize: 8 }), startSecondCluster()]);
    s2Url = await cluster.createDatabase('sbx_placement');
    s2 = new pg.Pool({ connectionString: s2Url, max: 2 });
    s2.on('error', () => undefined);
    // The configuration as an operator writes it; the parsed list is what the bot and the CLI open.
    const config = loadConfig({ DATABASE_URL: db.url, SANDBOX_CREDENTIAL_SECRET: SECRET, SANDBOX_DATABASE_SERVERS: `s2=${s2Url}` });
    expect(config.databaseServers).toEqual([{ name: 's2', url: s2Url }]);
    isolation = wireIsolation(config, silentLogger(), db.url);
    servers = new SandboxServers(SandboxServers.controlOnly(db.prisma, db.url, db.pool).handle('default'), [openServerHandle(config.databaseServers[0]!, silentLogger())], undefined, () => Date.now() + clockMs);
    manager = makeManager();
  }, 120_000);

  afterAll(async () => {
    await servers?.close();
    await s2?.end().catch(() => undefined);
    await isolation?.close();
    await cluster?.destroy();
    await db?.drop();
  });

  it('splits 20 creates 10 and 10, ties to default first; each schema and role on its own server', async () => {
    const first = await create('place-00');
    expect(first.server).toBe('default');
    const second = await create('place-01');
    expect(second.server).toBe('s2');
    const made: Sandbox[] = [first, second];
    for (let batch = 0; batch < 6; batch++) {
      const names = Array.from({ length: batch < 3 ? 5 : 1 }, (_, i) => `place-${batch}${i}x`);
      made.push(...(await Promise.all(names.map((n) => create(n)))));
    }
    expect(made).toHaveLength(20);
    const { rows } = await db.pool.query<{ server: string; n: number }>(`SELECT server, count(*)::int AS n FROM sandboxes WHERE status = 'running' GROUP BY server ORDER BY server`);
    expect(rows).toEqual([
      { server: 'default', n: 10 },
      { server: 's2', n: 10 },
    ]);
    // The catalogs agree with the rows: each schema exists on its server only; each role too, with CONNECT there.
    const onDefault = made.filter((s) => s.server === 'default').map((s) => s.schemaName).sort();
    const onS2 = made.filter((s) => s.server === 's2').map((s) => s.schemaName).sort();
    expect(await schemasOn(db.pool)).toEqual(onDefault);
    expect(await schemasOn(s2)).toEqual(onS2);
    for (const s of made) {
      const [here, there] = s.server === 's2' ? [s2, db.pool] : [db.pool, s2];
      expect(await roleOn(here, s.id)).toEqual({ connect: true });
      expect(await roleOn(there, s.id)).toBeUndefined();
    }
    // The template's tables on s2, built from s2's own copy of the template.
    const { rows: tables } = await s2.query(`SELECT relname::text AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1`, [second.schemaName]);
    expect(tables.map((t) => t.t)).toEqual(['badges', 'communities', 'profiles']);
    const audit = await db.pool.query(`SELECT details->>'server' AS server FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'schema_created'`, [second.id]);
    expect(audit.rows).toEqual([{ server: 's2' }]);
  });

  it('status, env, reset and clone of an s2 sandbox act on s2', async () => {
    const remote = await createOn('s2', 'remote-ops');
    const local = await createOn('default', 'remote-ops-twin');

    const { health } = await manager.getStatus(remote.name, operator);
    expect(health.schema.state).toBe('ok');
    expect(health.schema.tables.map((x) => x.tableName).sort()).toEqual(['badges', 'communities', 'profiles']);

    // env: s2's address, the sandbox's own role; and that login really works on s2 (and only in its schema).
    const env = await manager.getConnectionDetails(remote.name, operator);
    expect(env.SANDBOX_DATABASE_SERVER).toBe('s2');
    const u = new URL(env.SANDBOX_DATABASE_URL!);
    expect([u.hostname, u.port, u.pathname, u.username]).toEqual(['127.0.0.1', String(cluster.port), '/sbx_placement', remote.schemaName]);
    const asRole = new pg.Client({ connectionString: env.SANDBOX_DATABASE_URL });
    await asRole.connect();
    try {
      await asRole.query(`INSERT INTO ${remote.schemaName}.communities (name, discord_guild_id) VALUES ('by-role', '42')`);
      await expect(asRole.query('SELECT count(*) FROM sandboxes')).rejects.toThrow(/permission denied/);
    } finally {
      await asRole.end();
    }
    // The SDK as a worker uses it: s2's sandbox_self_status() knows the sandbox is live there.
    const sb = await connectSandbox({ env });
    try {
      expect((await sb.db.query(`SELECT name FROM communities ORDER BY name`)).rows).toEqual([{ name: 'by-role' }]);
    } finally {
      await sb.close();
    }
    expect((await manager.getConnectionDetails(local.name, operator)).SANDBOX_DATABASE_URL).toContain(new URL(db.url).port ? `:${new URL(db.url).port}/` : '127.0.0.1');

    // reset: the row written on s2 is gone; a row in the default sandbox is not touched.
    await db.pool.query(`INSERT INTO ${local.schemaName}.communities (name, discord_guild_id) VALUES ('keep', '7')`);
    const countOn = async (pool: pg.Pool, schema: string, name: string): Promise<number> =>
      Number((await pool.query(`SELECT count(*)::int AS n FROM ${schema}.communities WHERE name = $1`, [name])).rows[0].n);
    expect(await countOn(s2, remote.schemaName, 'by-role')).toBe(1);
    await manager.reset(remote.name, operator);
    expect(await countOn(s2, remote.schemaName, 'by-role')).toBe(0);
    expect(await countOn(db.pool, local.schemaName, 'keep')).toBe(1);
    expect(await roleOn(s2, remote.id)).toEqual({ connect: true });

    // clone: on its source's server, whatever the counts say.
    // (The counts now send a new sandbox to default: s2 holds as many or more.)
    while ((await liveCounts()).s2 < (await liveCounts()).default) await create(`filler-${randomUUID().slice(0, 8)}`);
    await s2.query(`INSERT INTO ${remote.schemaName}.communities (name, discord_guild_id) VALUES ('copied', '8')`);
    const { sandbox: copy } = await manager.clone(remote.name, 'remote-ops-copy', operator);
    expect(copy.server).toBe('s2');
    expect(await serverOf(copy.id)).toBe('s2');
    expect(await countOn(s2, copy.schemaName, 'copied')).toBe(1);
    expect(await schemaExists(db, copy.schemaName)).toBe(false);
    expect(await roleOn(s2, copy.id)).toEqual({ connect: true });
  });

  it('destroy drops the schema and role on s2 only', async () => {
    const remote = await createOn('s2', 'destroy-a');
    const defaultsBefore = await schemasOn(db.pool);
    await manager.destroy(remote.name, operator);
    expect((await db.pool.query(`SELECT status::text AS s FROM sandboxes WHERE id = $1`, [remote.id])).rows[0].s).toBe('destroyed');
    expect(await schemasOn(s2)).not.toContain(remote.schemaName);
    expect(await roleOn(s2, remote.id)).toBeUndefined();
    expect(await schemasOn(db.pool)).toEqual(defaultsBefore);
    const trail = await db.pool.query(`SELECT event_type, details->>'dropped' AS dropped FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type IN ('schema_dropped', 'role_dropped') ORDER BY id`, [remote.id]);
    expect(trail.rows).toEqual([
      { event_type: 'schema_dropped', dropped: 'true' },
      { event_type: 'role_dropped', dropped: null },
    ]);
  });

  it('the sweeper finds orphans and missing schemas on each server, and leaves unknown ones alone', async () => {
    const remote = await createOn('s2', 'orphan-a');
    const live = await createOn('default', 'orphan-b');
    await manager.destroy(remote.name, operator);
    // A schema left behind on s2 for the destroyed sandbox (a drop lost with its connection), and one of
    // the exact pattern on s2 whose id this control database has never seen (another install's).
    await s2.query(`CREATE SCHEMA ${remote.schemaName}`);
    const strangerId = randomUUID();
    const stranger = `sandbox_${strangerId.replaceAll('-', '')}`;
    await s2.query(`CREATE SCHEMA ${stranger}`);
    // A default-server orphan is still found on the control database.
    const localOrphan = `sandbox_${randomUUID().replaceAll('-', '')}`;
    await db.pool.query(`CREATE SCHEMA ${localOrphan}`);
    // A live s2 sandbox whose schema vanished: marked failed, checked against s2's catalog.
    const vanished = await createOn('s2', 'orphan-c');
    await s2.query(`DROP SCHEMA ${vanished.schemaName} CASCADE`);

    let summary = await sweep();
    for (let i = 0; i < 5 && (summary.counts.orphan_dropped < 2 || summary.counts.schema_missing < 1); i++) summary = await sweep();
    expect(summary.failures).toEqual([]);
    expect(await schemasOn(s2)).not.toContain(remote.schemaName);
    expect(await schemasOn(s2)).toContain(stranger);
    expect(await schemasOn(db.pool)).not.toContain(localOrphan);
    expect(await schemasOn(db.pool)).toContain(live.schemaName);
    const audit = await db.pool.query(`SELECT details->>'server' AS server FROM sandbox_audit_log WHERE event_type = 'orphan_schema_dropped' AND details->>'schemaName' = $1`, [remote.schemaName]);
    expect(audit.rows).toEqual([{ server: 's2' }]);
    const marked = await db.pool.query(`SELECT 1 FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'schema_missing'`, [vanished.id]);
    expect(marked.rowCount).toBe(1);
    await s2.query(`DROP SCHEMA ${stranger}`);
  });

  it('a remote create that fails after its DDL committed on s2 is compensated there', async () => {
    // Even the counts so the next create goes to s2.
    while ((await liveCounts()).s2 >= (await liveCounts()).default) await create(`filler-${randomUUID().slice(0, 8)}`);
    faults.armed = 'create:before-running';
    const err = await failure(manager.create({ name: 'compensated', owner: 'cli:placement' }, operator));
    expect(err.code).toBe(ErrorCode.Internal);
    const { rows } = await db.pool.query<{ id: string; status: string; server: string }>(`SELECT id::text AS id, status::text AS status, server FROM sandboxes WHERE name = 'compensated'`);
    expect(rows).toEqual([{ id: expect.any(String), status: 'destroyed', server: 's2' }]);
    expect(await schemasOn(s2)).not.toContain(`sandbox_${rows[0]!.id.replaceAll('-', '')}`);
    expect(await roleOn(s2, rows[0]!.id)).toBeUndefined();
  });

  it('a process killed between the s2 commit and the control commit is reconciled on s2', async () => {
    while ((await liveCounts()).s2 >= (await liveCounts()).default) await create(`filler-${randomUUID().slice(0, 8)}`);
    const crash = await crashChild(
      { url: db.url, point: 'create:before-running', op: 'create', actor: operator, owner: 'cli:placement', name: 'crashed-remote', maxPerOwner: 1000, servers: [{ name: 's2', url: s2Url }] },
      db.pool,
    );
    expect(crash.signal, crash.stderr || crash.stdout).toBe('SIGKILL');
    const id = crash.sandboxId!;
    const schema = `sandbox_${id.replaceAll('-', '')}`;
    expect(await serverOf(id)).toBe('s2');
    expect(await schemasOn(s2)).toContain(schema);
    const summary = await sweep({ aheadMs: STUCK_MS + 60_000 });
    expect(summary.failures).toEqual([]);
    expect(summary.counts.stuck_reconciled).toBe(1);
    expect((await db.pool.query(`SELECT status::text AS s FROM sandboxes WHERE id = $1`, [id])).rows[0].s).toBe('destroyed');
    expect(await schemasOn(s2)).not.toContain(schema);
  });

  it('upgrade applies template files to an s2 sandbox on s2 (the template was applied on every server)', async () => {
    const remote = await createOn('s2', 'upgrade-me');
    const dir = mkdtempSync(join(tmpdir(), 'sbx-placement-template-'));
    try {
      writeFileSync(join(dir, '001_quests.sql'), 'CREATE TABLE quests (id int PRIMARY KEY, title text NOT NULL);\n');
      // What `sandbox template apply` does with several servers: the control database, then each server.
      const applied = await Promise.all([db.pool, s2].map((pool) => applyTemplateDir(pool, dir)));
      expect(applied.map((a) => a.applied)).toEqual([['001_quests.sql'], ['001_quests.sql']]);
      const { sandbox, applied: files } = await manager.upgrade(remote.name, operator);
      expect(files).toEqual(['001_quests.sql']);
      expect(sandbox.templateVersion).toBe(applied[1]!.version);
      const { rows } = await s2.query(`SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'quests'`, [remote.schemaName]);
      expect(rows).toHaveLength(1);
      expect(await schemaExists(db, remote.schemaName)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the sweeper recreates a missing role and drops an orphan role on s2, and leaves an unknown one alone', async () => {
    const live = await createOn('s2', 'role-live');
    const gone = await createOn('s2', 'role-gone');
    await manager.destroy(gone.name, operator);
    await s2.query('SELECT drop_sandbox_role($1::uuid)', [live.id]);
    const goneRole = `sandbox_${gone.id.replaceAll('-', '')}`;
    await s2.query(`CREATE ROLE ${goneRole}`);
    const strangerId = randomUUID();
    const strangerRole = `sandbox_${strangerId.replaceAll('-', '')}`;
    await s2.query(`CREATE ROLE ${strangerRole}`);
    try {
      const passes = [await sweep()];
      const total = (k: 'postgres_recreated' | 'postgres_orphan_dropped'): number => passes.reduce((n, p) => n + p.counts[k], 0);
      while (passes.length < 5 && (total('postgres_recreated') < 1 || total('postgres_orphan_dropped') < 1)) passes.push(await sweep());
      expect(passes.flatMap((p) => p.failures)).toEqual([]);
      expect(await roleOn(s2, live.id)).toEqual({ connect: true });
      expect(await roleOn(s2, gone.id)).toBeUndefined();
      expect((await s2.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [strangerRole])).rowCount).toBe(1);
      expect(passes.flatMap((p) => p.externalUnknown)).toContainEqual({ kind: 'role@s2', sandboxId: strangerId });
      const audit = await db.pool.query(`SELECT details->>'server' AS server FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'postgres_orphan_dropped'`, [gone.id]);
      expect(audit.rows).toEqual([{ server: 's2' }]);
    } finally {
      await s2.query(`DROP ROLE IF EXISTS ${strangerRole}`);
    }
  });

  it('the CLI opens the configured servers: migrate and template apply on each, create placed, env on s2', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { DATABASE_URL: db.url, SANDBOX_DATABASE_SERVERS: `s2=${s2Url}`, SANDBOX_CREDENTIAL_SECRET: SECRET, SANDBOX_OPERATOR: 'placement-cli' });
    delete process.env.REDIS_URL;
    delete process.env.NATS_URL;
    const cli = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
      return { code, out: out.join('\n'), err: err.join('\n') };
    };
    try {
      const migrated = await cli('migrate', '--json');
      expect(migrated.err).toBe('');
      const onS2Result = JSON.parse(migrated.out).servers.s2 as { applied: string[]; skipped: string[] };
      expect([...onS2Result.applied, ...onS2Result.skipped]).toContain('20261128001100_sandbox_server');
      const c = liveCounts();
      const made = JSON.parse((await cli('create', 'from-cli', '--json')).out);
      const counts = await c;
      expect(made.server).toBe(counts.s2 < counts.default ? 's2' : 'default');
      const onS2 = made.server === 's2' ? made : JSON.parse((await cli('create', 'from-cli-2', '--json')).out);
      expect(onS2.server).toBe('s2');
      const env = await cli('env', onS2.name);
      expect(env.out).toContain(`export SANDBOX_DATABASE_SERVER='s2'`);
      expect(env.out).toContain(`@127.0.0.1:${cluster.port}/sbx_placement`);
      expect((await cli('status', onS2.name)).out).toContain(`(on server s2)`);
      expect((await cli('list')).out.split('\n').find((l) => l.startsWith(`${onS2.name} `))).toMatch(/ s2 +[0-9a-f-]{36}$/);
      const dir = mkdtempSync(join(tmpdir(), 'sbx-placement-cli-'));
      try {
        writeFileSync(join(dir, '001_quests.sql'), 'CREATE TABLE quests (id int PRIMARY KEY, title text NOT NULL);\n');
        writeFileSync(join(dir, '002_rewards.sql'), 'CREATE TABLE rewards (id int PRIMARY KEY);\n');
        const applied = await cli('template', 'apply', dir);
        expect(applied.err).toBe('');
        expect(applied.out).toMatch(/^Applied to sandbox_template: 002_rewards\.sql\n.*\ns2: applied 002_rewards\.sql \(version 002_rewards\.sql@[0-9a-f]+\)$/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } finally {
      process.env = saved;
    }
  });

  it('ties go to the configured order; two servers on one cluster never touch each other\'s roles', async () => {
    // Another control database with servers default, zeta, alpha: zeta and alpha are two databases of
    // the private cluster, so each one's role listing shows the other's roles too.
    const ctl = await createTestDatabase({ poolSize: 4 });
    const zeta = openServerHandle({ name: 'zeta', url: await cluster.createDatabase('sbx_zeta') }, silentLogger());
    const alpha = openServerHandle({ name: 'alpha', url: await cluster.createDatabase('sbx_alpha') }, silentLogger());
    const three = new SandboxServers(SandboxServers.controlOnly(ctl.prisma, ctl.url, ctl.pool).handle('default'), [zeta, alpha]);
    const m = new SandboxManager({ prisma: ctl.prisma, logger: silentLogger(), servers: three, postgresResources: isolation.postgresResources, limits: { maxPerOwner: 100 } });
    try {
      const placed: string[] = [];
      for (let i = 0; i < 4; i++) placed.push((await m.create({ name: `order-${i}`, owner: 'cli:order' }, operator)).sandbox.server);
      expect(placed).toEqual(['default', 'zeta', 'alpha', 'default']);
      const summary = await new Sweeper({ manager: m, logger: silentLogger() }).runPass();
      expect(summary.failures).toEqual([]);
      expect(summary.counts.postgres_orphan_dropped).toBe(0);
      expect(summary.counts.postgres_recreated).toBe(0);
      for (const s of await m.list({}, operator)) {
        if (s.server === 'default') continue;
        const pool = s.server === 'zeta' ? zeta.pool! : alpha.pool!;
        expect((await pool.query(`SELECT has_database_privilege($1, current_database(), 'CONNECT') AS c`, [s.schemaName])).rows[0].c).toBe(true);
      }
      for (const s of await m.list({}, operator)) await m.destroy(s.name, operator);
    } finally {
      await three.close();
      await ctl.drop();
    }
  });

  it('with s2 stopped: creates go to default, s2 sandboxes say SANDBOX_011, nothing on default is touched', async () => {
    const remote = (await manager.list({ status: 'running' }, operator)).find((s) => s.server === 's2')!;
    expect(remote).toBeDefined();
    await cluster.stop();
    try {
      const defaultSchemas = await schemasOn(db.pool);
      const made = [await create('while-down-1'), await create('while-down-2'), await create('while-down-3')];
      expect(made.map((s) => s.server)).toEqual(['default', 'default', 'default']);

      const status = await failure(manager.getStatus(remote.name, operator));
      expect(status.code).toBe(ErrorCode.Unavailable);
      expect(status.message).toMatch(/server s2 is unavailable/);
      const destroy = await failure(manager.destroy(remote.name, operator));
      expect(destroy.code).toBe(ErrorCode.Unavailable);
      expect((await db.pool.query(`SELECT status::text AS s FROM sandboxes WHERE id = $1`, [remote.id])).rows[0].s).toBe('running');
      expect((await failure(manager.reset(remote.name, operator))).code).toBe(ErrorCode.Unavailable);

      // A sweep skips s2 and changes nothing on default (no schema dropped or marked missing there).
      clockMs += 10_000;
      const summary = await sweep();
      expect(summary.serversDown).toEqual(['s2']);
      expect(summary.counts.schema_missing).toBe(0);
      expect(summary.counts.orphan_dropped).toBe(0);
      expect(await schemasOn(db.pool)).toEqual([...defaultSchemas, ...made.map((s) => s.schemaName)].sort());
    } finally {
      await cluster.start();
    }
    // Back: after the few seconds a failed server is left alone, it is used again.
    clockMs += 10_000;
    expect((await manager.getStatus(remote.name, operator)).health.schema.state).toBe('ok');
    await manager.destroy(remote.name, operator);
    expect(await schemasOn(s2)).not.toContain(remote.schemaName);
  });
});
