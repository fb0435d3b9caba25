import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { EventPublisher } from '../../src/routing/publisher.ts';
import { RouteTable } from '../../src/routing/route-table.ts';
import { EventRouter } from '../../src/routing/router.ts';
import { SandboxStreams, ensureProductionStream } from '../../src/routing/streams.ts';
import type { GatewayDispatch } from '../../src/routing/types.ts';
import { TcpProxy } from '../fault/support/tcp-proxy.ts';
import { createTestDatabase, snowflake, type TestDatabase } from '../support/db.ts';
import { deleteStreams, insertSandbox, jetstreamManager, mapGuild, natsConnect, testTag, waitFor } from './support/routing.ts';

const tag = testTag();
const prefix = `t${tag}.events`;
const production = `EVENTS_${tag}`;
let db: TestDatabase;
let nc: NatsConnection;
let jsm: JetStreamManager;
let routes: RouteTable;
let streams: SandboxStreams;
const made: string[] = [production];
const closers: Array<() => Promise<unknown>> = [];

const msg = (guildId: string | undefined, s: number, t = 'MESSAGE_CREATE', extra: Record<string, unknown> = {}): GatewayDispatch => ({
  op: 0,
  t,
  s,
  d: { id: snowflake(), content: `hello ${s}`, ...(guildId ? { guild_id: guildId } : {}), ...extra },
});

async function count(stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}

async function sandboxWithStream(): Promise<string> {
  const id = await insertSandbox(db);
  await streams.ensure(id);
  made.push(`SANDBOX_${id.replaceAll('-', '')}`);
  return id;
}

function pipeline(publisherNc = nc, opts: Partial<ConstructorParameters<typeof EventPublisher>[0]> = {}) {
  const publisher = new EventPublisher({ nc: publisherNc, logger: silentLogger(), ...opts });
  const router = new EventRouter({ routes, publisher, prefix });
  return { publisher, router };
}

beforeAll(async () => {
  db = await createTestDatabase();
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
  await ensureProductionStream(jsm, production, prefix, silentLogger());
  streams = new SandboxStreams({ jsm, logger: silentLogger(), maxAgeHours: 1, maxBytes: 1024 * 1024 });
  routes = new RouteTable({ pool: db.pool, connectionString: db.url, logger: silentLogger() });
  await routes.start();
});

afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await routes?.stop();
  await deleteStreams(jsm, made);
  await nc?.close();
  await db?.drop();
});

