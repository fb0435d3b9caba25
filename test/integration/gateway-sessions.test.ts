// Gateway sessions kept across restarts (issue 12): both backends (real Redis under this file's key prefix, and
// `bot_state` in this file's database), the debounced persistence of the last contiguous acked sequence, and the
// removal of a session Discord ended.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { deleteKeys } from '../support/redis.ts';
import { silentLogger } from '../../src/logger.ts';
import { AckedSequences } from '../../src/routing/acked-sequences.ts';
import { BotStore } from '../../src/sandbox/store/bot-store.ts';
import { BotStateSessionStore, RedisSessionStore, parseSession, type PersistedSession, type SessionStore } from '../../src/bot/gateway/session-store.ts';
import { ShardSessions } from '../../src/bot/gateway/shard-sessions.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `sbx-test:gateway:${randomBytes(4).toString('hex')}:`;
const redis = new Redis(REDIS_URL);
let db: TestDatabase;
let botStore: BotStore;

beforeAll(async () => {
  db = await createTestDatabase();
  botStore = new BotStore(db.prisma);
});

afterAll(async () => {
  expect(await deleteKeys(redis, prefix)).toEqual([]);
  redis.disconnect();
  await db.drop();
});

const session = (shardId: number, over: Partial<PersistedSession> = {}): PersistedSession => ({
  sessionId: `session-${shardId}`,
  resumeURL: 'ws://127.0.0.1:1/resume',
  shardId,
  shardCount: 2,
  sequence: 41,
  ready: { user: { id: '100000000000000001', username: 'bot', bot: true }, application: { id: '100000000000000002', flags: 0 } },
  ...over,
});

/** Counts the writes a store receives. */
function counting(store: SessionStore): SessionStore & { saves: PersistedSession[]; clears: number[] } {
  const saves: PersistedSession[] = [];
  const clears: number[] = [];
  return {
    saves,
    clears,
    load: (id) => store.load(id),
    save: async (s) => {
      saves.push(structuredClone(s));
      await store.save(s);
    },
    clear: async (id) => {
      clears.push(id);
      await store.clear(id);
    },
  };
}

