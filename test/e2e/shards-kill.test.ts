/**
 * Issue 12's "Kill -9 one process and restart it", with two bot processes (SHARD_COUNT=2, SHARD_IDS 0 and 1), routing
 * on and Redis on: the identify throttle spaces the two IDENTIFYs by its window across processes; the fake dispatches
 * to mapped and unmapped guilds of both shards without pause; shard 1's process is killed with SIGKILL and started
 * again: it RESUMEs (no new IDENTIFY), answers /sandbox in its guild, keeps its guild's mapping, and every event of
 * both shards is on its stream exactly once. Real NATS and Redis under this file's names, deleted after.
 */
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeDiscord, messageCreatePayload, snowflakeOnShard } from '../fake-discord/index.ts';
import { deleteStreams, jetstreamManager, natsConnect, NATS_URL, removeSandboxResources, sandboxIdsOf, storedEvents, testTag, waitFor } from '../routing/support/routing.ts';
import { processEnv, startBotProcess, type BotProcess } from '../support/bot-process.ts';
import { createTestDatabase, snowflake, type TestDatabase } from '../support/db.ts';
import { deleteKeys } from '../support/redis.ts';
import { addGuild, finalText, sandboxCommand } from './support/harness.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const WINDOW_MS = 1500;
const tag = testTag();
const production = `EVENTS_${tag}`;
const keyPrefix = `sbx-test:shards-kill:${randomBytes(4).toString('hex')}:`;
const streams: string[] = [production];
const redis = new Redis(REDIS_URL);
const bots: BotProcess[] = [];
let fake: FakeDiscord;
let db: TestDatabase;
let nc: NatsConnection;
let jsm: JetStreamManager;

const env = (shardIds: string): Record<string, string> =>
  processEnv(fake, db.url, {
    RATE_LIMIT_KEY_PREFIX: `${keyPrefix}rl:`,
    REDIS_URL,
    GATEWAY_KEY_PREFIX: keyPrefix,
    GATEWAY_IDENTIFY_WINDOW_MS: String(WINDOW_MS),
    NATS_URL,
    EVENTS_SUBJECT_PREFIX: `t${tag}.events`,
    EVENTS_STREAM: production,
    SANDBOX_EVENTS_MAX_BYTES: String(1024 * 1024),
    SHARD_COUNT: '2',
    SHARD_IDS: shardIds,
  });

beforeAll(async () => {
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
  fake = await FakeDiscord.start();
  db = await createTestDatabase();
});

afterAll(async () => {
  await Promise.all(bots.map((b) => b.kill()));
  await fake?.stop();
  await deleteStreams(jsm, streams);
  await nc?.close();
  if (db) await removeSandboxResources(await sandboxIdsOf(db.pool), { jsm, redis });
  await db?.drop();
  expect(await deleteKeys(redis, keyPrefix)).toEqual([]);
  redis.disconnect();
});

async function messages(stream: string, guildId: string): Promise<string[]> {
  return (await storedEvents(jsm, stream)).filter((e) => e.t === 'MESSAGE_CREATE' && e.guildId === guildId).map((e) => String(e.d.content));
}

