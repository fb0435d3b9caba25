/**
 * A bot that stops without ending its gateway session resumes it in the next process (issue 12, "Resume across
 * restarts"), in-process: the fake keeps the session as Discord keeps a killed process's, and the persisted session is
 * put back as the stopped process last wrote it (a clean stop removes it). The kill -9 test
 * (gateway-kill.test.ts) does the same with real child processes. Real NATS and Redis under this file's names.
 */
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { deleteKeys } from '../support/redis.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { BotStore } from '../../src/sandbox/store/bot-store.ts';
import { TcpProxy } from '../fault/support/tcp-proxy.ts';
import { messageCreatePayload } from '../fake-discord/payloads.ts';
import { NATS_URL, deleteStreams, removeSandboxResources, sandboxIdsOf, jetstreamManager, natsConnect, storedEvents, testTag, waitFor } from '../routing/support/routing.ts';
import { snowflake } from '../support/db.ts';
import { addGuild, finalText, sandboxCommand, setupEnv, type Env } from './support/harness.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const tag = testTag();
const prefix = `t${tag}.events`;
const production = `EVENTS_${tag}`;
const keyPrefix = `sbx-test:gateway:${randomBytes(4).toString('hex')}:`;
const made: string[] = [production];
const redis = new Redis(REDIS_URL);
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  expect(await deleteKeys(redis, keyPrefix)).toEqual([]);
  redis.disconnect();
  await deleteStreams(jsm, made);
  await nc?.close();
});

function say(env: Env, guildId: string, content: string): void {
  const channelId = env.fake.state.guild(guildId).channelIds[0]!;
  env.fake.dispatchEvent('MESSAGE_CREATE', messageCreatePayload({ id: snowflake(), channelId, guildId, authorId: snowflake(), content }));
}

/** The contents of the MESSAGE_CREATEs a stream holds for a guild, with their message ids. */
async function messages(stream: string, guildId: string): Promise<Array<{ content: string; msgId: string }>> {
  return (await storedEvents(jsm, stream))
    .filter((e) => e.t === 'MESSAGE_CREATE' && e.guildId === guildId)
    .map((e) => ({ content: String(e.d.content), msgId: e.msgId }));
}

/** Where a bot keeps shard 0's session. */
interface Persisted {
  read(): Promise<unknown>;
  write(value: unknown): Promise<void>;
}

const sessionKey = `${keyPrefix}session:0`;
const inRedis: Persisted = {
  read: () => redis.get(sessionKey),
  write: async (value) => void (await redis.set(sessionKey, String(value))),
};
const inBotState = (env: Env): Persisted => {
  const state = new BotStore(env.db.prisma);
  return { read: () => state.readState('gateway:session:0'), write: (value) => state.writeState('gateway:session:0', value as never) };
};

/** A fake Discord and a database for the enclosing describe block, closed after it. */
function useEnv(): () => Env {
  let env: Env | undefined;
  beforeAll(async () => {
    env = await setupEnv();
  });
  afterAll(async () => {
    const ids = env ? await sandboxIdsOf(env.db.pool) : [];
    await env?.close();
    await removeSandboxResources(ids, { jsm, redis });
  });
  return () => env!;
}

/** Stops the app as a crash would leave things: the gateway keeps the session, the store keeps what was written. */
async function crash(env: Env, app: App, persisted: Persisted, snapshot: unknown): Promise<void> {
  env.fake.keepSessionsOnClose(true);
  await app.stop();
  env.fake.keepSessionsOnClose(false);
  expect(await persisted.read()).toBeNull(); // a clean stop removed it
  await persisted.write(snapshot);
}

