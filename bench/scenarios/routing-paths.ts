/**
 * The data plane's two ingest paths against their floors, for bench/routing.ts:
 * - built-in ingest (fake gateway → discord.js bot → router → JetStream) against a bare WebSocket client on the same
 *   fake gateway that publishes every frame asynchronously;
 * - `sandbox route` (ExternalRouter) against a bare consumer that republishes every message;
 * - end to end at 1,000 events/s: fake gateway dispatch → a JetStream consumer of the sandbox's stream.
 * Everything runs in this one process (fake, bot, consumers), on both sides of each ratio.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, jetstream, type JetStreamManager, type PubAck } from '@nats-io/jetstream';
import { createClient } from '../../src/bot/client.ts';
import { silentLogger } from '../../src/logger.ts';
import { parseRoutingConfig } from '../../src/routing/config.ts';
import { ExternalRouter } from '../../src/routing/external-router.ts';
import { EventPublisher } from '../../src/routing/publisher.ts';
import { EventRouter } from '../../src/routing/router.ts';
import { RouteTable } from '../../src/routing/route-table.ts';
import { RoutingService } from '../../src/routing/service.ts';
import { FakeDiscord } from '../../test/fake-discord/index.ts';
import type { BenchDatabase } from '../database.ts';
import { summarize, type LatencyStats } from '../stats.ts';
import { messageCreatePayload } from '../../test/fake-discord/payloads.ts';

const WINDOW = 512;
const pause = (): Promise<void> => new Promise((r) => setImmediate(r));

function message(guildId: string, channelId: string, content: string): Record<string, unknown> {
  return messageCreatePayload({ id: String(900_000_000_000_000_000n + BigInt(Math.floor(Math.random() * 1e12))), channelId, guildId, authorId: '400000000000000001', username: 'bench', content });
}

async function waitUntil(cond: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`bench routing: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Dispatches `n` ~500-byte MESSAGE_CREATEs through the fake gateway as fast as it sends them (yielding every 200). */
async function blast(fake: FakeDiscord, guildId: string, channelId: string, n: number): Promise<void> {
  const pad = 'x'.repeat(120);
  for (let i = 0; i < n; i++) {
    fake.dispatchEvent('MESSAGE_CREATE', message(guildId, channelId, `${i} ${pad}`));
    if (i % 200 === 199) await pause();
  }
}

export interface IngestResult {
  events: number;
  floorRate: number;
  botRate: number;
  e2e: LatencyStats;
}

