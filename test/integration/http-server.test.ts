// /healthz, /readyz and /metrics over real HTTP, against a real database and one that is down.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, createTestDatabase, makeManager, snowflake, type TestDatabase } from '../support/db.ts';
import { createPool, createPrisma } from '../../src/db/database.ts';
import { HttpServer } from '../../src/http/server.ts';
import { BotStore } from '../../src/sandbox/store/bot-store.ts';
import { silentLogger } from '../../src/logger.ts';
import { Metrics } from '../../src/metrics.ts';

const op = { kind: 'operator', name: 'tester' } as const;
let db: TestDatabase;
let metrics: Metrics;
let server: HttpServer;
let base: string;
let gatewayReady = false;
const cleanup: (() => Promise<unknown>)[] = [];

/** A TCP port on which nothing listens. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  db = await createTestDatabase();
  metrics = new Metrics({ store: new BotStore(db.prisma), logger: silentLogger() });
  server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    registry: metrics.registry,
    pingDatabase: () => new BotStore(db.prisma).ping(),
    isGatewayReady: () => gatewayReady,
    logger: silentLogger(),
  });
  const { port } = await server.start();
  base = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await server?.stop();
  for (const fn of cleanup) await fn();
  await db?.drop();
});

describe('http', () => {
  it('GET /healthz is 200 ok', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz is 503 until the gateway is ready, then 200', async () => {
    gatewayReady = false;
    let res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'not_ready', reasons: ['gateway_not_ready'], checks: { database: 'ok' } });

    gatewayReady = true;
    res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready', checks: { database: 'ok', gateway: 'ready' } });
  });

  it('GET /readyz is 503 with the reason when the database does not answer', async () => {
    const pool = createPool(`postgresql://postgres@127.0.0.1:${await closedPort()}/nowhere`, silentLogger(), 1);
    const prisma = createPrisma(pool, silentLogger());
    cleanup.push(() => pool.end());
    const down = new HttpServer({
      host: '127.0.0.1',
      port: 0,
      registry: metrics.registry,
      pingDatabase: () => new BotStore(prisma).ping(),
      isGatewayReady: () => true,
      logger: silentLogger(),
    });
    const { port } = await down.start();
    cleanup.push(() => down.stop());
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'not_ready', reasons: ['database_unavailable'], checks: { database: 'error', gateway: 'ready' } });
    // Liveness does not depend on the database.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it('GET /readyz reports a database that hangs as a timeout', async () => {
    const hung = new HttpServer({
      host: '127.0.0.1',
      port: 0,
      registry: metrics.registry,
      pingDatabase: () => new Promise(() => undefined),
      isGatewayReady: () => true,
      logger: silentLogger(),
      dbTimeoutMs: 50,
    });
    const { port } = await hung.start();
    cleanup.push(() => hung.stop());
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ reasons: ['database_timeout'] });
  });

  it('GET /metrics serves Prometheus text with every metric and the database count of running sandboxes', async () => {
    const manager = makeManager(db, { observer: metrics.managerObserver() });
    await manager.create({ owner: snowflake() }, op);
    await manager.create({ owner: snowflake() }, op);
    const gone = await manager.create({ owner: snowflake() }, op);
    await manager.destroy(gone.sandbox.id, op);

    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(metrics.registry.contentType);
    const text = await res.text();
    for (const name of [
      'sandboxes',
      'sandbox_creates_total',
      'sandbox_destroys_total',
      'sandbox_create_duration_seconds',
      'sandbox_destroy_duration_seconds',
      'sandbox_destroy_failures_total',
      'bot_commands_total',
      'bot_command_duration_seconds',
      'interaction_ack_seconds',
      'sweeper_actions_total',
      'sweeper_failures_total',
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    const running = await countRows(db, 'sandboxes', "status = 'running'");
    expect(running).toBe(2);
    expect(text).toContain(`sandboxes{status="running"} ${running}`);
    expect(text).toContain(`sandboxes{status="destroyed"} 1`);
    expect(text).toContain('sandbox_creates_total{outcome="success"} 3');
  });

  it('answers 404 for unknown paths and 405 for other methods', async () => {
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics/extra`)).status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(`${base}/healthz?probe=1`)).status).toBe(200);
  });

  it('binds where it is told and stops cleanly', async () => {
    const s = new HttpServer({ host: '127.0.0.1', port: 0, registry: metrics.registry, pingDatabase: async () => 1, isGatewayReady: () => true, logger: silentLogger() });
    const { port } = await s.start();
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    await s.stop();
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