describe('resume across a restart (Redis, routing on)', () => {
  const current = useEnv();
  let env: Env;
  let home: { guildId: string; ownerId: string };
  let other: { guildId: string; ownerId: string };
  let sandboxStream: string;
  const persisted = inRedis;
  const vars = {
    NATS_URL,
    REDIS_URL,
    GATEWAY_KEY_PREFIX: keyPrefix,
    RATE_LIMIT_KEY_PREFIX: `${keyPrefix}rl:`,
    EVENTS_SUBJECT_PREFIX: prefix,
    EVENTS_STREAM: production,
    SANDBOX_EVENTS_MAX_BYTES: String(1024 * 1024),
  };

  beforeAll(() => {
    env = current();
    home = addGuild(env.fake);
    other = addGuild(env.fake);
  });

  it('resumes (no IDENTIFY), becomes ready, answers /sandbox, and every event is on its stream exactly once', async () => {
    const first = await env.start({}, vars);
    await waitFor(() => first.routing?.health() === 'ok', 'NATS to connect', 10_000, 25);
    const created = await finalText(env.fake.sendCommand(sandboxCommand({ guildId: home.guildId, userId: home.ownerId, subcommand: 'create', options: { name: `resume-${tag}` } })));
    expect(created).toContain('Created sandbox');
    const sandboxId = (await first.manager.getByGuildId(home.guildId))!.id;
    sandboxStream = `SANDBOX_${sandboxId.replaceAll('-', '')}`;
    made.push(sandboxStream);

    const sent: string[] = [];
    const burst = (phase: string, n: number) => {
      for (let i = 0; i < n; i++) {
        for (const g of [home, other]) {
          const content = `${phase}-${i}-${g === home ? 'home' : 'other'}`;
          sent.push(content);
          say(env, g.guildId, content);
        }
      }
    };
    burst('a', 20);
    await waitFor(async () => (await messages(sandboxStream, home.guildId)).length === 20 && (await messages(production, other.guildId)).length === 20, 'phase a stored', 15_000, 50);
    await waitFor(async () => JSON.parse(String((await persisted.read()) ?? '{}')).sequence > 40, 'the session persisted past phase a', 10_000, 25);
    const snapshot = await persisted.read();
    // Published by this process after the snapshot: the next one replays them, and the stream drops the repeats.
    burst('b', 10);
    await waitFor(async () => (await messages(sandboxStream, home.guildId)).length === 30, 'phase b stored', 15_000, 50);
    const identifies = env.fake.identifies.length;
    const sessionId = JSON.parse(String(snapshot)).sessionId as string;
    await crash(env, first, persisted, snapshot);

    burst('c', 10); // while no process is connected
    const second = await env.start({}, vars);
    expect(env.fake.identifies.length).toBe(identifies);
    expect(env.fake.resumeLog.at(-1)).toMatchObject({ sessionId, seq: JSON.parse(String(snapshot)).sequence });
    expect(env.fake.resumeLog.at(-1)!.replayed).toBeGreaterThanOrEqual(40);
    expect(second.client.isReady()).toBe(true);
    const ready = await fetch(`http://127.0.0.1:${second.http.port}/readyz`);
    expect(ready.status).toBe(200);

    const status = await finalText(env.fake.sendCommand(sandboxCommand({ guildId: home.guildId, userId: home.ownerId, subcommand: 'status', options: { sandbox: `resume-${tag}` } })));
    expect(status).toContain(`resume-${tag}`);
    // The guild cache is empty after a resume: the permission check fetches the guild over REST, so this maps `other`.
    const mappedOther = await finalText(env.fake.sendCommand(sandboxCommand({ guildId: other.guildId, userId: other.ownerId, subcommand: 'create', options: { name: `other-${tag}` } })));
    expect(mappedOther).toContain('Created sandbox');
    expect((await second.manager.getByGuildId(other.guildId))?.name).toBe(`other-${tag}`);
    // Reconciliation after the resume unmapped nothing.
    expect((await second.manager.getByGuildId(home.guildId))?.id).toBe(sandboxId);

    await waitFor(async () => (await messages(sandboxStream, home.guildId)).length >= 40 && (await messages(production, other.guildId)).length >= 40, 'phase c stored', 15_000, 50);
    await new Promise((r) => setTimeout(r, 500)); // anything late would show as a repeat
    const inSandbox = await messages(sandboxStream, home.guildId);
    const inProduction = await messages(production, other.guildId);
    const expected = (which: string) => sent.filter((c) => c.endsWith(which)).sort();
    expect(inSandbox.map((m) => m.content).sort()).toEqual(expected('home'));
    expect(inProduction.map((m) => m.content).sort()).toEqual(expected('other'));
    expect(new Set(inSandbox.map((m) => m.msgId)).size).toBe(inSandbox.length);
    expect(new Set(inProduction.map((m) => m.msgId)).size).toBe(inProduction.length);
    expect(inSandbox.every((m) => m.msgId.startsWith(`0:${sessionId}:`))).toBe(true);
  });
});

