// Two copies of examples/profile-worker.ts (same code, different environment): one for a sandbox,
// one for production. Events on the sandbox's stream change only the sandbox's profiles; events on
// the production stream change only production's. Streams, schema, role, ACL user and keys are this
// file's own and are removed afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisAclResource, RedisKeysResource } from '../../src/sandbox/redis-resources.ts';
import { IsolationFixture, NATS_URL, REDIS_URL, credentials, type TestSandbox } from './support.ts';

const GUILD_SANDBOX = '400000000000000001';
const GUILD_PROD = '400000000000000002';
const USER = '500000000000000001';
const tag = randomUUID().replaceAll('-', '').slice(0, 12);
const PROD_STREAM = `SDKTEST_${tag}`;
const PROD_PREFIX = `sdktest_${tag}`;
const PROD_SCHEMA = `prod_${tag}`;
const PROD_REDIS_PREFIX = `sdktest:${tag}:`;

let fx: IsolationFixture;
let sb: TestSandbox;
let nc: NatsConnection;
let jsm: JetStreamManager;
let admin: Redis;
let acl: RedisAclResource;
const workers: ChildProcess[] = [];
let n = 0;

function startWorker(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/profile-worker.ts'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  workers.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('profile worker ready')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`worker exited ${code}: ${err}`)));
  });
}

async function publish(subject: string, t: string, guildId: string, d: unknown, sandboxId?: string): Promise<void> {
  const h = headers();
  h.set('Discord-Guild-Id', guildId);
  h.set('Discord-Event', t);
  if (sandboxId) h.set('Sandbox-Id', sandboxId);
  n += 1;
  await jetstream(nc).publish(subject, JSON.stringify({ t, s: n, op: 0, d }), { headers: h, msgID: `${tag}:${n}` });
}

const message = (guildId: string, id: string) => ({ id, guild_id: guildId, author: { id: USER }, timestamp: '2026-11-28T00:00:00.000Z', content: 'hi' });

async function profiles(schema: string): Promise<Array<{ guild: string; discord_id: string; activity_score: number }>> {
  const { rows } = await fx.db.pool.query(
    `SELECT c.discord_guild_id AS guild, p.discord_id, p.activity_score FROM ${schema}.profiles p JOIN ${schema}.communities c ON c.id = p.community_id ORDER BY 1, 2`,
  );
  return rows;
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  let v = await read();
  for (let i = 0; i < 200 && !ok(v); i++) {
    await new Promise((r) => setTimeout(r, 25));
    v = await read();
  }
  return v;
}

beforeAll(async () => {
  fx = await IsolationFixture.create();
  sb = await fx.sandbox();
  // Production: a schema with the default tables, made from a throwaway sandbox schema.
  const prod = randomUUID();
  await fx.db.pool.query('SELECT create_sandbox_schema($1)', [prod]);
  await fx.db.pool.query(`ALTER SCHEMA sandbox_${prod.replaceAll('-', '')} RENAME TO ${PROD_SCHEMA}`);
  admin = new Redis(REDIS_URL);
  acl = new RedisAclResource(admin, credentials);
  await acl.ensure(sb.id);
  nc = await connect({ servers: NATS_URL });
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: `SANDBOX_${sb.hex}`, subjects: [`sandbox.${sb.id}.>`], max_bytes: 1024 * 1024 });
  await jsm.streams.add({ name: PROD_STREAM, subjects: [`${PROD_PREFIX}.>`], max_bytes: 1024 * 1024 });
  await Promise.all([
    startWorker({
      SANDBOX_ID: sb.id,
      SANDBOX_SCHEMA: sb.schema,
      SANDBOX_DATABASE_URL: fx.roleUrl(sb.id),
      SANDBOX_REDIS_URL: credentials.redisUrl(REDIS_URL, sb.id),
      SANDBOX_NATS_URL: NATS_URL,
      SANDBOX_NATS_CONSUMER: 'profile-worker',
    }),
    startWorker({
      PRODUCTION_DATABASE_URL: fx.db.url,
      PRODUCTION_SCHEMA: PROD_SCHEMA,
      PRODUCTION_REDIS_PREFIX: PROD_REDIS_PREFIX,
      REDIS_URL,
      NATS_URL,
      EVENTS_STREAM: PROD_STREAM,
      EVENTS_SUBJECT_PREFIX: PROD_PREFIX,
      EVENTS_CONSUMER: 'profile-worker',
    }),
  ]);
  // Each worker's durable consumer exists before anything is published (they deliver new events).
  await until(() => jsm.consumers.info(`SANDBOX_${sb.hex}`, 'profile-worker').then(() => true, () => false), (v) => v);
  await until(() => jsm.consumers.info(PROD_STREAM, 'profile-worker').then(() => true, () => false), (v) => v);
}, 60_000);

