// End to end: the bot runs with routing (NATS) and isolation, alongside two copies of
// examples/profile-worker.ts, one for production and one for a sandbox: the same code, different
// environments. The sandbox worker's environment is exactly what `sandbox env` prints. Messages in
// the mapped guild change only the sandbox's profiles, messages in an unmapped guild only
// production's, and after unregister-guild the guild's next messages reach production. Messages are
// sent only to sessions that identified with GuildMessages (GATEWAY_INTENTS' default includes it).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { GatewayIntentBits } from 'discord.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import type { Actor } from '../../src/sandbox/types.ts';
import { snowflake } from '../support/db.ts';
import { addGuild, eventually, finalText, sandboxCommand, setupEnv, type Env } from './support/harness.ts';
import { messageCreatePayload } from '../fake-discord/payloads.ts';

const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SECRET = 'e2e-worker-credential-secret-0123456789abcdef';
const tag = randomBytes(5).toString('hex');
const PROD_STREAM = `E2EWORK_${tag}`;
const PROD_PREFIX = `e2ework_${tag}`;
const PROD_SCHEMA = `prod_${tag}`;
const PROD_REDIS_PREFIX = `e2ework:${tag}:`;
const operator: Actor = { kind: 'operator', name: 'e2e' };

let env: Env;
let app: App;
let nc: NatsConnection;
let jsm: JetStreamManager;
let admin: Redis;
let mapped: { guildId: string };
let unmapped: { guildId: string };
let sandboxId: string;
let sandboxSchema: string;
const workers: ChildProcess[] = [];

