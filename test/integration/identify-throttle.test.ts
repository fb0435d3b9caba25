// The identify throttle shared by bot processes through Redis: one IDENTIFY per bucket (shard_id % max_concurrency)
// per window, across instances (as two processes would have); other buckets do not wait. Real Redis; keys under this
// file's own prefix, deleted afterwards. The window is shortened to 1.5 s (Discord's is 5 s).
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { deleteKeys } from '../support/redis.ts';
import { silentLogger } from '../../src/logger.ts';
import { RedisIdentifyThrottler } from '../../src/bot/gateway/identify-throttler.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `sbx-test:identify:${randomBytes(4).toString('hex')}:`;
const WINDOW_MS = 1500;
const clients: Redis[] = [];
const admin = new Redis(REDIS_URL);

/** A throttler on its own Redis connection, as in its own process. */
function processThrottler(maxConcurrency: number): RedisIdentifyThrottler {
  const redis = new Redis(REDIS_URL);
  clients.push(redis);
  return new RedisIdentifyThrottler({ redis, prefix, maxConcurrency, logger: silentLogger(), windowMs: WINDOW_MS });
}

afterAll(async () => {
  for (const c of clients) c.disconnect();
  expect(await deleteKeys(admin, prefix)).toEqual([]);
  admin.disconnect();
});

const timed = async (fn: () => Promise<void>): Promise<number> => {
  const started = performance.now();
  await fn();
  return performance.now() - started;
};

describe('identify throttle through Redis', () => {
  it('two shards of one bucket in two processes identify at least a window apart', async () => {
    const a = processThrottler(2);
    const b = processThrottler(2);
    // Shards 0 and 2 share bucket 0 when max_concurrency is 2.
    const first = performance.now();
    await a.waitForIdentify(0, new AbortController().signal);
    await b.waitForIdentify(2, new AbortController().signal);
    const gap = performance.now() - first;
    expect(gap).toBeGreaterThanOrEqual(WINDOW_MS - 20);
  });

  it('shards of different buckets do not wait for each other', async () => {
    const a = processThrottler(2);
    const b = processThrottler(2);
    await new Promise((r) => setTimeout(r, WINDOW_MS + 100)); // the previous test's bucket key has expired
    const elapsed = await timed(async () => {
      await Promise.all([a.waitForIdentify(4, new AbortController().signal), b.waitForIdentify(5, new AbortController().signal)]);
    });
    expect(elapsed).toBeLessThan(WINDOW_MS);
    expect(a.bucketKey(4)).toBe(`${prefix}identify:0`);
    expect(b.bucketKey(5)).toBe(`${prefix}identify:1`);
  });

  it('a waiting shard gives up when its connection closes (the signal aborts)', async () => {
    const a = processThrottler(1);
    await a.waitForIdentify(0, new AbortController().signal);
    const controller = new AbortController();
    const waiting = a.waitForIdentify(1, controller.signal);
    setTimeout(() => controller.abort(), 100);
    await expect(waiting).rejects.toThrow();
  });
});
