/**
 * The sandbox SDK: one call gives a worker its sandbox's database schema, Redis keys and Discord
 * events, and the same code runs against production when SANDBOX_ID is unset.
 *
 *   import { connectSandbox } from 'discord-server-sandboxes/sdk';
 *   const sb = await connectSandbox();           // reads SANDBOX_* as `sandbox env` prints them
 *   await sb.db.query('SELECT count(*) FROM profiles');
 *   await sb.redis.set('last-seen', Date.now());  // key sandbox:<uuid>:last-seen
 *   for await (const ev of sb.events) { …; ev.ack(); }
 *   await sb.close();
 *
 * It depends on nothing of the bot.
 */
import type pg from 'pg';
import type { Redis } from 'ioredis';
import type { NatsConnection } from '@nats-io/transport-node';
import { PrismaPg } from '@prisma/adapter-pg';
import { connectionStringOf, openDatabase, searchPathOption } from './database.ts';
import { SandboxConnectError } from './errors.ts';
import { createEvents, openNats, type SandboxEvents } from './events.ts';
import { openRedis, type SandboxPubSub, type SandboxRedis } from './redis.ts';
import { resolveSettings, type ConnectSandboxOptions, type ResolvedSettings } from './settings.ts';

export { SandboxConnectError, type SandboxConnectErrorCode } from './errors.ts';
export type { SandboxEvent, SandboxEvents } from './events.ts';
export type { SandboxPubSub, MessageListener } from './redis.ts';
export type { ConnectSandboxOptions, DeliverFrom } from './settings.ts';

/** A Prisma 7 client class (the team's own generated client). */
export type PrismaClientClass<T> = new (options: { adapter: PrismaPg }) => T;

export interface SandboxConnection {
  /** 'sandbox' with SANDBOX_ID, else 'production'. */
  readonly mode: 'sandbox' | 'production';
  readonly sandboxId: string | undefined;
  /** The schema every `db` connection has as its only search_path entry. */
  readonly schema: string;
  /** Prefix of every Redis key and channel (`sandbox:<uuid>:`). */
  readonly redisPrefix: string;
  /** pg.Pool; each connection's search_path is exactly `schema`. Throws SDK_NOT_CONFIGURED without a database URL. */
  readonly db: pg.Pool;
  /** ioredis with keyPrefix, logged in as the sandbox's ACL user. No SCAN: the ACL refuses it. */
  readonly redis: Redis;
  /** Redis pub/sub with channel names under the sandbox's prefix. */
  readonly pubsub: SandboxPubSub;
  /** The sandbox's events: `for await (const ev of sb.events)`. */
  readonly events: SandboxEvents;
  /**
   * A Prisma 7 client for the team's schema: `sb.prisma(PrismaClient)`. adapter-pg ignores `?schema=`
   * in URLs, so it gets both the search_path option and `schema`. Closed by close().
   */
  prisma<T extends { $disconnect(): Promise<void> }>(Client: PrismaClientClass<T>): T;
  /** Closes everything it opened. */
  close(): Promise<void>;
}

const notConfigured = (s: ResolvedSettings, what: string, vars: string): never => {
  throw new SandboxConnectError('SDK_NOT_CONFIGURED', `${s.label}: ${what} is not configured (set ${vars})`);
};

/**
 * Connects to what is configured (database, Redis, NATS) in parallel. Before returning it checks the
 * database: not the embedded one, the schema exists, and the sandbox is live. On any failure it
 * closes what it opened and throws a SandboxConnectError naming the sandbox; it never falls back.
 */
export async function connectSandbox(options: ConnectSandboxOptions = {}): Promise<SandboxConnection> {
  const s = resolveSettings(options);
  const sandboxMode = s.mode === 'sandbox';
  const opened: Array<() => Promise<unknown>> = [];
  const track = <T>(p: Promise<T>, close: (v: T) => Promise<unknown>): Promise<T> =>
    p.then((v) => {
      opened.push(() => close(v));
      return v;
    });

  let pool: pg.Pool | undefined;
  let redis: SandboxRedis | undefined;
  let nc: NatsConnection | undefined;
  const results = await Promise.allSettled([
    s.databaseUrl ? track(openDatabase(s, s.databaseUrl), (p) => p.end()).then((p) => (pool = p)) : undefined,
    s.redisUrl ? track(openRedis(s, s.redisUrl), (r) => r.close()).then((r) => (redis = r)) : undefined,
    s.natsUrl ? track(openNats(s, s.natsUrl), (n) => n.drain().catch(() => n.close())).then((n) => (nc = n)) : undefined,
  ]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled(opened.map((c) => c()));
    throw failed.reason;
  }

  const events = nc ? createEvents(nc, s) : undefined;
  const prismaClients: Array<{ $disconnect(): Promise<void> }> = [];
  let closed = false;
  const dbVars = sandboxMode ? 'SANDBOX_DATABASE_URL' : 'PRODUCTION_DATABASE_URL';
  const redisVars = sandboxMode ? 'SANDBOX_REDIS_URL' : 'REDIS_URL';

  return {
    mode: s.mode,
    sandboxId: s.sandboxId,
    schema: s.schema,
    redisPrefix: s.redisPrefix,
    get db() {
      return pool ?? notConfigured(s, 'the database', dbVars);
    },
    get redis() {
      return redis?.client ?? notConfigured(s, 'Redis', redisVars);
    },
    get pubsub() {
      return redis?.pubsub ?? notConfigured(s, 'Redis', redisVars);
    },
    get events() {
      return events ?? notConfigured(s, 'events', sandboxMode ? 'SANDBOX_NATS_URL' : 'NATS_URL');
    },
    prisma(Client) {
      if (!s.databaseUrl || !pool) return notConfigured(s, 'the database', dbVars);
      // The schema was checked when connecting; every Prisma connection gets the same search_path.
      const adapter = new PrismaPg({ connectionString: connectionStringOf(s.databaseUrl), options: searchPathOption(s.schema), max: s.poolSize }, { schema: s.schema });
      const client = new Client({ adapter });
      prismaClients.push(client);
      return client;
    },
    async close() {
      if (closed) return;
      closed = true;
      await events?.stop();
      await Promise.allSettled(prismaClients.map((c) => c.$disconnect()));
      await Promise.allSettled(opened.map((c) => c()));
    },
  };
}
