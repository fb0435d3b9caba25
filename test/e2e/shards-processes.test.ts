/**
 * Two bot processes (src/main.ts each), SHARD_COUNT=2 with SHARD_IDS=0 and 1, routing on (the real nats-server, this
 * file's own subject prefix and streams, deleted after), against the fake Discord with guilds on both shards: every
 * guild's events are routed exactly once, each command is answered once by the process of its guild's shard,
 * reconciliation runs once per guild, and /sandbox is registered once.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeDiscord, messageCreatePayload, snowflakeOnShard } from '../fake-discord/index.ts';
import { deleteStreams, jetstreamManager, natsConnect, NATS_URL, storedEvents, testTag, waitFor } from '../routing/support/routing.ts';
import { processEnv, startBotProcess, type BotProcess } from '../support/bot-process.ts';
import { countRows, createTestDatabase, snowflake, type TestDatabase } from '../support/db.ts';
import { addGuild, finalText, sandboxCommand } from './support/harness.ts';

const tag = testTag();
const production = `EVENTS_${tag}`;
const streams: string[] = [production];
const PER_GUILD = 6;
let fake: FakeDiscord;
let db: TestDatabase;
let nc: NatsConnection;
let jsm: JetStreamManager;
const bots: BotProcess[] = [];
/** Guilds by shard: the first of each gets a sandbox (its events go to the sandbox stream), the others stay on production. */
const guilds: Record<0 | 1, { guildId: string; ownerId: string }[]> = { 0: [], 1: [] };

const audits = (guildId: string, eventType: string): Promise<number> =>
  countRows(db, 'sandbox_audit_log', "details->>'guildId' = $1 AND event_type = $2", [guildId, eventType]);

beforeAll(async () => {
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
  fake = await FakeDiscord.start();
  db = await createTestDatabase();
  for (const shard of [0, 1] as const) for (let i = 0; i < 3; i++) guilds[shard].push(addGuild(fake, { id: snowflakeOnShard(shard, 2) }));
  const env = (shardIds: string): Record<string, string> =>
    processEnv(fake, db.url, {
      NATS_URL,
      EVENTS_SUBJECT_PREFIX: `t${tag}.events`,
      EVENTS_STREAM: production,
      GATEWAY_INTENTS: 'GuildMessages',
      SHARD_COUNT: '2',
      SHARD_IDS: shardIds,
    });
  bots.push(...(await Promise.all([startBotProcess(env('0'), { name: 'shard-0' }), startBotProcess(env('1'), { name: 'shard-1' })])));
  await Promise.all(bots.map((b) => b.waitReady(90_000)));
  // Started up completely (main.ts handles SIGTERM from then on): the sweeper's first pass follows startApp.
  await Promise.all(bots.map((b) => b.waitForLog((l) => l.msg === 'sweep pass finished', 60_000)));
}, 180_000);

afterAll(async () => {
  await Promise.all(bots.map((b) => b.kill()));
  await fake?.stop();
  await deleteStreams(jsm, streams);
  await nc?.close();
  await db?.drop();
});

