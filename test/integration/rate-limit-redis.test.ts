// The rate limit is shared by bot processes through Redis: two limiter instances (as two bot
// processes would have) take from one bucket per user, atomically. Real Redis; keys under this
// file's own prefix, deleted afterwards.
import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { InProcessRateLimiter, RedisRateLimiter } from '../../src/bot/rate-limit.ts';
import { silentLogger } from '../../src/logger.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `sbx-test:ratelimit:${randomBytes(4).toString('hex')}:`;
const admin = new Redis(REDIS_URL);
const limiters: RedisRateLimiter[] = [];
const limiter = (perMinute: number, url = REDIS_URL): RedisRateLimiter => {
  const l = new RedisRateLimiter(url, { perMinute, keyPrefix: prefix }, silentLogger());
  limiters.push(l);
  return l;
};

afterAll(async () => {
  for (const l of limiters) await l.close();
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length) await admin.del(...keys);
  expect(await admin.keys(`${prefix}*`)).toEqual([]);
  admin.disconnect();
});

describe('rate limit shared through Redis', () => {
  it('two instances share one bucket per user, and say when the next token comes', async () => {
    const a = limiter(3);
    const b = limiter(3);
    const [seconds] = await admin.time();
    expect(await a.take('111')).toEqual({ allowed: true });
    expect(await b.take('111')).toEqual({ allowed: true });
    expect(await a.take('111')).toEqual({ allowed: true });
    const refused = await b.take('111');
    expect(refused.allowed).toBe(false);
    // 3 a minute: the next token is at most 20 s away, by the Redis server's clock.
    const retryAt = (refused as { retryAt: Date }).retryAt.getTime() / 1000;
    expect(retryAt).toBeGreaterThan(Number(seconds));
    expect(retryAt).toBeLessThanOrEqual(Number(seconds) + 21);
    expect((await a.take('111')).allowed).toBe(false);
    // Another user has a full bucket of their own.
    expect(await b.take('222')).toEqual({ allowed: true });
    // Buckets expire once they would be full again.
    const ttl = await admin.pttl(`${prefix}111`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(61_000);
  });

  it('is atomic: 40 concurrent takes through two instances let exactly 5 through', async () => {
    const a = limiter(5);
    const b = limiter(5);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).take('333')));
    expect(results.filter((r) => r.allowed)).toHaveLength(5);
  });

  it('keeps limiting in the process while Redis is unreachable', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
    const down = limiter(2, `redis://127.0.0.1:${port}`);
    expect((await down.take('444')).allowed).toBe(true);
    expect((await down.take('444')).allowed).toBe(true);
    expect((await down.take('444')).allowed).toBe(false);
  });
});

describe('rate limit in one process', () => {
  it('refills one token every 60/N seconds, up to N', async () => {
    let now = 1_000_000;
    const l = new InProcessRateLimiter(10, () => now);
    for (let i = 0; i < 10; i++) expect((await l.take('u')).allowed).toBe(true);
    expect(await l.take('u')).toEqual({ allowed: false, retryAt: new Date(1_006_000) });
    now = 1_005_999;
    expect((await l.take('u')).allowed).toBe(false);
    now = 1_006_000;
    expect((await l.take('u')).allowed).toBe(true);
    now += 10 * 60_000; // a long pause refills to 10, never more
    for (let i = 0; i < 10; i++) expect((await l.take('u')).allowed).toBe(true);
    expect((await l.take('u')).allowed).toBe(false);
  });
});
