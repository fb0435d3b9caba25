/**
 * Kill -9 one bot process and restart it (issue 12, "Tests"): the bot runs as its own process (src/main.ts), the fake
 * dispatches to a mapped and an unmapped guild without pause, before, during and after the kill. The restarted
 * process RESUMEs (the fake sees no new IDENTIFY), becomes ready, answers /sandbox, and the sandbox and production
 * streams hold every event exactly once. Again without Redis (the session in `bot_state`, routing off): it resumes.
 * Real NATS and Redis, under this file's stream names, subject prefix and key prefix, deleted after.
 */
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { deleteKeys } from '../support/redis.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeDiscord } from '../fake-discord/index.ts';
import { messageCreatePayload } from '../fake-discord/payloads.ts';
import { NATS_URL, deleteStreams, removeSandboxResources, sandboxIdsOf, jetstreamManager, natsConnect, storedEvents, testTag, waitFor } from '../routing/support/routing.ts';
import { processEnv, startBotProcess, type BotProcess } from '../support/bot-process.ts';
import { createTestDatabase, snowflake, type TestDatabase } from '../support/db.ts';
import { addGuild, finalText, sandboxCommand } from './support/harness.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const tag = testTag();
const prefix = `t${tag}.events`;
const production = `EVENTS_${tag}`;
const keyPrefix = `sbx-test:gateway-kill:${randomBytes(4).toString('hex')}:`;
const made: string[] = [production];
const redis = new Redis(REDIS_URL);
const bots: BotProcess[] = [];
let fake: FakeDiscord;
let db: TestDatabase;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
  fake = await FakeDiscord.start();
  db = await createTestDatabase();
});

afterAll(async () => {
  for (const bot of bots) await bot.kill();
  await fake?.stop();
  if (db) await removeSandboxResources(await sandboxIdsOf(db.pool), { jsm, redis });
  await db?.drop();
  await deleteStreams(jsm, made);
  await nc?.close();
  expect(await deleteKeys(redis, keyPrefix)).toEqual([]);
  redis.disconnect();
});

const baseEnv = (): Record<string, string> =>
  processEnv(fake, db.url, {
    RATE_LIMIT_KEY_PREFIX: `${keyPrefix}rl:`,
    GATEWAY_KEY_PREFIX: keyPrefix,
  });

async function start(env: Record<string, string>, name: string): Promise<BotProcess> {
  const bot = await startBotProcess(env, { name });
  bots.push(bot);
  await bot.waitReady(60_000);
  return bot;
}

/** Dispatches MESSAGE_CREATEs to each guild in turn until stopped; returns what it sent, per guild. */
function keepDispatching(guilds: Record<string, string>, everyMs = 10): { stop(): Promise<Record<string, string[]>> } {
  const sent: Record<string, string[]> = Object.fromEntries(Object.keys(guilds).map((k) => [k, []]));
  let i = 0;
  const timer = setInterval(() => {
    for (const [label, guildId] of Object.entries(guilds)) {
      const content = `${label}-${i}`;
      const channelId = fake.state.guild(guildId).channelIds[0]!;
      fake.dispatchEvent('MESSAGE_CREATE', messageCreatePayload({ id: snowflake(), channelId, guildId, authorId: snowflake(), content }));
      sent[label]!.push(content);
    }
    i++;
  }, everyMs);
  return {
    stop: async () => {
      clearInterval(timer);
      return sent;
    },
  };
}

async function messages(stream: string, guildId: string): Promise<Array<{ content: string; msgId: string }>> {
  return (await storedEvents(jsm, stream))
    .filter((e) => e.t === 'MESSAGE_CREATE' && e.guildId === guildId)
    .map((e) => ({ content: String(e.d.content), msgId: e.msgId }));
}

const command = (guildId: string, userId: string, subcommand: string, options: Record<string, string> = {}) =>
  finalText(fake.sendCommand(sandboxCommand({ guildId, userId, subcommand, options })), 20_000);

/**
 * Starts a bot, keeps dispatching to a mapped and an unmapped guild, ends the bot with `end`, starts another and
 * checks that it resumed and that both streams hold every event exactly once.
 */