describe('routing and publishing', () => {
  it('a mapped guild’s events land only on its sandbox subject; unmapped and guildless ones only on production', async () => {
    const sandbox = await sandboxWithStream();
    const mapped = snowflake();
    const unmapped = snowflake();
    await mapGuild(db, mapped, sandbox);
    await routes.catchUp();
    const stream = `SANDBOX_${sandbox.replaceAll('-', '')}`;
    const prodBefore = await count(production);
    const { publisher, router } = pipeline();
    router.route(msg(mapped, 1), { msgId: `0:${tag}a:1` });
    router.route(msg(mapped, 2, 'GUILD_MEMBER_ADD', { user: { id: snowflake() } }), { msgId: `0:${tag}a:2` });
    router.route({ op: 0, t: 'GUILD_UPDATE', s: 3, d: { id: mapped, name: 'g' } }, { msgId: `0:${tag}a:3` });
    router.route(msg(unmapped, 4), { msgId: `0:${tag}a:4` });
    router.route({ op: 0, t: 'USER_UPDATE', s: 5, d: { id: snowflake() } }, { msgId: `0:${tag}a:5` });
    expect(await publisher.flush()).toBe(true);
    expect(await count(stream)).toBe(3);
    expect(await count(production)).toBe(prodBefore + 2);

    const first = (await jsm.streams.getMessage(stream, { seq: 1 }))!;
    expect(first.subject).toBe(`sandbox.${sandbox}.events.MESSAGE_CREATE`);
    expect(first.header.get('Nats-Msg-Id')).toBe(`0:${tag}a:1`);
    expect(first.header.get('Discord-Guild-Id')).toBe(mapped);
    expect(first.header.get('Discord-Event')).toBe('MESSAGE_CREATE');
    expect(first.header.get('Sandbox-Id')).toBe(sandbox);
    expect(Number(first.header.get('Sandbox-Route-Version'))).toBe(routes.version);
    expect(first.json<GatewayDispatch>()).toMatchObject({ op: 0, t: 'MESSAGE_CREATE', s: 1, d: { guild_id: mapped, content: 'hello 1' } });
    const third = (await jsm.streams.getMessage(stream, { seq: 3 }))!;
    expect(third.subject).toBe(`sandbox.${sandbox}.events.GUILD_UPDATE`);

    const prod = (await jsm.streams.getMessage(production, { last_by_subj: `${prefix}.MESSAGE_CREATE` }))!;
    expect(prod.header.get('Discord-Guild-Id')).toBe(unmapped);
    expect(prod.header.has('Sandbox-Id')).toBe(false);
    expect(publisher.counts.stored).toBe(5);
    await publisher.close();
  });

  it('a replayed message id is stored once', async () => {
    const sandbox = await sandboxWithStream();
    const guild = snowflake();
    await mapGuild(db, guild, sandbox);
    await routes.catchUp();
    const { publisher, router } = pipeline();
    const packets = [1, 2, 3].map((s) => msg(guild, s));
    for (const p of packets) router.route(p, { msgId: `0:${tag}resume:${p.s}` });
    await publisher.flush();
    for (const p of packets) router.route(p, { msgId: `0:${tag}resume:${p.s}` }); // a RESUME replays them
    await publisher.flush();
    expect(await count(`SANDBOX_${sandbox.replaceAll('-', '')}`)).toBe(3);
    expect(publisher.counts).toMatchObject({ stored: 3, duplicate: 3 });
    await publisher.close();
  });

  it('a mapped guild whose sandbox has no stream is dropped as no_stream, never sent to production', async () => {
    const sandbox = await insertSandbox(db); // no stream
    const guild = snowflake();
    await mapGuild(db, guild, sandbox);
    await routes.catchUp();
    const prodBefore = await count(production);
    const dropped: string[] = [];
    const { publisher, router } = pipeline(nc, { observer: { dropped: (r) => dropped.push(r) } });
    router.route(msg(guild, 1), { msgId: `0:${tag}ns:1` });
    router.route(msg(guild, 2), { msgId: `0:${tag}ns:2` });
    await publisher.flush();
    expect(dropped).toEqual(['no_stream', 'no_stream']);
    expect(await count(production)).toBe(prodBefore);
  });

  it('an event over the server’s max_payload is dropped as too_large', async () => {
    const { publisher, router } = pipeline();
    const prodBefore = await count(production);
    router.route(msg(undefined, 1, 'MESSAGE_CREATE', { content: 'x'.repeat(1024 * 1024 + 10) }), { msgId: `0:${tag}big:1` });
    router.route(msg(undefined, 2), { msgId: `0:${tag}big:2` });
    await publisher.flush();
    expect(publisher.counts.dropped).toEqual({ too_large: 1 });
    expect(await count(production)).toBe(prodBefore + 1);
  });

  it('while NATS is away it buffers, drops the oldest beyond the buffer (counted), reports degraded, and resumes by itself', async () => {
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: 4222 });
    closers.push(() => proxy.close());
    const viaProxy = await natsConnect(`nats://127.0.0.1:${proxy.port}`);
    closers.push(() => viaProxy.close());
    const degraded: boolean[] = [];
    const dropped: string[] = [];
    const { publisher, router } = pipeline(viaProxy, {
      bufferMessages: 20,
      publishTimeoutMs: 1000,
      retryDelayMs: 100,
      observer: { degraded: (d) => degraded.push(d), dropped: (r) => dropped.push(r) },
    });
    const prodBefore = await count(production);
    router.route(msg(undefined, 0), { msgId: `0:${tag}down:0` });
    await publisher.flush();
    expect(await count(production)).toBe(prodBefore + 1);

    await proxy.down('reset');
    await waitFor(() => publisher.degraded, 'degraded', 5000);
    for (let s = 1; s <= 50; s++) router.route(msg(undefined, s), { msgId: `0:${tag}down:${s}` });
    expect(dropped.filter((r) => r === 'buffer_full')).toHaveLength(30);
    expect(publisher.pending).toBe(20);
    await new Promise((r) => setTimeout(r, 300));
    expect(await count(production)).toBe(prodBefore + 1);

    await proxy.up();
    await waitFor(() => !publisher.degraded && publisher.pending === 0, 'publishing to resume', 15_000, 50);
    expect(await count(production)).toBe(prodBefore + 21);
    // The newest 20 survived: seq 31..50.
    const last = (await jsm.streams.getMessage(production, { last_by_subj: `${prefix}.MESSAGE_CREATE` }))!;
    expect(last.header.get('Nats-Msg-Id')).toBe(`0:${tag}down:50`);
    expect(degraded).toEqual([true, false]);
    expect(publisher.counts.dropped).toEqual({ buffer_full: 30 });
    await publisher.close();
  });
});