/** Built-in ingest vs a bare WebSocket client, then end to end at 1,000 events/s to a sandbox stream's consumer. */
export async function runBuiltInIngest(db: BenchDatabase, nc: NatsConnection, jsm: JetStreamManager, tag: string, events: number): Promise<IngestResult> {
  const prefix = `bench${tag}.gw`;
  const stream = `BENCH_GW_${tag}`;
  const fake = await FakeDiscord.start();
  const js = jetstream(nc);
  const unmapped = fake.addGuild({ ownerId: '400000000000000002' });
  const mapped = fake.addGuild({ ownerId: '400000000000000003' });
  const channelOf = (g: string) => fake.state.guild(g).channelIds[0]!;
  let service: RoutingService | undefined;
  let client: ReturnType<typeof createClient> | undefined;
  const sandboxId = randomUUID();
  try {
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`], storage: StorageType.File, duplicate_window: 120_000_000_000 });

    // Floor: a bare gateway client (HELLO → IDENTIFY), every dispatch frame published asynchronously as received.
    let acked = 0;
    let inflight = 0;
    const ws = new WebSocket(`${fake.gatewayUrl}?v=10&encoding=json`);
    const ready = new Promise<void>((resolve, reject) => {
      ws.on('error', reject);
      ws.on('message', (raw: Buffer) => {
        const frame = JSON.parse(raw.toString()) as { op: number; t?: string; s?: number };
        if (frame.op === 10) ws.send(JSON.stringify({ op: 2, d: { token: fake.token, intents: 1 | 512, properties: { os: 'linux', browser: 'bench', device: 'bench' } } }));
        if (frame.op !== 0) return;
        if (frame.t === 'READY') resolve();
        inflight++;
        void js.publish(`${prefix}.${frame.t}`, raw, { msgID: `floor:${tag}:${frame.s}` }).then(
          () => {
            acked++;
            inflight--;
          },
          () => inflight--,
        );
      });
    });
    await ready;
    await waitUntil(() => inflight === 0, 'the floor’s startup frames');
    const floorBase = acked;
    let t0 = performance.now();
    await blast(fake, unmapped, channelOf(unmapped), events);
    await waitUntil(() => acked - floorBase >= events, 'the floor to publish every frame');
    const floorRate = events / ((performance.now() - t0) / 1000);
    // Gone before the bot connects: the fake must not keep sending it the bot's share of frames.
    ws.removeAllListeners('message');
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close();
    });

    // The product: RoutingService (route table loaded first) + the bot's discord.js client with its intents and caches.
    const problems: string[] = [];
    const config = parseRoutingConfig({ NATS_URL: nc.getServer().includes('://') ? nc.getServer() : `nats://${nc.getServer()}`, EVENTS_SUBJECT_PREFIX: prefix, EVENTS_STREAM: stream, SANDBOX_EVENTS_MAX_BYTES: String(8 * 1024 * 1024), GATEWAY_INTENTS: 'Guilds,GuildMessages' }, problems);
    if (problems.length) throw new Error(problems.join('; '));
    service = new RoutingService({ config, pool: db.pool, databaseUrl: db.url, embedded: false, logger: silentLogger() });
    await service.start();
    client = createClient(fake.apiBase, { intents: config.intents.bits });
    service.attach(client);
    const clientReady = new Promise((r) => client!.once('clientReady', r));
    await client.login(fake.token);
    await clientReady;
    await service.publisher.flush(30_000);
    const botBase = service.publisher.counts.stored;
    t0 = performance.now();
    await blast(fake, unmapped, channelOf(unmapped), events);
    await waitUntil(() => service!.publisher.counts.stored - botBase >= events, 'the bot to publish every dispatch');
    const botRate = events / ((performance.now() - t0) / 1000);

    // End to end at 1,000 events/s: a mapped guild, its sandbox stream, a consumer of it.
    await db.pool.query(
      `INSERT INTO sandboxes (id, name, owner, status, schema_name, expires_at) VALUES ($1, $2, 'cli:bench', 'running', $3, now() + interval '1 day')`,
      [sandboxId, `bench-e2e-${sandboxId.slice(0, 8)}`, `sandbox_${sandboxId.replaceAll('-', '')}`],
    );
    await service.streamResource().ensure(sandboxId);
    await db.pool.query('INSERT INTO sandbox_guild_mapping (guild_id, sandbox_id) VALUES ($1, $2)', [mapped, sandboxId]);
    await service.routesChanged();
    const sandboxStream = `SANDBOX_${sandboxId.replaceAll('-', '')}`;
    await jsm.consumers.add(sandboxStream, { durable_name: 'bench', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New });
    const consumer = await js.consumers.get(sandboxStream, 'bench');
    const latencies: number[] = [];
    const paced = 2000;
    const messages = await consumer.consume({ max_messages: 1000 });
    const reading = (async () => {
      for await (const m of messages) {
        const sent = Number((m.json<{ d: { content: string } }>().d.content.split(' ')[0] ?? 'NaN'));
        latencies.push(performance.now() - sent);
        m.ack();
        if (latencies.length >= paced) break;
      }
    })();
    const pad = 'x'.repeat(120);
    const start = performance.now();
    for (let i = 0; i < paced; i++) {
      const due = start + i;
      while (performance.now() < due) await new Promise((r) => setTimeout(r, 0));
      fake.dispatchEvent('MESSAGE_CREATE', message(mapped, channelOf(mapped), `${performance.now()} ${pad}`));
    }
    await Promise.race([reading, new Promise((_, reject) => setTimeout(() => reject(new Error('e2e consumer timed out')), 30_000))]);
    await messages.close();
    return { events, floorRate, botRate, e2e: summarize(latencies) };
  } finally {
    await client?.destroy().catch(() => undefined);
    await service?.streamResource().remove(sandboxId).catch(() => undefined);
    await service?.close().catch(() => undefined);
    await jsm.streams.delete(stream).catch(() => undefined);
    await fake.stop();
  }
}

