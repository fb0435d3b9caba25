import type { NatsConnection } from '@nats-io/transport-node';
import { headers } from '@nats-io/transport-node';
import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { ExternalRouter, assertNoLoop } from '../../src/routing/external-router.ts';
import { EventPublisher } from '../../src/routing/publisher.ts';
import { RouteTable } from '../../src/routing/route-table.ts';
import { EventRouter } from '../../src/routing/router.ts';
import { SandboxStreams, ensureProductionStream } from '../../src/routing/streams.ts';
import { TcpProxy } from '../fault/support/tcp-proxy.ts';
import { createTestDatabase, snowflake, type TestDatabase } from '../support/db.ts';
import { deleteStreams, insertSandbox, jetstreamManager, mapGuild, natsConnect, testTag, waitFor } from './support/routing.ts';

const tag = testTag();
const prefix = `t${tag}.events`;
const production = `EVENTS_${tag}`;
const ingestStream = `INGEST_${tag}`;
const ingestSubject = `t${tag}.ingest.>`;
let db: TestDatabase;
let nc: NatsConnection;
let jsm: JetStreamManager;
let routes: RouteTable;
const made: string[] = [production, ingestStream, `INGEST2_${tag}`];
const stops: Array<() => Promise<unknown>> = [];

async function count(stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}

function startRouter(opts: { subject?: string; durable?: string } = {}) {
  const publisher = new EventPublisher({ nc, logger: silentLogger() });
  const router = new EventRouter({ routes, publisher, prefix });
  const external = new ExternalRouter({
    nc,
    logger: silentLogger(),
    router,
    publisher,
    ingestSubject: opts.subject ?? ingestSubject,
    prefix,
    ingestStream,
    durable: opts.durable ?? `router-${tag}`,
  });
  stops.push(() => external.stop());
  return { publisher, external };
}

beforeAll(async () => {
  db = await createTestDatabase();
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
  await ensureProductionStream(jsm, production, prefix, silentLogger());
  routes = new RouteTable({ pool: db.pool, connectionString: db.url, logger: silentLogger() });
  await routes.start();
});

afterAll(async () => {
  for (const s of stops) await s().catch(() => undefined);
  await routes?.stop();
  await deleteStreams(jsm, made);
  await nc?.close();
  await db?.drop();
});

