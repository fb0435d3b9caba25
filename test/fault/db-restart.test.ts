/**
 * Database restart: a TCP proxy in front of the shared PostgreSQL cuts every connection and
 * refuses new ones, as a restarting server would, then accepts again. Proves that while the
 * database is away, manager operations fail with the "try again" code SANDBOX_011 (never the
 * internal SANDBOX_012, never a crash or an unhandled error: the pool's 'error' handler absorbs
 * the dead idle connections), that nothing half-done is left behind (an in-flight create is
 * left `creating` for the sweeper, which then cleans it up), and that the very same manager and
 * Prisma client work again once the database is back, without being recreated. Also checks that
 * errors.ts classifies each way a restart shows itself (reset, refused, 57P03 starting up,
 * 57P01 terminated, connect timeout) as SANDBOX_011. Finally the same through the running bot
 * (startApp + fake Discord): `/sandbox create` during the outage gets an ephemeral SANDBOX_011,
 * and one after it succeeds, with the same bot process and gateway session.
 */
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, createPrisma, type PrismaClient } from '../../src/db/database.ts';
import { ErrorCode, SandboxError, isConnectionError, toSandboxError } from '../../src/sandbox/errors.ts';
import type { FaultInjector, FaultPoint } from '../../src/sandbox/faults.ts';
import { SandboxManager } from '../../src/sandbox/manager.ts';
import type { Actor } from '../../src/sandbox/types.ts';
import { countRows, createTestDatabase, schemaExists, type TestDatabase } from '../support/db.ts';
import { sweepAt } from './support/sweep.ts';
import { TcpProxy } from './support/tcp-proxy.ts';
import type { App } from '../../src/app.ts';
import { addGuild, finalText, sandboxCommand, setupEnv, type Env } from '../e2e/support/harness.ts';
import pg from 'pg';
import { silentLogger } from '../../src/logger.ts';

const PgPool = pg.Pool;

const operator: Actor = { kind: 'operator', name: 'restart-test' };

/** A fault injector that, when armed, holds an operation at one point until released. */
class Gate implements FaultInjector {
  private armed: { point: FaultPoint; reached: () => void; release: Promise<void> } | undefined;
  arm(point: FaultPoint): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    this.armed = { point, reached, release: new Promise<void>((r) => (release = r)) };
    return { reached: reachedP, release };
  }
  async hit(point: FaultPoint): Promise<void> {
    const armed = this.armed;
    if (!armed || armed.point !== point) return;
    this.armed = undefined;
    armed.reached();
    await armed.release;
  }
}
const gate = new Gate();

/** What the operation threw, as the user would see it (adapters pass errors through toSandboxError). */
async function failure(op: Promise<unknown>): Promise<{ raw: unknown; seen: SandboxError }> {
  try {
    await op;
  } catch (raw) {
    return { raw, seen: toSandboxError(raw) };
  }
  throw new Error('expected the operation to fail while the database is down');
}