async function until(probe: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const backends: Array<[string, () => SessionStore]> = [
  ['Redis', () => new RedisSessionStore(redis, prefix)],
  ['bot_state', () => new BotStateSessionStore(botStore)],
];

describe.each(backends)('the %s session store', (_name, make) => {
  it('keeps a session per shard and removes it', async () => {
    const store = make();
    expect(await store.load(0)).toBeNull();
    await store.save(session(0));
    await store.save(session(1, { sequence: 7 }));
    expect(await store.load(0)).toEqual(session(0));
    expect((await store.load(1))?.sequence).toBe(7);
    await store.clear(0);
    expect(await store.load(0)).toBeNull();
    expect(await store.load(1)).not.toBeNull();
    await store.clear(1);
  });

  it('is what a new process resumes from: same shard and shard count only, read once per shard', async () => {
    const store = make();
    await store.save(session(0, { sequence: 12 }));
    await store.save(session(1, { shardCount: 4 }));
    const sessions = new ShardSessions({ store, logger: silentLogger() });
    const first = await sessions.retrieve(0, 2);
    expect(first.fromStore).toBe(true);
    expect(first.info).toEqual({ sessionId: 'session-0', resumeURL: 'ws://127.0.0.1:1/resume', shardId: 0, shardCount: 2, sequence: 12 });
    expect(sessions.readyPayload(0)).toMatchObject({ session_id: 'session-0', shard: [0, 2], guilds: [], user: { id: '100000000000000001' } });
    // A reconnect in the same process uses memory, never the store again.
    expect((await sessions.retrieve(0, 2)).fromStore).toBe(false);
    // Made with another shard count: identify.
    expect(await sessions.retrieve(1, 2)).toEqual({ info: null, fromStore: false });
    await sessions.close();
    await store.clear(0);
    await store.clear(1);
  });
});

describe('a damaged stored session', () => {
  it('is ignored (the shard identifies), in Redis and in bot_state', async () => {
    await redis.set(`${prefix}session:9`, '{not json');
    expect(await new RedisSessionStore(redis, prefix).load(9)).toBeNull();
    await botStore.writeState('gateway:session:9', { sessionId: 'x', shardId: 9 });
    expect(await new BotStateSessionStore(botStore).load(9)).toBeNull();
    const { ready: _ready, ...withoutReady } = session(9);
    expect(parseSession(withoutReady)).toBeNull();
    expect(parseSession({ ...session(9), sequence: -1 })).toBeNull();
    expect(parseSession(session(9))).toEqual(session(9));
    await redis.del(`${prefix}session:9`);
    await botStore.deleteState('gateway:session:9');
  });
});

describe('persisting a session while it runs', () => {
  it('writes at most once per interval, never per event, with the sequence processed (routing off)', async () => {
    const store = counting(new BotStateSessionStore(botStore));
    const sessions = new ShardSessions({ store, logger: silentLogger(), persistIntervalMs: 200 });
    const info = { sessionId: 's-off', resumeURL: 'ws://x', shardId: 0, shardCount: 1, sequence: 1 };
    sessions.update(0, info);
    sessions.setReady(0, session(0).ready);
    for (let s = 2; s <= 500; s++) sessions.update(0, { ...info, sequence: s });
    await until(async () => (await store.load(0))?.sequence === 500, 'sequence 500 persisted');
    expect(store.saves.length).toBeLessThanOrEqual(3);
    const before = store.saves.length;
    await new Promise((r) => setTimeout(r, 600));
    expect(store.saves.length).toBe(before);
    await sessions.close();
    await store.clear(0);
  });

  it('persists the last contiguous acked sequence (routing on), whatever the order of the acks', async () => {
    const store = counting(new RedisSessionStore(redis, prefix));
    const acks = new AckedSequences();
    const sessions = new ShardSessions({ store, acks, logger: silentLogger(), persistIntervalMs: 50 });
    const info = { sessionId: 's-on', resumeURL: 'ws://x', shardId: 3, shardCount: 4, sequence: 0 };
    sessions.update(3, info);
    sessions.setReady(3, session(3).ready);
    const settle = new Map<number, (o: 'stored' | 'duplicate') => void>();
    for (let s = 1; s <= 6; s++) {
      sessions.update(3, { ...info, sequence: s });
      settle.set(s, acks.track(3, 's-on', s));
    }
    settle.get(1)!('stored');
    settle.get(2)!('stored');
    settle.get(4)!('stored');
    settle.get(5)!('stored');
    await until(async () => (await store.load(3))?.sequence === 2, 'sequence 2 persisted');
    // 4 and 5 are acked, 3 is not: nothing beyond 2 is written while 3 is in flight.
    await new Promise((r) => setTimeout(r, 300));
    expect(store.saves.every((s) => s.sequence <= 2)).toBe(true);
    settle.get(3)!('duplicate');
    await until(async () => (await store.load(3))?.sequence === 5, 'sequence 5 persisted');
    settle.get(6)!('stored');
    await until(async () => (await store.load(3))?.sequence === 6, 'sequence 6 persisted');
    await sessions.close();
    await store.clear(3);
  });

  it('keeps trying while the store fails, and persists once it answers again', async () => {
    const real = new BotStateSessionStore(botStore);
    let down = true;
    const store: SessionStore = {
      load: (id) => real.load(id),
      save: async (s) => {
        if (down) throw new Error('store is down');
        await real.save(s);
      },
      clear: (id) => real.clear(id),
    };
    const sessions = new ShardSessions({ store, logger: silentLogger(), persistIntervalMs: 50 });
    sessions.update(6, { sessionId: 's-down', resumeURL: 'ws://x', shardId: 6, shardCount: 8, sequence: 3 });
    sessions.setReady(6, session(6).ready);
    await new Promise((r) => setTimeout(r, 300));
    expect(await real.load(6)).toBeNull();
    down = false;
    await until(async () => (await real.load(6))?.sequence === 3, 'the session persisted after the store came back');
    await sessions.close();
    await real.clear(6);
  });

  it('removes the persisted session when Discord ends it or the client closes it (info null)', async () => {
    const store = counting(new RedisSessionStore(redis, prefix));
    const sessions = new ShardSessions({ store, logger: silentLogger(), persistIntervalMs: 50 });
    sessions.update(5, { sessionId: 's-end', resumeURL: 'ws://x', shardId: 5, shardCount: 8, sequence: 9 });
    sessions.setReady(5, session(5).ready);
    await until(async () => (await store.load(5)) !== null, 'the session persisted');
    sessions.update(5, null);
    await sessions.close();
    expect(await store.load(5)).toBeNull();
    expect(store.clears).toEqual([5]);
  });
});