async function restartKeepsEveryEvent(label: string, end: (bot: BotProcess) => Promise<void>, extraEnv: Record<string, string> = {}): Promise<void> {
  const home = addGuild(fake);
  const other = addGuild(fake);
  const env = {
    ...baseEnv(),
    REDIS_URL,
    NATS_URL,
    EVENTS_SUBJECT_PREFIX: prefix,
    EVENTS_STREAM: production,
    SANDBOX_EVENTS_MAX_BYTES: String(1024 * 1024),
    ...extraEnv,
  };
  const first = await start(env, `${label}-1`);
  expect(await command(home.guildId, home.ownerId, 'create', { name: `${label}-${tag}` })).toContain('Created sandbox');
  const sandboxId = String((await db.pool.query('SELECT id FROM sandboxes WHERE name = $1', [`${label}-${tag}`])).rows[0]?.id);
  const sandboxStream = `SANDBOX_${sandboxId.replaceAll('-', '')}`;
  made.push(sandboxStream);
  const identifies = fake.identifies.length;
  const sessionId = fake.identifies.at(-1)!.sessionId;
  const resumes = fake.resumeLog.length;

  const dispatcher = keepDispatching({ home: home.guildId, other: other.guildId });
  await waitFor(async () => (await messages(sandboxStream, home.guildId)).length >= 50, 'events flowing to the sandbox stream', 20_000, 50);
  await end(first);
  await new Promise((r) => setTimeout(r, 1000)); // dispatching goes on while no process is connected
  const second = await start(env, `${label}-2`);
  await new Promise((r) => setTimeout(r, 1000)); // and after the restart
  const sent = await dispatcher.stop();

  expect(fake.identifies.length).toBe(identifies);
  expect(fake.resumeLog.slice(resumes).map((r) => r.sessionId)).toEqual([sessionId]);
  await second.waitForLog((l) => l.msg === 'resuming the persisted gateway session', 5000);
  expect(await command(home.guildId, home.ownerId, 'status', { sandbox: `${label}-${tag}` })).toContain(`${label}-${tag}`);

  await waitFor(
    async () => (await messages(sandboxStream, home.guildId)).length >= sent.home!.length && (await messages(production, other.guildId)).length >= sent.other!.length,
    'every event stored',
    30_000,
    100,
  );
  await new Promise((r) => setTimeout(r, 500)); // a late repeat would show
  const inSandbox = await messages(sandboxStream, home.guildId);
  const inProduction = await messages(production, other.guildId);
  console.log(`[gateway-kill ${label}] ${sent.home!.length + sent.other!.length} events sent; replayed on RESUME: ${fake.resumeLog.at(-1)!.replayed}`);
  expect(inSandbox.map((m) => m.content).sort()).toEqual([...sent.home!].sort());
  expect(inProduction.map((m) => m.content).sort()).toEqual([...sent.other!].sort());
  expect(new Set(inSandbox.map((m) => m.msgId)).size).toBe(inSandbox.length);
  expect(new Set(inProduction.map((m) => m.msgId)).size).toBe(inProduction.length);
  // A clean stop (without GATEWAY_RESUME_AFTER_STOP) ends the session (closed with 1000) and removes its copy.
  expect(await second.stop()).toBe(0);
  if (!extraEnv.GATEWAY_RESUME_AFTER_STOP) expect(await redis.get(`${keyPrefix}session:0`)).toBeNull();
}

describe('kill -9 and restart (Redis, routing on)', () => {
  it('resumes, answers /sandbox, and loses or repeats no event on the streams', async () => {
    await restartKeepsEveryEvent('kill', async (bot) => {
      expect(await bot.kill('SIGKILL')).toBeNull();
    });
  }, 180_000);
});

describe('SIGTERM and restart with GATEWAY_RESUME_AFTER_STOP=on', () => {
  it('the clean stop keeps the session open and persisted: the next process resumes, nothing lost or repeated', async () => {
    await restartKeepsEveryEvent(
      'term',
      async (bot) => {
        expect(await bot.stop()).toBe(0);
      },
      { GATEWAY_RESUME_AFTER_STOP: 'on' },
    );
  }, 180_000);
});

describe('kill -9 and restart (no Redis: bot_state)', () => {
  it('resumes instead of identifying', async () => {
    const home = addGuild(fake);
    const first = await start(baseEnv(), 'bot-3');
    const identifies = fake.identifies.length;
    const sessionId = fake.identifies.at(-1)!.sessionId;
    await waitFor(async () => (await db.pool.query(`SELECT 1 FROM bot_state WHERE key = 'gateway:session:0'`)).rowCount === 1, 'the session in bot_state', 10_000, 50);
    expect(await first.kill('SIGKILL')).toBeNull();
    const second = await start(baseEnv(), 'bot-4');
    expect(fake.identifies.length).toBe(identifies);
    expect(fake.resumeLog.at(-1)?.sessionId).toBe(sessionId);
    expect(await command(home.guildId, home.ownerId, 'list')).toBeTruthy();
    expect(await second.stop()).toBe(0);
  }, 120_000);
});