export interface ExternalResult {
  events: number;
  floorRate: number;
  routerRate: number;
}

/** `sandbox route` vs a bare consumer that republishes every message (both ack an input once its output is stored). */
export async function runExternalRouter(nc: NatsConnection, jsm: JetStreamManager, table: RouteTable, tag: string, events: number): Promise<ExternalResult> {
  const js = jetstream(nc);
  const prefix = `bench${tag}.ext`;
  const outStream = `BENCH_EXT_OUT_${tag}`;
  const floorIn = `BENCH_EXT_FLOOR_${tag}`;
  const routerIn = `BENCH_EXT_IN_${tag}`;
  const streams = [outStream, floorIn, routerIn];
  let router: ExternalRouter | undefined;
  let publisher: EventPublisher | undefined;
  try {
    await jsm.streams.add({ name: outStream, subjects: [`${prefix}.>`], storage: StorageType.File, duplicate_window: 120_000_000_000 });
    await jsm.streams.add({ name: floorIn, subjects: [`bench${tag}.floorin.>`], storage: StorageType.File, retention: RetentionPolicy.Workqueue });
    const body = new TextEncoder().encode(JSON.stringify({ op: 0, t: 'MESSAGE_CREATE', s: 1, d: { guild_id: '300000000000000000', content: 'x'.repeat(420) } }));
    const fill = async (subject: string): Promise<void> => {
      const pending = new Set<Promise<PubAck>>();
      for (let i = 0; i < events; i++) {
        const h = natsHeaders();
        h.set('Nats-Msg-Id', `${subject}:${i}`);
        const p = js.publish(subject, body, { headers: h });
        pending.add(p);
        void p.finally(() => pending.delete(p));
        if (pending.size >= WINDOW) await Promise.race(pending);
      }
      await Promise.all(pending);
    };

    // Floor: pull, republish asynchronously, ack the input when the output's ack arrives.
    await fill(`bench${tag}.floorin.MESSAGE_CREATE`);
    await jsm.consumers.add(floorIn, { durable_name: 'floor', ack_policy: AckPolicy.Explicit, max_ack_pending: 1000 });
    const floorConsumer = await js.consumers.get(floorIn, 'floor');
    let done = 0;
    let t0 = performance.now();
    const floorMessages = await floorConsumer.consume({ max_messages: 1000 });
    for await (const m of floorMessages) {
      const out = `${prefix}.MESSAGE_CREATE`;
      void js.publish(out, m.data, { msgID: `floor-out:${m.seq}` }).then(() => {
        m.ack();
        if (++done >= events) void floorMessages.close();
      });
    }
    const floorRate = events / ((performance.now() - t0) / 1000);

    // The router: same input, same outputs, same acks.
    publisher = new EventPublisher({ nc, logger: silentLogger(), maxInFlight: WINDOW, bufferMessages: events * 2 });
    const eventRouter = new EventRouter({ routes: table, publisher, prefix });
    router = new ExternalRouter({ nc, jsm, logger: silentLogger(), router: eventRouter, publisher, ingestSubject: `bench${tag}.ingest.>`, prefix, ingestStream: routerIn, durable: 'router' });
    // As for the floor: the inputs are all stored first, then the clock starts with the consumer.
    await jsm.streams.add({ name: routerIn, subjects: [`bench${tag}.ingest.>`], storage: StorageType.File, retention: RetentionPolicy.Workqueue });
    await fill(`bench${tag}.ingest.MESSAGE_CREATE`);
    t0 = performance.now();
    await router.start();
    await waitUntil(() => router!.counts.acked >= events, 'the router to ack every input');
    const routerRate = events / ((performance.now() - t0) / 1000);
    return { events, floorRate, routerRate };
  } finally {
    await router?.stop().catch(() => undefined);
    await publisher?.close().catch(() => undefined);
    for (const s of streams) await jsm.streams.delete(s).catch(() => undefined);
  }
}
