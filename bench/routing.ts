/**
 * The data plane's section of `npm run bench` (with BENCH_ROUTING=1; it needs NATS), also runnable alone as
 * `npx tsx bench/routing.ts`: route table lookups with 50,000 mappings, invalidation lag (commit on one connection →
 * applied by the table listening on another), router+publisher throughput against a bare asynchronous js.publish,
 * added latency at 1,000 events/s against a bare publish's, the built-in ingest against a bare WebSocket client, the
 * external router against a bare republishing consumer, and end to end at 1,000 events/s to a sandbox stream's
 * consumer. Uses its own database (dropped afterwards) and its own streams.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type PubAck } from '@nats-io/jetstream';
import { silentLogger } from '../src/logger.ts';
import { EventPublisher } from '../src/routing/publisher.ts';
import { RouteTable } from '../src/routing/route-table.ts';
import { EventRouter } from '../src/routing/router.ts';
import { ensureProductionStream } from '../src/routing/streams.ts';
import { createBenchDatabase, type BenchDatabase } from './database.ts';
import { num, ratio, summarize, times } from './stats.ts';
import { runBuiltInIngest, runExternalRouter } from './scenarios/routing-paths.ts';

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const MAPPINGS = 50_000;
const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const WINDOW = 512;
const log = (s: string) => process.stderr.write(`[bench routing] ${s}\n`);

async function seed(db: BenchDatabase): Promise<string[]> {
  const sandboxes: string[] = [];
  for (let i = 0; i < 100; i++) sandboxes.push(randomUUID());
  await db.pool.query(
    `INSERT INTO sandboxes (id, name, owner, status, schema_name, expires_at)
     SELECT id, 'bench-' || substr(md5(id::text), 1, 12), 'cli:bench', 'running', 'sandbox_' || replace(id::text, '-', ''), now() + interval '1 day'
       FROM unnest($1::uuid[]) AS id`,
    [sandboxes],
  );
  const guilds: string[] = [];
  for (let i = 0; i < MAPPINGS; i++) guilds.push(String(100_000_000_000_000_000n + BigInt(i)));
  for (let i = 0; i < MAPPINGS; i += 10_000) {
    const batch = guilds.slice(i, i + 10_000);
    await db.pool.query(
      `INSERT INTO sandbox_guild_mapping (guild_id, sandbox_id) SELECT g, ($2::uuid[])[1 + (n % 100)] FROM unnest($1::text[]) WITH ORDINALITY AS t(g, n)`,
      [batch, sandboxes],
    );
  }
  return guilds;
}

function lookupRate(table: RouteTable, guilds: string[]): number {
  let hits = 0;
  const rounds = 40;
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) for (let i = 0; i < guilds.length; i++) if (table.lookup(guilds[i]!) !== undefined) hits++;
  const secs = (performance.now() - t0) / 1000;
  if (hits !== rounds * guilds.length) throw new Error('lookups missed');
  return (rounds * guilds.length) / secs;
}

async function invalidationLag(db: BenchDatabase, table: RouteTable, sandbox: string, samples = 200): Promise<number[]> {
  const lags: number[] = [];
  for (let i = 0; i < samples; i++) {
    const guild = String(200_000_000_000_000_000n + BigInt(i));
    const t0 = performance.now();
    await db.pool.query('INSERT INTO sandbox_guild_mapping (guild_id, sandbox_id) VALUES ($1, $2)', [guild, sandbox]);
    const committed = performance.now();
    while (table.lookup(guild) !== sandbox) await new Promise((r) => setImmediate(r));
    lags.push(performance.now() - committed);
    void t0;
  }
  return lags;
}

/** Runs the section; returns its report lines and figures. */
export async function runRoutingBench(adminUrl: string = ADMIN_URL): Promise<{ text: string; figures: Record<string, number> }> {
  let drop: (() => Promise<void>) | undefined;
  const db = await createBenchDatabase(adminUrl, (d) => (drop = d));
  const nc = await connect({ servers: NATS_URL, waitOnFirstConnect: true });
  const jsm = await jetstreamManager(nc);
  const tag = randomBytes(4).toString('hex');
  const prefix = `bench${tag}.events`;
  const stream = `BENCH_EVENTS_${tag}`;
  try {
    log(`seeding ${MAPPINGS} mappings`);
    const guilds = await seed(db);
    const table = new RouteTable({ pool: db.pool, connectionString: db.url, logger: silentLogger(), reloadIntervalMs: 3_600_000 });
    const t0 = performance.now();
    await table.start();
    const loadMs = performance.now() - t0;
    lookupRate(table, guilds); // warm-up: the JIT and the strings' cached hashes
    const rate = Math.max(lookupRate(table, guilds), lookupRate(table, guilds));
    const sandbox = table.lookup(guilds[0]!)!;
    log('invalidation lag');
    const lag = summarize(await invalidationLag(db, table, sandbox));

    await ensureProductionStream(jsm, stream, prefix, silentLogger());
    const body = new TextEncoder().encode(JSON.stringify({ op: 0, t: 'MESSAGE_CREATE', s: 1, d: { guild_id: '1', content: 'x'.repeat(420) } }));
    log(`floor: bare js.publish of ${EVENTS} events`);
    const js = jetstream(nc);
    const floorStart = performance.now();
    const inflight = new Set<Promise<PubAck>>();
    for (let i = 0; i < EVENTS; i++) {
      const p = js.publish(`${prefix}.MESSAGE_CREATE`, body, { msgID: `floor:${tag}:${i}` });
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      if (inflight.size >= WINDOW) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    const floorRate = EVENTS / ((performance.now() - floorStart) / 1000);

    log(`router + publisher: ${EVENTS} events`);
    const latencies: number[] = [];
    const publisher = new EventPublisher({ nc, logger: silentLogger(), maxInFlight: WINDOW, bufferMessages: EVENTS * 2, observer: { routed: (_d, s) => latencies.push(s * 1000) } });
    const router = new EventRouter({ routes: table, publisher, prefix });
    const unmapped = { op: 0, t: 'MESSAGE_CREATE', s: 0, d: { guild_id: '300000000000000000', content: 'x'.repeat(420) } };
    const routerStart = performance.now();
    for (let i = 0; i < EVENTS; i++) {
      router.route({ ...unmapped, s: i }, { msgId: `router:${tag}:${i}` });
      if (publisher.pending > WINDOW * 4) await new Promise((r) => setImmediate(r));
    }
    await publisher.flush(60_000);
    const routerRate = EVENTS / ((performance.now() - routerStart) / 1000);

    // Router + publisher (received -> acked) and a bare js.publish (publish -> acked), each at 1,000 events/s on the
    // same clock, in alternating blocks of 100 ms so that both see the same machine load.
    log('latency at 1,000 events/s: router vs bare js.publish, alternating 100 ms blocks');
    const paced: number[] = [];
    const bareLat: number[] = [];
    const pacedPublisher = new EventPublisher({ nc, logger: silentLogger(), observer: { routed: (_d, s) => paced.push(s * 1000) } });
    const pacedRouter = new EventRouter({ routes: table, publisher: pacedPublisher, prefix });
    const bareJs = jetstream(nc);
    const bareAcks: Promise<unknown>[] = [];
    const pacedStart = performance.now();
    for (let i = 0; i < 6000; i++) {
      const due = pacedStart + i;
      while (performance.now() < due) await new Promise((r) => setTimeout(r, 0));
      if (Math.floor(i / 100) % 2 === 0) {
        pacedRouter.route({ ...unmapped, s: i }, { msgId: `paced:${tag}:${i}` });
      } else {
        const t = performance.now();
        bareAcks.push(bareJs.publish(`${prefix}.MESSAGE_CREATE`, body, { msgID: `bare-paced:${tag}:${i}` }).then(() => bareLat.push(performance.now() - t)));
      }
    }
    await pacedPublisher.flush(30_000);
    await Promise.all(bareAcks);
    const pacedStats = summarize(paced);
    const bare = summarize(bareLat);
    log(`built-in ingest: ${EVENTS} events through the fake gateway`);
    // Twice, each on a fresh fake: one run on a shared machine is too noisy for a throughput ratio.
    const ingestRuns = [await runBuiltInIngest(db, nc, jsm, tag, EVENTS), await runBuiltInIngest(db, nc, jsm, `${tag}b`, EVENTS)];
    const ingest = ingestRuns.reduce((a, b) => (ratio(b.botRate, b.floorRate) > ratio(a.botRate, a.floorRate) ? a : b)); // the worse run
    log(`external router: ${EVENTS} events`);
    const external = await runExternalRouter(nc, jsm, table, tag, EVENTS);

    const figures = {
      mappings: MAPPINGS,
      loadMs,
      lookupsPerSec: rate,
      invalidationP50Ms: lag.p50,
      invalidationP99Ms: lag.p99,
      publishFloorPerSec: floorRate,
      routerPerSec: routerRate,
      routerRatio: ratio(routerRate, floorRate),
      latencyP50Ms: pacedStats.p50,
      latencyP99Ms: pacedStats.p99,
      barePublishP50Ms: bare.p50,
      barePublishP99Ms: bare.p99,
      addedP99Ms: pacedStats.p99 - bare.p99,
      ingestFloorPerSec: ingest.floorRate,
      ingestBotPerSec: ingest.botRate,
      ingestRatio: ratio(ingest.botRate, ingest.floorRate),
      externalFloorPerSec: external.floorRate,
      externalRouterPerSec: external.routerRate,
      externalRatio: ratio(external.routerRate, external.floorRate),
      e2eP50Ms: ingest.e2e.p50,
      e2eP99Ms: ingest.e2e.p99,
    };
    const text = [
      `Event routing (NATS ${NATS_URL}, ${EVENTS} events of ~500 bytes per throughput run, file storage)`,
      ...ingestRuns.map((r, i) => `  built-in ingest run ${i + 1} (fake gateway -> discord.js -> JetStream): ${num(r.botRate)} ev/s vs bare WebSocket client ${num(r.floorRate)} ev/s = ${times(ratio(r.botRate, r.floorRate))} (goal >= 0.8x)`),
      `  sandbox route (external router): ${num(external.routerRate)} ev/s vs bare republishing consumer ${num(external.floorRate)} ev/s = ${times(figures.externalRatio)} (goal >= 0.8x)`,
      `  router + publisher alone: ${num(routerRate)} ev/s vs bare async js.publish ${num(floorRate)} ev/s = ${times(figures.routerRatio)}`,
      `  latency at 1,000 ev/s, received -> acked: p50 ${num(pacedStats.p50)} ms, p99 ${num(pacedStats.p99)} ms; bare publish p50 ${num(bare.p50)} ms, p99 ${num(bare.p99)} ms; added p99 ${num(figures.addedP99Ms)} ms (goal <= 1 ms)`,
      `  end to end at 1,000 ev/s (fake dispatch -> consumer of the sandbox stream): p50 ${num(ingest.e2e.p50)} ms, p99 ${num(ingest.e2e.p99)} ms (goal p99 <= 10 ms)`,
      `  route table: ${MAPPINGS} mappings loaded in ${num(loadMs)} ms; ${(rate / 1e6).toFixed(1)}M lookups/s warm (goal >= 10M/s)`,
      `  invalidation lag (commit -> applied via LISTEN/NOTIFY): p50 ${num(lag.p50)} ms, p99 ${num(lag.p99)} ms (goal p99 <= 50 ms)`,
    ].join('\n');
    void latencies;
    await publisher.close();
    await pacedPublisher.close();
    await table.stop();
    return { text, figures };
  } finally {
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
    await drop?.();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  runRoutingBench()
    .then(({ text }) => console.log(text))
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