describe('events received but not yet published when the process dies', () => {
  const current = useEnv();
  const persisted = inRedis;
  let proxy: TcpProxy;

  beforeAll(async () => {
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(NATS_URL).port || 4222) });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('are replayed by the RESUME and published: the persisted sequence stops at the last acked one', async () => {
    const env = current();
    const guild = addGuild(env.fake);
    const vars = {
      NATS_URL: `nats://127.0.0.1:${proxy.port}`,
      REDIS_URL,
      GATEWAY_KEY_PREFIX: keyPrefix,
      RATE_LIMIT_KEY_PREFIX: `${keyPrefix}rl:`,
      EVENTS_SUBJECT_PREFIX: prefix,
      EVENTS_STREAM: production,
    };
    const first = await env.start({}, vars);
    await waitFor(() => first.routing?.health() === 'ok', 'NATS to connect', 10_000, 25);
    for (let i = 0; i < 5; i++) say(env, guild.guildId, `acked-${i}`);
    await waitFor(async () => (await messages(production, guild.guildId)).length === 5, 'the first five stored', 15_000, 50);
    await proxy.down();
    for (let i = 0; i < 5; i++) say(env, guild.guildId, `buffered-${i}`);
    await waitFor(() => (first.routing?.publisher.pending ?? 0) >= 5, 'five events buffered while NATS is away', 10_000, 25);
    await new Promise((r) => setTimeout(r, 600)); // several persistence ticks
    const snapshot = await persisted.read();
    // The process dies with the five unpublished (a clean stop drops them as `shutdown` after its flush timeout).
    await crash(env, first, persisted, snapshot);
    await proxy.up();

    await env.start({}, vars);
    await waitFor(async () => (await messages(production, guild.guildId)).length >= 10, 'the buffered five replayed and stored', 20_000, 50);
    await new Promise((r) => setTimeout(r, 500));
    const stored = (await messages(production, guild.guildId)).map((m) => m.content).sort();
    expect(stored).toEqual([...[0, 1, 2, 3, 4].map((i) => `acked-${i}`), ...[0, 1, 2, 3, 4].map((i) => `buffered-${i}`)].sort());
  });
});

describe('resume across a restart (bot_state, routing off)', () => {
  const current = useEnv();

  it('keeps the session in bot_state and resumes instead of identifying', async () => {
    const env = current();
    const home = addGuild(env.fake);
    const persisted = inBotState(env);
    const first = await env.start();
    say(env, home.guildId, 'before');
    await waitFor(async () => ((await persisted.read()) as { sequence?: number } | null)?.sequence !== undefined, 'the session in bot_state', 10_000, 25);
    const snapshot = await persisted.read();
    const identifies = env.fake.identifies.length;
    await crash(env, first, persisted, snapshot);
    say(env, home.guildId, 'while down');

    const second = await env.start();
    expect(env.fake.identifies.length).toBe(identifies);
    expect(env.fake.resumeLog.at(-1)?.sessionId).toBe((snapshot as { sessionId: string }).sessionId);
    expect(second.client.isReady()).toBe(true);
    expect(second.client.user?.id).toBe(env.fake.state.botUser.id);
    const listed = await finalText(env.fake.sendCommand(sandboxCommand({ guildId: home.guildId, userId: home.ownerId, subcommand: 'list' })));
    expect(listed.length).toBeGreaterThan(0);
  });
});

