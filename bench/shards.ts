/**
 * `npm run bench:shards`: events per second routed by bot processes (src/main.ts each, routing on NATS) with 1, 2
 * and 4 shards in one process against the same shards over two processes, side by side in one run. The fake Discord
 * (in this process) pumps MESSAGE_CREATE dispatches for guilds spread evenly over the shards; the rate is events
 * from the first dispatch until every one of them is on the production stream, each counted exactly once. Uses its
 * own database, subject prefix and streams, all deleted afterwards. BENCH_SHARD_EVENTS (default 20000) per
 * measurement, BENCH_SHARD_ROUNDS (default 2) rounds over all layouts, the best of the rounds reported.
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { FakeDiscord, messageCreatePayload, snowflakeOnShard } from '../test/fake-discord/index.ts';
import { startBotProcess, type BotProcess } from '../test/support/bot-process.ts';
import { createBenchDatabase } from './database.ts';
import { num, ratio, table, times } from './stats.ts';

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const EVENTS = Number(process.env.BENCH_SHARD_EVENTS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_SHARD_ROUNDS ?? 2);
const WARMUP = 1000;
/** Guilds per shard count; each gets EVENTS / guilds messages. */
const GUILDS = 32;
const CHUNK = 250;
const log = (s: string): void => void process.stderr.write(`[bench shards ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

interface Layout {
  label: string;
  shards: number;
  /** SHARD_IDS per process; undefined: one process with every shard. */
  processes: (string | undefined)[];
}

const LAYOUTS: Layout[] = [
  { label: '1 shard, 1 process', shards: 1, processes: [undefined] },
  { label: '2 shards, 1 process', shards: 2, processes: [undefined] },
  { label: '2 shards, 2 processes', shards: 2, processes: ['0', '1'] },
  { label: '4 shards, 1 process', shards: 4, processes: [undefined] },
  { label: '4 shards, 2 processes', shards: 4, processes: ['0-1', '2-3'] },
];

/** MESSAGE_CREATEs on the stream (the bots also publish READY and GUILD_CREATE, while starting). */
async function storedCount(jsm: JetStreamManager, stream: string, subject: string): Promise<number> {
  const info = await jsm.streams.info(stream, { subjects_filter: subject }).catch(() => null);
  return info?.state.subjects?.[subject] ?? 0;
}

/** Pumps `count` MESSAGE_CREATEs round-robin over the guilds, yielding between chunks so the sockets drain. */
async function pump(fake: FakeDiscord, guilds: string[], count: number, tag: string): Promise<void> {
  const author = snowflakeOnShard(0, 1);
  for (let i = 0; i < count; i++) {
    const guildId = guilds[i % guilds.length]!;
    const channelId = fake.state.guild(guildId).channelIds[0]!;
    if (fake.dispatchEvent('MESSAGE_CREATE', messageCreatePayload({ id: String(i), channelId, guildId, authorId: author, content: `${tag} ${i}` })) !== 1) {
      throw new Error(`guild ${guildId}'s event reached no session (or several)`);
    }
    if (i % CHUNK === CHUNK - 1) await new Promise((r) => setImmediate(r));
  }
}