describe('two processes, SHARD_COUNT=2: kill -9 one and restart it', () => {
  it('identifies a window apart, resumes the killed shard, and loses or repeats no event of either shard', async () => {
    const mapped = [0, 1].map((shard) => addGuild(fake, { id: snowflakeOnShard(shard, 2) }));
    const unmapped = [0, 1].map((shard) => addGuild(fake, { id: snowflakeOnShard(shard, 2) }));
    const [first0, first1] = await Promise.all([startBotProcess(env('0'), { name: 'shard-0' }), startBotProcess(env('1'), { name: 'shard-1' })]);
    bots.push(first0!, first1!);
    await Promise.all(bots.map((b) => b.waitReady(90_000)));
    // max_concurrency 1: one bucket, so the two processes' IDENTIFYs are a window apart (Redis-shared throttle).
    // Measured where they arrive: the first one's trip from its lock to the fake (up to ~100 ms on a loaded
    // machine) shortens the gap, so allow 300 ms; without the shared throttle they arrive within a few ms.
    const [a, b] = fake.identifies.map((i) => i.at).sort((x, y) => x - y);
    expect(b! - a!).toBeGreaterThanOrEqual(WINDOW_MS - 300);

    const sandboxStreams: string[] = [];
    for (const [shard, g] of mapped.entries()) {
      const reply = await finalText(fake.sendCommand(sandboxCommand({ guildId: g.guildId, userId: g.ownerId, subcommand: 'create', options: { name: `sk-${shard}-${tag}` } })), 30_000);
      expect(reply).toContain('Created sandbox');
      const row = await db.pool.query<{ id: string }>('SELECT sandbox_id::text AS id FROM sandbox_guild_mapping WHERE guild_id = $1', [g.guildId]);
      sandboxStreams.push(`SANDBOX_${row.rows[0]!.id.replaceAll('-', '')}`);
    }
    streams.push(...sandboxStreams);
    const identifies = fake.identifies.length;
    const shard1Session = fake.identifies.find((i) => i.shard[0] === 1)!.sessionId;

    const targets = [...mapped, ...unmapped].map((g) => g.guildId);
    const sent = new Map<string, string[]>(targets.map((id) => [id, []]));
    let i = 0;
    const timer = setInterval(() => {
      for (const guildId of targets) {
        const content = `${guildId}-${i}`;
        const channelId = fake.state.guild(guildId).channelIds[0]!;
        fake.dispatchEvent('MESSAGE_CREATE', messageCreatePayload({ id: snowflake(), channelId, guildId, authorId: snowflake(), content }));
        sent.get(guildId)!.push(content);
      }
      i++;
    }, 10);
    await waitFor(async () => (await messages(sandboxStreams[1]!, mapped[1]!.guildId)).length >= 30, 'shard 1 events flowing', 20_000, 50);
    expect(await first1!.kill('SIGKILL')).toBeNull();
    await new Promise((r) => setTimeout(r, 1000));
    const again1 = await startBotProcess(env('1'), { name: 'shard-1-again' });
    bots.push(again1);
    await again1.waitReady(90_000);
    await new Promise((r) => setTimeout(r, 1000));
    clearInterval(timer);

    expect(fake.identifies.length).toBe(identifies);
    expect(fake.resumeLog.map((r) => r.sessionId)).toContain(shard1Session);
    const reply = await finalText(fake.sendCommand(sandboxCommand({ guildId: mapped[1]!.guildId, userId: mapped[1]!.ownerId, subcommand: 'status', options: { sandbox: `sk-1-${tag}` } })), 30_000);
    expect(reply).toContain(`sk-1-${tag}`);
    expect(again1.logs.filter((l) => l.msg === 'command handled' && l.guildId === mapped[1]!.guildId)).toHaveLength(1);
    const stillMapped = await db.pool.query('SELECT 1 FROM sandbox_guild_mapping WHERE guild_id = $1', [mapped[1]!.guildId]);
    expect(stillMapped.rowCount).toBe(1);

    const streamOf = (guildId: string) => {
      const index = mapped.findIndex((g) => g.guildId === guildId);
      return index >= 0 ? sandboxStreams[index]! : production;
    };
    await waitFor(
      async () => {
        for (const guildId of targets) if ((await messages(streamOf(guildId), guildId)).length < sent.get(guildId)!.length) return false;
        return true;
      },
      'every event stored',
      30_000,
      100,
    );
    await new Promise((r) => setTimeout(r, 500));
    for (const guildId of targets) {
      expect((await messages(streamOf(guildId), guildId)).sort()).toEqual([...sent.get(guildId)!].sort());
    }
    console.log(`[shards-kill] ${[...sent.values()].reduce((n, s) => n + s.length, 0)} events over 2 shards; shard 1 replayed ${fake.resumeLog.at(-1)!.replayed}`);
  }, 240_000);
});