describe('database restart behind a TCP proxy', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let pool: pg.Pool;
  let prisma: PrismaClient;
  let manager: SandboxManager;
  const logLines: { msg: string; level: number }[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown): void => {
    unhandled.push(err);
  };

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    db = await createTestDatabase();
    const target = new URL(db.url);
    proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as { msg: string; level: number });
          cb();
        },
      }),
    );
    pool = createPool(proxy.urlFor(db.url), logger, 4);
    prisma = createPrisma(pool, logger);
    manager = new SandboxManager({ prisma, logger, faults: gate });
  });

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    await prisma?.$disconnect().catch(() => undefined);
    await pool?.end().catch(() => undefined);
    await proxy?.close();
    await db?.drop();
  });

  it('answers SANDBOX_011 during the outage and recovers with the same client', async () => {
    // Before: everything works through the proxy, and the pool holds idle connections.
    const before = await manager.create({ name: 'before-outage' }, operator);
    expect(before.sandbox.status).toBe('running');
    await Promise.all([manager.list(), manager.list(), manager.list()]);
    expect(pool.idleCount).toBeGreaterThan(0);
    const acceptedBefore = proxy.accepted;

    // The idle connections die with the outage; the pool reports it through its 'error' event.
    const idleConnectionLost = once(pool, 'error');
    await proxy.down('reset');
    await idleConnectionLost;

    // Create, destroy and extend are refused with the "try again" code, not an internal error.
    const create = await failure(manager.create({ name: 'during-outage' }, operator));
    expect(create.seen.code, create.seen.message).toBe(ErrorCode.Unavailable);
    expect(create.seen.message).toMatch(/try again/i);
    const destroy = await failure(manager.destroy('before-outage', operator));
    expect(destroy.seen.code).toBe(ErrorCode.Unavailable);
    const extend = await failure(manager.extendTtl('before-outage', 2, operator));
    expect(extend.seen.code).toBe(ErrorCode.Unavailable);
    const list = await failure(manager.list({}, operator));
    expect(list.seen.code).toBe(ErrorCode.Unavailable);
    for (const f of [create, destroy, extend, list]) expect(isConnectionError(f.raw)).toBe(true);
    // The proxy really refused connections: this is not a cached answer.
    expect(proxy.refused).toBeGreaterThan(0);

    // Nothing half-done was written (checked directly, not through the proxy).
    expect(await countRows(db, 'sandboxes', `name = 'during-outage'`)).toBe(0);
    const { rows } = await db.pool.query<{ status: string }>(`SELECT status::text AS status FROM sandboxes WHERE name = 'before-outage'`);
    expect(rows[0]!.status).toBe('running');
    expect(await schemaExists(db, before.sandbox.schemaName)).toBe(true);

    await proxy.up();

    // The same manager, Prisma client and pool work again: a create and two destroys succeed.
    const after = await manager.create({ name: 'after-outage' }, operator);
    expect(after.sandbox.status).toBe('running');
    expect(await schemaExists(db, after.sandbox.schemaName)).toBe(true);
    expect((await manager.destroy('after-outage', operator)).status).toBe('destroyed');
    expect((await manager.destroy('before-outage', operator)).status).toBe('destroyed');
    expect(await schemaExists(db, before.sandbox.schemaName)).toBe(false);
    expect(await schemaExists(db, after.sandbox.schemaName)).toBe(false);
    expect(proxy.accepted).toBeGreaterThan(acceptedBefore);

    // The dead idle connections were reported through the pool's error handler, not thrown.
    expect(logLines.some((l) => l.msg === 'database connection lost')).toBe(true);
    expect(unhandled).toEqual([]);
  });

  it('fails an in-flight create cleanly when the connection dies mid-transaction and the port refuses', async () => {
    const held = gate.arm('create:after-schema');
    const inFlight = manager.create({ name: 'in-flight' }, operator);
    await held.reached; // the schema transaction is open, its DDL done but not committed

    await proxy.down('refuse');
    held.release();
    let raw: unknown;
    await inFlight.catch((e: unknown) => (raw = e));
    // create() itself answers with a SandboxError here (its failure path classifies the error).
    expect(raw).toBeInstanceOf(SandboxError);
    expect((raw as SandboxError).code).toBe(ErrorCode.Unavailable);

    // New connections are refused outright (ECONNREFUSED), and that too is "try again".
    const list = await failure(manager.list({}, operator));
    expect(isConnectionError(list.raw)).toBe(true);
    expect(list.seen.code).toBe(ErrorCode.Unavailable);

    // The server rolled the schema back; the committed `creating` row is left for the sweeper.
    const { rows } = await db.pool.query<{ status: string; schema_name: string }>(`SELECT status::text AS status, schema_name FROM sandboxes WHERE name = 'in-flight'`);
    expect(rows[0]!.status).toBe('creating');
    expect(await schemaExists(db, rows[0]!.schema_name)).toBe(false);

    await proxy.up();
    const after = await manager.create({ name: 'after-refuse' }, operator);
    expect(after.sandbox.status).toBe('running');
    expect((await manager.destroy('after-refuse', operator)).status).toBe('destroyed');

    // The stuck row is reconciled by a sweep over the same Prisma client, its clock past the threshold.
    const summary = await sweepAt({ prisma });
    expect(summary.failures).toEqual([]);
    expect(summary.counts.stuck_reconciled).toBe(1);
    const { rows: final } = await db.pool.query<{ status: string }>(`SELECT status::text AS status FROM sandboxes WHERE name = 'in-flight'`);
    expect(final[0]!.status).toBe('destroyed');
    expect(unhandled).toEqual([]);
  });

  it('classifies a server that is starting up (57P03) and a terminated backend (57P01) as "try again"', async () => {
    await proxy.down('starting');
    const starting = await failure(manager.create({ name: 'while-starting' }, operator));
    expect(isConnectionError(starting.raw)).toBe(true);
    expect(starting.seen.code).toBe(ErrorCode.Unavailable);
    await proxy.up();

    // An administrator shutdown ends the running statement with 57P01 (as a restart does).
    const victim = manager.store.prisma.$queryRaw`SELECT 1 AS one FROM pg_sleep(30)`;
    const outcome = victim.then(
      () => undefined,
      (e: unknown) => e,
    );
    // Wait (by polling the catalog, not a timer assertion) until the statement runs, then end it.
    for (;;) {
      const { rows } = await db.pool.query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()`);
      if (rows.length) {
        await db.pool.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
        break;
      }
    }
    const terminated = await outcome;
    expect(isConnectionError(terminated)).toBe(true);
    expect(toSandboxError(terminated).code).toBe(ErrorCode.Unavailable);

    // And the same client carries on.
    const after = await manager.create({ name: 'after-terminate' }, operator);
    expect(after.sandbox.status).toBe('running');
    expect(unhandled).toEqual([]);
  });

  it('classifies a connect timeout (an unanswering server) as "try again"', async () => {
    // Its own short-timeout pool, so the test does not wait the production 10 s.
    const quiet = new PgPool({ connectionString: proxy.urlFor(db.url), max: 1, connectionTimeoutMillis: 200 });
    quiet.on('error', () => undefined);
    const quietPrisma = createPrisma(quiet, silentLogger());
    try {
      await proxy.down('blackhole');
      const timedOut = await failure(new SandboxManager({ prisma: quietPrisma, logger: silentLogger() }).list({}, operator));
      expect(isConnectionError(timedOut.raw)).toBe(true);
      expect(timedOut.seen.code).toBe(ErrorCode.Unavailable);
    } finally {
      await proxy.up();
      await quietPrisma.$disconnect();
      await quiet.end();
    }
  });
});

describe('database restart while the bot runs', () => {
  let env: Env;
  let proxy: TcpProxy;
  let app: App;

  beforeAll(async () => {
    env = await setupEnv();
    const target = new URL(env.db.url);
    proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    app = await env.start({ databaseUrl: proxy.urlFor(env.db.url) });
  });
  afterAll(async () => {
    await env?.close();
    await proxy?.close();
  });

  it('answers /sandbox create with an ephemeral SANDBOX_011 during the outage, and succeeds after it, with no restart', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    await env.fake.waitForIdentify();
    const create = (name: string) => env.fake.sendCommand(sandboxCommand({ guildId, userId: ownerId, subcommand: 'create', options: { name } }));

    await proxy.down('reset');
    const during = create('bot-during-outage');
    const duringText = await finalText(during);
    expect(during.ephemeral).toBe(true);
    expect(duringText).toContain('SANDBOX_011');
    expect(duringText).not.toContain('SANDBOX_012');
    expect(await countRows(env.db, 'sandboxes', `name = 'bot-during-outage'`)).toBe(0);

    await proxy.up();
    const after = create('bot-after-outage');
    const afterText = await finalText(after);
    expect(afterText).toContain('bot-after-outage');
    expect(afterText).toContain('running');
    // The same running bot and client: no restart, no new login.
    expect(app.client.isReady()).toBe(true);
    expect(env.fake.identifies.length).toBe(1);
    const sandbox = await app.manager.getByName('bot-after-outage');
    expect(sandbox).toMatchObject({ status: 'running', owner: ownerId, guildIds: [guildId] });
    expect(await schemaExists(env.db, sandbox!.schemaName)).toBe(true);
  });
});