describe('two bot processes, SHARD_COUNT=2, routing on', () => {
  it('each process holds its shard; commands are registered once and each guild reconciled once', async () => {
    expect(fake.identifies.map((i) => i.shard).sort()).toEqual([
      [0, 2],
      [1, 2],
    ]);
    for (const [index, bot] of bots.entries()) {
      const ready = await bot.waitForLog((l) => l.msg === 'gateway ready');
      expect(ready).toMatchObject({ shards: [index], shardCount: 2, guilds: 3 });
      expect(await bot.waitForLog((l) => l.msg === 'guilds reconciled')).toMatchObject({ guilds: 3, joined: 3 });
    }
    // /readyz answers once the gateway is ready; the ready tasks log when they ran.
    await bots[0]!.waitForLog((l) => l.msg === 'commands registered');
    await bots[1]!.waitForLog((l) => l.msg === 'commands are registered by the process holding shard 0');
    expect(fake.commandWrites).toHaveLength(1);
    for (const { guildId } of [...guilds[0], ...guilds[1]]) {
      expect(await audits(guildId, 'guild_join_unmapped')).toBe(1);
      expect(await countRows(db, 'bot_guilds', 'guild_id = $1 AND left_at IS NULL', [guildId])).toBe(1);
    }
  });

  it('each command is answered once, by the process of its guild’s shard', async () => {
    for (const shard of [0, 1] as const) {
      const { guildId, ownerId } = guilds[shard][0]!;
      const handle = fake.sendCommand(sandboxCommand({ guildId, userId: ownerId, subcommand: 'create', options: { name: `shard-${shard}-${tag}` } }));
      expect(await finalText(handle, 30_000)).toContain('Created sandbox');
      expect(handle.responses.filter((r) => r.kind === 'callback')).toHaveLength(1);
      const row = await db.pool.query<{ id: string }>('SELECT sandbox_id::text AS id FROM sandbox_guild_mapping WHERE guild_id = $1', [guildId]);
      streams.push(`SANDBOX_${row.rows[0]!.id.replaceAll('-', '')}`);
      // Handled by the process holding the shard, never the other one.
      const handled = bots.map((b) => b.logs.filter((l) => l.msg === 'command handled' && l.guildId === guildId).length);
      expect(handled[shard]).toBe(1);
      expect(handled[1 - shard]).toBe(0);
    }
  });

  it('every guild’s events are routed exactly once: none missing, none duplicated', async () => {
    const all = [...guilds[0], ...guilds[1]];
    const sent = new Map<string, string[]>();
    for (let i = 0; i < PER_GUILD; i++) {
      for (const { guildId, ownerId } of all) {
        const content = `m${i}-${guildId}`;
        const channelId = fake.state.guild(guildId).channelIds[0]!;
        expect(fake.dispatchEvent('MESSAGE_CREATE', messageCreatePayload({ id: snowflake(), channelId, guildId, authorId: ownerId, content }))).toBe(1);
        sent.set(guildId, [...(sent.get(guildId) ?? []), content]);
      }
    }
    const [sandbox0, sandbox1] = streams.slice(1) as [string, string];
    const messages = async (stream: string) =>
      (await storedEvents(jsm, stream)).filter((m) => m.t === 'MESSAGE_CREATE').map((m) => ({ guildId: m.guildId, msgId: m.msgId, content: m.d.content }));
    const total = PER_GUILD * all.length;
    await waitFor(
      async () => (await Promise.all([production, sandbox0, sandbox1].map(messages))).reduce((n, rows) => n + rows.length, 0) >= total,
      'every message on a stream',
      30_000,
      100,
    );
    await new Promise((r) => setTimeout(r, 500)); // anything extra (a duplicate) would land by now
    const onProduction = await messages(production);
    const bySandbox = { 0: await messages(sandbox0), 1: await messages(sandbox1) };
    for (const shard of [0, 1] as const) {
      const [mapped, ...unmapped] = guilds[shard];
      expect(bySandbox[shard].map((m) => m.content)).toEqual(sent.get(mapped!.guildId));
      expect(onProduction.filter((m) => m.guildId === mapped!.guildId)).toEqual([]);
      for (const { guildId } of unmapped) expect(onProduction.filter((m) => m.guildId === guildId).map((m) => m.content)).toEqual(sent.get(guildId));
      // Published by the process of that shard: the message id starts with the shard id.
      for (const m of [...bySandbox[shard], ...onProduction.filter((row) => unmapped.some((g) => g.guildId === row.guildId))]) {
        expect(m.msgId.startsWith(`${shard}:`)).toBe(true);
      }
    }
    expect(onProduction.length + bySandbox[0].length + bySandbox[1].length).toBe(total);
    const ids = [...onProduction, ...bySandbox[0], ...bySandbox[1]].map((m) => m.msgId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('both stop cleanly on SIGTERM', async () => {
    expect(await Promise.all(bots.map((b) => b.stop()))).toEqual([0, 0]);
  });
});

describe('SHARD_COUNT=auto', () => {
  it('one process runs the shard count GET /gateway/bot recommends', async () => {
    fake.setGatewayBot({ shards: 2, sessionStartLimit: { max_concurrency: 2 } });
    const before = fake.identifies.length;
    const bot = await startBotProcess(processEnv(fake, db.url, { SHARD_COUNT: 'auto' }), { name: 'auto' });
    bots.push(bot);
    await bot.waitReady(90_000);
    expect(await bot.waitForLog((l) => l.msg === 'gateway ready')).toMatchObject({ shards: [0, 1], shardCount: 2, guilds: 6 });
    expect(fake.identifies.slice(before).map((i) => i.shard).sort()).toEqual([
      [0, 2],
      [1, 2],
    ]);
    // Holding shard 0 it is the one to register (unchanged definitions: skipped).
    await bot.waitForLog((l) => l.component === 'register-commands');
    // main.ts handles SIGTERM once startApp resolved, which starts the sweeper: its first pass comes after that.
    await bot.waitForLog((l) => l.msg === 'sweep pass finished', 60_000);
    expect(await bot.stop()).toBe(0);
  });
});