async function waitCount(jsm: JetStreamManager, stream: string, subject: string, want: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let last = -1;
  let movedAt = performance.now();
  for (;;) {
    const n = await storedCount(jsm, stream, subject);
    if (n >= want) return performance.now();
    if (n !== last) [last, movedAt] = [n, performance.now()];
    // Nothing new for 15 s: events were lost (dropped or never delivered), not slow.
    if (performance.now() > deadline || performance.now() - movedAt > 15_000) throw new Error(`${stream}: ${n} of ${want} events (stalled or timed out)`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function measure(layout: Layout, ctx: { fake: FakeDiscord; dbUrl: string; jsm: JetStreamManager; tag: string; round: number }): Promise<number> {
  const { fake, jsm } = ctx;
  const name = `${ctx.tag}_${layout.shards}s${layout.processes.length}p${ctx.round}`;
  const stream = `BENCH_SHARDS_${name}`;
  // Guilds spread evenly over this layout's shards (fresh ones, so each layout's bots see only their own).
  const guilds = Array.from({ length: GUILDS }, (_, i) => fake.addGuild({ id: snowflakeOnShard(i % layout.shards, layout.shards), ownerId: snowflakeOnShard(0, 1) }));
  const bots: BotProcess[] = [];
  try {
    const env = (ids: string | undefined): Record<string, string> => ({
      DISCORD_TOKEN: fake.token,
      DISCORD_API_URL: fake.apiBase,
      DATABASE_URL: ctx.dbUrl,
      SANDBOX_CREDENTIAL_SECRET: 'bench-shards-credential-secret-0123456789abcdef',
      NATS_URL,
      EVENTS_SUBJECT_PREFIX: `b${name}.events`,
      EVENTS_STREAM: stream,
      GATEWAY_INTENTS: 'GuildMessages',
      // The pump outruns publishing: hold every event (the default 10,000 would drop the excess, as it should under
      // a real overload) so that the rate is how fast all of them reach the stream.
      EVENTS_BUFFER: String(2 * (WARMUP + EVENTS)),
      EVENTS_BUFFER_BYTES: String(1024 * 1024 * 1024),
      LOG_LEVEL: 'info',
      SWEEP_INTERVAL_SECONDS: '86400',
      ...(layout.shards > 1 || ids ? { SHARD_COUNT: String(layout.shards) } : {}),
      ...(ids ? { SHARD_IDS: ids } : {}),
    });
    bots.push(...(await Promise.all(layout.processes.map((ids, i) => startBotProcess(env(ids), { name: `${name}-${i}` })))));
    await Promise.all(bots.map((b) => b.waitReady(120_000)));
    await Promise.all(bots.map((b) => b.waitForLog((l) => l.msg === 'guilds reconciled', 60_000)));
    // Earlier layouts' guilds are still in the fake; only this layout's are routed here, so the stream counts ours.
    const subject = `b${name}.events.MESSAGE_CREATE`;
    const base = await storedCount(jsm, stream, subject);
    await pump(fake, guilds, WARMUP, 'warm-up');
    await waitCount(jsm, stream, subject, base + WARMUP, 120_000);
    const start = performance.now();
    await pump(fake, guilds, EVENTS, 'measured');
    const end = await waitCount(jsm, stream, subject, base + WARMUP + EVENTS, 300_000);
    await new Promise((r) => setTimeout(r, 500));
    const extra = (await storedCount(jsm, stream, subject)) - (base + WARMUP + EVENTS);
    if (extra !== 0) throw new Error(`${layout.label}: ${extra} events more than were sent (routed twice?)`);
    return EVENTS / ((end - start) / 1000);
  } finally {
    await Promise.all(bots.map((b) => b.stop().catch(() => b.kill())));
    for (const id of guilds) fake.removeGuild(id);
    await jsm.streams.delete(stream).catch(() => undefined);
  }
}

export async function runShardsBench(): Promise<string> {
  let drop: (() => Promise<void>) | undefined;
  const db = await createBenchDatabase(ADMIN_URL, (d) => (drop = d));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void (drop?.() ?? Promise.resolve()).finally(() => process.exit(130)));
  const nc = await connect({ servers: NATS_URL, waitOnFirstConnect: true });
  const jsm = await jetstreamManager(nc);
  // Discord lets large bots identify up to max_concurrency shards at once; without it 4 shards take 15 s to start.
  const fake = await FakeDiscord.start({ sessionStartLimit: { max_concurrency: 16 } });
  const tag = randomBytes(3).toString('hex');
  const best = new Map<string, number>();
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const layout of LAYOUTS) {
        const rate = await measure(layout, { fake, dbUrl: db.url, jsm, tag, round });
        log(`round ${round}: ${layout.label}: ${num(rate)} events/s`);
        best.set(layout.label, Math.max(best.get(layout.label) ?? 0, rate));
      }
    }
  } finally {
    await fake.stop();
    await nc.close();
    await drop?.();
  }
  const rate = (label: string): number => best.get(label) ?? NaN;
  const rows = LAYOUTS.map((l) => {
    const oneProcess = LAYOUTS.find((o) => o.shards === l.shards && o.processes.length === 1)!;
    return [l.label, num(rate(l.label)), times(ratio(rate(l.label), rate('1 shard, 1 process'))), times(ratio(rate(l.label), rate(oneProcess.label)))];
  });
  return [
    table(
      `Events routed per second (MESSAGE_CREATE → production stream, ${EVENTS} per run, best of ${ROUNDS} rounds, load ${loadavg()[0]!.toFixed(2)})`,
      ['layout', 'events/s', 'vs 1 shard, 1 process', 'vs same shards, 1 process'],
      rows,
    ),
    'The fake Discord, NATS and PostgreSQL share the machine with the bots; on 2 cores a second process competes with them for CPU.',
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runShardsBench().then(
    (text) => {
      console.log(text);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
