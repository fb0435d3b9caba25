/**
 * `npm run bench:sdk` (and the last part of `npm run bench`, BENCH_SDK=0 skips it there): the SDK's cold-connect time (database + Redis + NATS, with the schema and
 * liveness checks) and the event iterator's per-event overhead against a raw JetStream consumer.
 * Makes its own database, sandbox (schema, role), ACL user and streams, and removes them all.
 * Absolute goals are reported, not gated (cold connect: 300 ms).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { connect, headers } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { createBenchDatabase } from './database.ts';
import { ms, summarize, table } from './stats.ts';
import { SandboxCredentials, Secret } from '../src/sandbox/credentials.ts';
import { SandboxRoles } from '../src/sandbox/store/roles.ts';
import { RedisAclResource, RedisKeysResource } from '../src/sandbox/redis-resources.ts';
import { connectSandbox } from '../src/sdk/index.ts';

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
const CONNECTS = Number(process.env.BENCH_SDK_CONNECTS ?? 20);
const EVENTS = Number(process.env.BENCH_SDK_EVENTS ?? 5000);

export interface SdkBenchResult {
  coldConnectFirstMs: number;
  coldConnectP50Ms: number;
  coldConnectP95Ms: number;
  rawPerEventUs: number;
  iteratorPerEventUs: number;
  iteratorOverheadPerEventUs: number;
  /** The printed table. */
  text: string;
}

export async function runSdkBench(progress: (line: string) => void = () => undefined): Promise<SdkBenchResult> {
  progress(`sdk: ${CONNECTS} cold connects, ${EVENTS} events raw vs iterator`);
  let drop: (() => Promise<void>) | undefined;
  const db = await createBenchDatabase(ADMIN_URL, (d) => (drop = d), 4);
  const credentials = new SandboxCredentials(new Secret(`bench-${randomUUID()}`));
  const roles = new SandboxRoles(credentials);
  const id = randomUUID();
  const hex = id.replaceAll('-', '');
  const stream = `SANDBOX_${hex}`;
  const admin = new Redis(REDIS_URL);
  const acl = new RedisAclResource(admin, credentials);
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  try {
    await db.pool.query(`INSERT INTO sandboxes (id, name, owner, status, schema_name, expires_at) VALUES ($1, 'bench-sdk', 'cli:bench', 'running', sandbox_schema_name($1), now() + interval '1 hour')`, [id]);
    await db.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT create_sandbox_schema(${id}::uuid)`;
      await roles.create(tx, id);
    });
    await acl.ensure(id);
    await jsm.streams.add({ name: stream, subjects: [`sandbox.${id}.>`], max_bytes: 8 * 1024 * 1024 });
    const env = {
      SANDBOX_ID: id,
      SANDBOX_DATABASE_URL: credentials.databaseUrl(db.url, id),
      SANDBOX_REDIS_URL: credentials.redisUrl(REDIS_URL, id),
      SANDBOX_NATS_URL: NATS_URL,
    };

    // Cold connect: every connection new (pool, Redis, NATS), checks included; the first also loads modules.
    const connects: number[] = [];
    for (let i = 0; i < CONNECTS + 1; i++) {
      const t0 = performance.now();
      const sb = await connectSandbox({ env });
      await sb.db.query('SELECT 1');
      connects.push(performance.now() - t0);
      await sb.close();
    }
    const first = connects.shift()!;
    const cold = summarize(connects);

    // Per-event: EVENTS messages consumed and acked by a raw consumer, then by the SDK iterator.
    const js = jetstream(nc);
    const body = JSON.stringify({ t: 'MESSAGE_CREATE', s: 1, op: 0, d: { content: 'x'.repeat(200), guild_id: '100000000000000001' } });
    const publishAll = async (): Promise<void> => {
      const h = headers();
      h.set('Discord-Guild-Id', '100000000000000001');
      h.set('Discord-Event', 'MESSAGE_CREATE');
      const pending: Promise<unknown>[] = [];
      for (let i = 0; i < EVENTS; i++) {
        pending.push(js.publish(`sandbox.${id}.events.MESSAGE_CREATE`, body, { headers: h }));
        if (pending.length >= 256) await Promise.all(pending.splice(0));
      }
      await Promise.all(pending);
    };
    await jsm.consumers.add(stream, { durable_name: 'raw', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New, filter_subject: `sandbox.${id}.events.>` });
    await publishAll();
    // The raw consumer runs before and after the SDK iterator (a replay of the same events each time) and
    // its faster run counts, so warm-up and drift do not flatter the SDK.
    const rawRun = async (durable: string): Promise<number> => {
      const raw = await js.consumers.get(stream, durable);
      const t = performance.now();
      const rawMessages = await raw.consume({ max_messages: 256 });
      let k = 0;
      for await (const m of rawMessages) {
        m.json();
        m.ack();
        if (++k === EVENTS) break;
      }
      return performance.now() - t;
    };
    const rawFirst = await rawRun('raw');
    let t0: number;
    let n: number;

    const sb = await connectSandbox({ env, databaseUrl: false, redisUrl: false, consumer: 'sdk', deliver: 'all', maxAckPending: 1000 });
    t0 = performance.now();
    n = 0;
    for await (const ev of sb.events) {
      ev.ack();
      if (++n === EVENTS) break;
    }
    const sdkMs = performance.now() - t0;
    await sb.close();
    await jsm.consumers.add(stream, { durable_name: 'raw-again', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, filter_subject: `sandbox.${id}.events.>` });
    const rawMs = Math.min(rawFirst, await rawRun('raw-again'));

    const perEvent = (total: number): number => (total * 1000) / EVENTS;
    return {
      coldConnectFirstMs: first,
      coldConnectP50Ms: cold.p50,
      coldConnectP95Ms: cold.p95,
      rawPerEventUs: perEvent(rawMs),
      iteratorPerEventUs: perEvent(sdkMs),
      iteratorOverheadPerEventUs: perEvent(sdkMs - rawMs),
      text: table('SDK', ['measure', 'value', 'goal'], [
        ['cold connect, first (module load included)', `${ms(first)} ms`, ''],
        [`cold connect, p50 of ${CONNECTS}`, `${ms(cold.p50)} ms`, '300 ms'],
        [`cold connect, p95 of ${CONNECTS}`, `${ms(cold.p95)} ms`, '300 ms'],
        [`raw consumer, per event (${EVENTS}, faster of 2 runs)`, `${((rawMs * 1000) / EVENTS).toFixed(1)} µs`, ''],
        [`SDK iterator, per event (${EVENTS}, replay of all)`, `${((sdkMs * 1000) / EVENTS).toFixed(1)} µs`, ''],
        ['iterator overhead per event', `${(((sdkMs - rawMs) * 1000) / EVENTS).toFixed(1)} µs`, ''],
      ]),
    };
  } finally {
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
    await acl.remove(id).catch(() => undefined);
    await new RedisKeysResource(admin).remove(id).catch(() => undefined);
    await admin.quit();
    await roles.drop(db.prisma, id).catch(() => undefined);
    await drop?.();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runSdkBench().then(
    (r) => console.log(r.text),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