describe('a persisted session Discord no longer knows', () => {
  const current = useEnv();

  it('is refused (op 9), removed, and the shard identifies and becomes ready as usual', async () => {
    const env = current();
    const { guildId, ownerId } = addGuild(env.fake);
    const persisted = inBotState(env);
    const stale = {
      sessionId: 'expired-session',
      resumeURL: env.fake.gatewayUrl,
      shardId: 0,
      shardCount: 1,
      sequence: 99,
      ready: { user: { id: env.fake.state.botUser.id, username: 'bot', discriminator: '0', bot: true }, application: { id: env.fake.state.botUser.id, flags: 0 } },
    };
    await persisted.write(stale);
    const identifies = env.fake.identifies.length;
    const app = await env.start();
    expect(env.fake.identifies.length).toBe(identifies + 1);
    expect(env.fake.resumes).toBe(0);
    expect(app.client.guilds.cache.has(guildId)).toBe(true); // a real READY: the guilds are listed
    await waitFor(async () => ((await persisted.read()) as { sessionId?: string } | null)?.sessionId === env.fake.identifies.at(-1)!.sessionId, 'the new session persisted', 10_000, 25);
    const listed = await finalText(env.fake.sendCommand(sandboxCommand({ guildId, userId: ownerId, subcommand: 'list' })));
    expect(listed).toContain('No sandboxes.');
  });
});

describe('guild rules after a resume (the guild cache starts empty; what happened meanwhile is replayed)', () => {
  const current = useEnv();

  it('maps a guild joined meanwhile, unmaps one left, keeps one in an outage, and does not re-map an unregistered one', async () => {
    const env = current();
    const operator = { kind: 'operator', name: 'resume-test' } as const;
    const persisted = inBotState(env);
    const first = await env.start();
    const [joiner, leaver, outageOwner, unregOwner] = [snowflake(), snowflake(), snowflake(), snowflake()];
    const joined = await first.manager.create({ name: 'joined-meanwhile', owner: joiner }, operator);
    await first.manager.create({ name: 'left-meanwhile', owner: leaver }, operator);
    await first.manager.create({ name: 'outage-meanwhile', owner: outageOwner }, operator);
    await first.manager.create({ name: 'unregistered', owner: unregOwner }, operator);
    const { guildId: removed } = addGuild(env.fake, { ownerId: leaver });
    const { guildId: outage } = addGuild(env.fake, { ownerId: outageOwner });
    const { guildId: unregistered } = addGuild(env.fake, { ownerId: unregOwner });
    for (const g of [removed, outage, unregistered]) await waitFor(() => first.manager.getByGuildId(g), 'the owner-rule mapping', 10_000, 25);
    await first.manager.unregisterGuild('unregistered', unregistered, operator);
    await waitFor(async () => ((await persisted.read()) as { sequence?: number } | null)?.sequence !== undefined, 'the session in bot_state', 10_000, 25);
    await new Promise((r) => setTimeout(r, 400)); // the latest sequence written
    await crash(env, first, persisted, await persisted.read());

    const { guildId: newGuild } = addGuild(env.fake, { ownerId: joiner });
    env.fake.removeGuild(removed);
    env.fake.removeGuild(outage, { unavailable: true });
    env.fake.restoreGuild(unregistered); // a GUILD_CREATE of a guild the bot was already in
    const identifies = env.fake.identifies.length;
    const second = await env.start();
    expect(env.fake.identifies.length).toBe(identifies);

    await waitFor(async () => (await second.manager.getByGuildId(newGuild))?.id === joined.sandbox.id, 'the new guild mapped by the owner rule', 10_000, 25);
    await waitFor(async () => (await second.manager.getByGuildId(removed)) === null, 'the left guild unmapped', 10_000, 25);
    const [{ left }] = (await env.db.pool.query('SELECT left_at IS NOT NULL AS left FROM bot_guilds WHERE guild_id = $1', [removed])).rows as [{ left: boolean }];
    expect(left).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect((await second.manager.getByGuildId(outage))?.name).toBe('outage-meanwhile');
    expect(await second.manager.getByGuildId(unregistered)).toBeNull();
  });
});