afterAll(async () => {
  for (const w of workers) w.kill('SIGTERM');
  await jsm?.streams.delete(`SANDBOX_${sb?.hex}`).catch(() => undefined);
  await jsm?.streams.delete(PROD_STREAM).catch(() => undefined);
  await nc?.close();
  if (sb) {
    await acl.remove(sb.id);
    await new RedisKeysResource(admin).remove(sb.id);
  }
  const left = await admin.keys(`${PROD_REDIS_PREFIX}*`);
  if (left.length) await admin.del(...left);
  await admin?.quit();
  await fx?.drop();
});

describe('the example profile worker', () => {
  it("counts sandbox messages only in the sandbox's schema, and caches the last message time in its keys", async () => {
    await publish(`sandbox.${sb.id}.events.GUILD_MEMBER_ADD`, 'GUILD_MEMBER_ADD', GUILD_SANDBOX, { guild_id: GUILD_SANDBOX, user: { id: '500000000000000009' } }, sb.id);
    await publish(`sandbox.${sb.id}.events.MESSAGE_CREATE`, 'MESSAGE_CREATE', GUILD_SANDBOX, message(GUILD_SANDBOX, '600000000000000001'), sb.id);
    await publish(`sandbox.${sb.id}.events.MESSAGE_CREATE`, 'MESSAGE_CREATE', GUILD_SANDBOX, message(GUILD_SANDBOX, '600000000000000002'), sb.id);
    // The same message delivered twice (a redelivery) counts once.
    await publish(`sandbox.${sb.id}.events.MESSAGE_CREATE`, 'MESSAGE_CREATE', GUILD_SANDBOX, message(GUILD_SANDBOX, '600000000000000002'), sb.id);

    const rows = await until(() => profiles(sb.schema), (r) => r.some((p) => p.discord_id === USER && p.activity_score === 2));
    expect(rows).toEqual([
      { guild: GUILD_SANDBOX, discord_id: USER, activity_score: 2 },
      { guild: GUILD_SANDBOX, discord_id: '500000000000000009', activity_score: 0 },
    ]);
    expect(await profiles(PROD_SCHEMA)).toEqual([]);
    expect(await admin.get(`sandbox:${sb.id}:last-message:${GUILD_SANDBOX}:${USER}`)).toBe('2026-11-28T00:00:00.000Z');
  });

  it("counts production messages only in production's schema", async () => {
    await publish(`${PROD_PREFIX}.MESSAGE_CREATE`, 'MESSAGE_CREATE', GUILD_PROD, message(GUILD_PROD, '600000000000000003'));
    const rows = await until(() => profiles(PROD_SCHEMA), (r) => r.length > 0);
    expect(rows).toEqual([{ guild: GUILD_PROD, discord_id: USER, activity_score: 1 }]);
    expect((await profiles(sb.schema)).filter((p) => p.guild === GUILD_PROD)).toEqual([]);
    expect(await admin.get(`${PROD_REDIS_PREFIX}last-message:${GUILD_PROD}:${USER}`)).toBe('2026-11-28T00:00:00.000Z');
  });
});