function startWorker(workerEnv: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/profile-worker.ts'], { env: { PATH: process.env.PATH ?? '', ...workerEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
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

function say(guildId: string, authorId: string): void {
  env.fake.dispatchEvent('MESSAGE_CREATE', messageCreatePayload({ id: snowflake(), channelId: env.fake.state.guild(guildId).channelIds[0]!, guildId, authorId, content: 'hello' }), { intent: GatewayIntentBits.GuildMessages });
}

/** "<guild>/<author>=<messages>" for every profile in a schema. */
async function profiles(schema: string): Promise<string[]> {
  const { rows } = await env.db.pool.query<{ g: string; a: string; n: number }>(
    `SELECT c.discord_guild_id AS g, p.discord_id AS a, p.activity_score AS n FROM ${schema}.profiles p JOIN ${schema}.communities c ON c.id = p.community_id ORDER BY 1, 2`,
  );
  return rows.map((r) => `${r.g}/${r.a}=${r.n}`);
}

const has = (schema: string, want: string[]) => eventually(async () => {
  const got = await profiles(schema);
  return want.every((w) => got.includes(w)) && got;
}, `${want.join(', ')} in ${schema}`, 15_000);

beforeAll(async () => {
  env = await setupEnv();
  admin = new Redis(REDIS_URL);
  nc = await connect({ servers: NATS_URL });
  jsm = await jetstreamManager(nc);
  // Production's own tables (the default ones), in a schema of this file's database.
  const throwaway = randomUUID();
  await env.db.pool.query('SELECT create_sandbox_schema($1)', [throwaway]);
  await env.db.pool.query(`ALTER SCHEMA sandbox_${throwaway.replaceAll('-', '')} RENAME TO ${PROD_SCHEMA}`);
  mapped = addGuild(env.fake);
  unmapped = addGuild(env.fake);
  app = await env.start({}, {
    DATABASE_URL: env.db.url,
    SANDBOX_CREDENTIAL_SECRET: SECRET,
    REDIS_URL,
    GATEWAY_KEY_PREFIX: `sbx-test:gateway:${tag}:`,
    NATS_URL,
    EVENTS_SUBJECT_PREFIX: PROD_PREFIX,
    EVENTS_STREAM: PROD_STREAM,
    SANDBOX_EVENTS_MAX_BYTES: String(1024 * 1024),
  });
  const { sandbox } = await app.manager.create({ name: `worker-${tag}`, guildIds: [mapped.guildId] }, operator);
  expect(sandbox.guildIds).toEqual([mapped.guildId]);
  sandboxId = sandbox.id;
  sandboxSchema = sandbox.schemaName;

  // The sandbox worker gets exactly what `sandbox env` prints; production's gets production's variables.
  const printed = await app.manager.getConnectionDetails(sandbox.name, operator);
  expect(new URL(printed.SANDBOX_DATABASE_URL!).username).toBe(sandboxSchema);
  await eventually(() => jsm.streams.info(PROD_STREAM).then(() => true, () => false), 'the production stream');
  await Promise.all([
    startWorker(printed),
    startWorker({
      PRODUCTION_DATABASE_URL: env.db.url,
      PRODUCTION_SCHEMA: PROD_SCHEMA,
      PRODUCTION_REDIS_PREFIX: PROD_REDIS_PREFIX,
      REDIS_URL,
      NATS_URL,
      EVENTS_STREAM: PROD_STREAM,
      EVENTS_SUBJECT_PREFIX: PROD_PREFIX,
    }),
  ]);
  // Each worker's durable consumer exists before anything is said (they deliver new events only).
  for (const stream of [`SANDBOX_${sandboxId.replaceAll('-', '')}`, PROD_STREAM]) {
    await eventually(() => jsm.consumers.info(stream, 'worker').then(() => true, () => false), `the worker's consumer on ${stream}`);
  }
}, 60_000);

afterAll(async () => {
  for (const w of workers) w.kill('SIGTERM');
  // The destroy removes the sandbox's stream, ACL user, keys and role.
  if (sandboxId) await app?.manager.destroy(sandboxId, operator).catch(() => undefined);
  await jsm?.streams.delete(PROD_STREAM).catch(() => undefined);
  await nc?.close();
  await env?.close();
  // Production's keys, and the gateway's (its session is removed by the clean stop; the identify key expires anyway).
  for (const keyPrefix of [PROD_REDIS_PREFIX, `sbx-test:gateway:${tag}:`]) {
    const left = await admin.keys(`${keyPrefix}*`);
    if (left.length) await admin.del(...left);
  }
  admin?.disconnect();
});

describe('the bot routing to two copies of the example worker', () => {
  const alice = snowflake();
  const bob = snowflake();

  it("messages in the mapped guild change only the sandbox's profiles; in an unmapped guild only production's", async () => {
    say(mapped.guildId, alice);
    say(mapped.guildId, alice);
    say(unmapped.guildId, bob);
    expect(await has(sandboxSchema, [`${mapped.guildId}/${alice}=2`])).toEqual([`${mapped.guildId}/${alice}=2`]);
    expect(await has(PROD_SCHEMA, [`${unmapped.guildId}/${bob}=1`])).toEqual([`${unmapped.guildId}/${bob}=1`]);
    // The sandbox worker's cache lives under its own prefix.
    expect(await admin.exists(`sandbox:${sandboxId}:last-message:${mapped.guildId}:${alice}`)).toBe(1);
  });

  it("/sandbox connect answers ephemerally with the sandbox's own logins and its NATS consumer", async () => {
    env.fake.state.addMember(env.fake.state.guild(mapped.guildId), { userId: env.adminId });
    const handle = env.fake.sendCommand(sandboxCommand({ guildId: mapped.guildId, userId: env.adminId, subcommand: 'connect', options: { sandbox: sandboxId } }));
    const text = await finalText(handle);
    expect(handle.callback).toEqual({ type: 5, data: { flags: 64 } });
    const line = (key: string): string | undefined => text.split('\n').find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
    expect(new URL(line('SANDBOX_DATABASE_URL')!).username).toBe(sandboxSchema);
    expect(new URL(line('SANDBOX_REDIS_URL')!).username).toBe(sandboxSchema);
    expect([line('SANDBOX_NATS_URL'), line('SANDBOX_NATS_CONSUMER')]).toEqual([NATS_URL, 'worker']);
    // The control role's login never appears.
    expect(text).not.toContain(env.db.url);
    // Neither the secret nor a derived password reaches a log line.
    const derived = ['postgres', 'redis'].map((p) => createHmac('sha256', SECRET).update(`${p}:${sandboxId}`).digest('hex'));
    expect(text).toContain(derived[0]);
    expect(env.logs.leaking([SECRET, ...derived])).toEqual([]);
  });

  it("after unregister-guild, the guild's next messages reach production", async () => {
    await app.manager.unregisterGuild(sandboxId, mapped.guildId, operator);
    say(mapped.guildId, alice);
    expect(await has(PROD_SCHEMA, [`${mapped.guildId}/${alice}=1`])).toEqual([`${mapped.guildId}/${alice}=1`, `${unmapped.guildId}/${bob}=1`].sort());
    expect(await profiles(sandboxSchema)).toEqual([`${mapped.guildId}/${alice}=2`]);
  });
});