describe('sandbox route (external ingest)', () => {
  it('refuses an input filter that overlaps its outputs', async () => {
    for (const subject of ['>', `t${tag}.>`, `${prefix}.>`, `${prefix}.MESSAGE_CREATE`, 'sandbox.>', 'sandbox.*.events.>', '*.*.events.X']) {
      const { external } = startRouter({ subject });
      await expect(external.start(), subject).rejects.toMatchObject({ code: 'SANDBOX_013' });
    }
    expect(() => assertNoLoop(['discord.ingest.>'], 'events')).not.toThrow();
    await expect(jsm.streams.info(ingestStream)).rejects.toThrow(); // refused before creating anything
  });

  it('10,000 ingested messages become exactly 10,000 outputs, split by mapping, two processes sharing one consumer', async () => {
    const sandbox = await insertSandbox(db);
    const sandboxStream = `SANDBOX_${sandbox.replaceAll('-', '')}`;
    made.push(sandboxStream);
    await new SandboxStreams({ jsm, logger: silentLogger(), maxAgeHours: 1, maxBytes: 16 * 1024 * 1024 }).ensure(sandbox);
    const mapped = snowflake();
    await mapGuild(db, mapped, sandbox);
    await routes.catchUp();

    const a = startRouter();
    const b = startRouter();
    await a.external.start();
    await b.external.start();
    const info = await jsm.streams.info(ingestStream);
    expect(info.config.retention).toBe('workqueue');

    const prodBefore = await count(production);
    const js = jetstream(nc);
    const total = 10_000;
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < total; i++) {
      const guild = i % 2 === 0 ? mapped : snowflake();
      const body = JSON.stringify({ op: 0, t: 'MESSAGE_CREATE', s: i + 1, d: { id: String(i), guild_id: guild, content: `m${i}` } });
      const h = headers();
      if (i % 3 === 0) h.set('Nats-Msg-Id', `ext-${tag}-${i}`);
      pending.push(js.publish(`t${tag}.ingest.shard0`, body, { headers: h }));
      if (pending.length >= 500) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    await waitFor(async () => (await count(sandboxStream)) + (await count(production)) - prodBefore >= total && (await count(ingestStream)) === 0, 'every input routed and acked', 60_000, 200);
    await new Promise((r) => setTimeout(r, 500));
    expect(await count(sandboxStream)).toBe(total / 2);
    expect(await count(production)).toBe(prodBefore + total / 2);
    expect(await count(ingestStream)).toBe(0); // all acked
    expect(a.external.counts.received + b.external.counts.received).toBeGreaterThanOrEqual(total);
    // Output ids: the input's Nats-Msg-Id when it had one, else <stream>:<seq>.
    const firstSandbox = (await jsm.streams.getMessage(sandboxStream, { seq: 1 }))!;
    expect(firstSandbox.header.get('Nats-Msg-Id')).toMatch(new RegExp(`^(ext-${tag}-\\d+|${ingestStream}:\\d+)$`));
    const ids = new Set<string>();
    for (let seq = 1; seq <= 30; seq++) ids.add(((await jsm.streams.getMessage(sandboxStream, { seq })))!.header.get('Nats-Msg-Id'));
    expect([...ids].some((id) => id.startsWith(`ext-${tag}-`))).toBe(true);
    expect([...ids].some((id) => id.startsWith(`${ingestStream}:`))).toBe(true);
  });

  it('a message that already carries Sandbox-Route-Version is dropped and counted, and nothing loops for 5 s', async () => {
    for (const stop of stops.splice(0)) await stop(); // only this router pulls now
    const { publisher, external } = startRouter();
    await external.start();
    const prodBefore = await count(production);
    const h = headers();
    h.set('Sandbox-Route-Version', '7');
    await jetstream(nc).publish(`t${tag}.ingest.shard0`, JSON.stringify({ op: 0, t: 'MESSAGE_CREATE', s: 1, d: { guild_id: snowflake() } }), { headers: h });
    await new Promise((r) => setTimeout(r, 5000));
    expect(await count(production)).toBe(prodBefore);
    expect(await count(ingestStream)).toBe(0);
    expect(publisher.counts.dropped).toEqual({ already_routed: 1 });
    expect(external.counts.received).toBe(1); // received once, not redelivered
  });

  it('acks an input only once its output is stored: with the output side cut, inputs stay in the ingest stream', async () => {
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: 4222 });
    const out = await natsConnect(`nats://127.0.0.1:${proxy.port}`);
    try {
      const publisher = new EventPublisher({ nc: out, logger: silentLogger(), publishTimeoutMs: 1000, retryDelayMs: 100 });
      const router = new EventRouter({ routes, publisher, prefix });
      const external = new ExternalRouter({
        nc, logger: silentLogger(), router, publisher, prefix,
        ingestSubject: `t${tag}.ingest2.>`, ingestStream: `INGEST2_${tag}`, durable: `router2-${tag}`,
      });
      stops.push(() => external.stop());
      await external.start();
      await proxy.down('reset');
      await waitFor(() => publisher.degraded, 'the output side to be down');
      const prodBefore = await count(production);
      const js = jetstream(nc);
      for (let i = 0; i < 20; i++) {
        await js.publish(`t${tag}.ingest2.0`, JSON.stringify({ op: 0, t: 'MESSAGE_CREATE', s: i, d: { guild_id: snowflake() } }));
      }
      await waitFor(() => external.counts.received === 20, 'the inputs to be pulled');
      await new Promise((r) => setTimeout(r, 1000));
      expect(await count(`INGEST2_${tag}`)).toBe(20); // pulled, not acked
      expect(await count(production)).toBe(prodBefore);
      await proxy.up();
      await waitFor(async () => (await count(`INGEST2_${tag}`)) === 0, 'inputs acked after their outputs were stored', 15_000, 100);
      expect(await count(production)).toBe(prodBefore + 20);
      expect(external.counts.acked).toBe(20);
      await external.stop();
      await publisher.close();
    } finally {
      await out.close().catch(() => undefined);
      await proxy.close();
    }
  });
});
