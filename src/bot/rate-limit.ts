import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';

/**
 * A per-user token bucket for mutating commands: `perMinute` tokens, refilled continuously.
 * Shared by every bot process through Redis when it is configured, kept in this process otherwise.
 */
export interface RateLimiter {
  /** Takes one token for `userId`; when none is left, says when the next one is there. */
  take(userId: string): Promise<RateDecision>;
  close(): Promise<void>;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAt: Date };

export interface RateLimitSettings {
  perMinute: number;
  /** Redis key prefix; each user's bucket is `<prefix><user id>`. */
  keyPrefix: string;
}

const MINUTE_MS = 60_000;

/** The bucket arithmetic, shared by both limiters (the Lua script below mirrors it). */
function takeToken(
  bucket: { tokens: number; at: number } | undefined,
  now: number,
  perMinute: number,
): { bucket: { tokens: number; at: number }; waitMs: number } {
  const perMs = perMinute / MINUTE_MS;
  let tokens = bucket ? Math.min(perMinute, bucket.tokens + Math.max(0, now - bucket.at) * perMs) : perMinute;
  const at = bucket ? Math.max(bucket.at, now) : now;
  if (tokens >= 1) {
    tokens -= 1;
    return { bucket: { tokens, at }, waitMs: 0 };
  }
  return { bucket: { tokens, at }, waitMs: Math.ceil((1 - tokens) / perMs) };
}

export class InProcessRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  async take(userId: string): Promise<RateDecision> {
    const now = this.now();
    const { bucket, waitMs } = takeToken(this.buckets.get(userId), now, this.perMinute);
    this.buckets.set(userId, bucket);
    if (this.buckets.size > 10_000) this.prune(now);
    return waitMs === 0 ? { allowed: true } : { allowed: false, retryAt: new Date(now + waitMs) };
  }

  /** Forgets buckets that have refilled completely: they behave exactly like a missing one. */
  private prune(now: number): void {
    const fullAfterMs = MINUTE_MS;
    for (const [user, b] of this.buckets) if (now - b.at >= fullAfterMs) this.buckets.delete(user);
  }

  async close(): Promise<void> {
    this.buckets.clear();
  }
}

/**
 * One atomic step on a Redis hash {tokens, at}, timed by the Redis server's clock so that bot
 * processes on different hosts agree. Returns {allowed 0|1, wait ms, server now ms}.
 */
const TAKE_SCRIPT = `
local cap = tonumber(ARGV[1])
local perMs = cap / 60000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(v[1])
local at = tonumber(v[2])
if tokens == nil or at == nil then
  tokens = cap
  at = now
end
if now > at then
  tokens = math.min(cap, tokens + (now - at) * perMs)
  at = now
end
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / perMs)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], 61000)
return {allowed, wait, now}
`;

type TakeCommand = (key: string, perMinute: number) => Promise<[number, number, number]>;

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Redis;
  private readonly log: Logger;
  /** Used while Redis cannot answer: a Redis outage never blocks or unblocks everyone. */
  private readonly fallback: InProcessRateLimiter;

  constructor(
    url: string,
    private readonly settings: RateLimitSettings,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'rate-limit' });
    this.fallback = new InProcessRateLimiter(settings.perMinute);
    this.redis = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2_000, commandTimeout: 1_000, enableReadyCheck: false });
    this.redis.on('error', (err) => this.log.debug({ err: { message: err.message } }, 'redis error'));
    this.redis.defineCommand('sandboxTakeToken', { numberOfKeys: 1, lua: TAKE_SCRIPT });
  }

  async take(userId: string): Promise<RateDecision> {
    try {
      const take = (this.redis as unknown as { sandboxTakeToken: TakeCommand }).sandboxTakeToken.bind(this.redis);
      const [allowed, waitMs, now] = await take(`${this.settings.keyPrefix}${userId}`, this.settings.perMinute);
      return allowed === 1 ? { allowed: true } : { allowed: false, retryAt: new Date(now + waitMs) };
    } catch (err) {
      this.log.warn({ err: { message: (err as Error).message } }, 'rate limit: Redis unavailable, limiting in this process');
      return this.fallback.take(userId);
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    await this.fallback.close();
  }
}

export function createRateLimiter(redisUrl: string | undefined, settings: RateLimitSettings, logger: Logger, clock?: () => number): RateLimiter {
  return redisUrl ? new RedisRateLimiter(redisUrl, settings, logger) : new InProcessRateLimiter(settings.perMinute, clock);
}

/** `<t:unix:R>`: Discord shows it as "in 42 seconds" in the reader's own locale. */
export function discordRelativeTime(at: Date): string {
  return `<t:${Math.ceil(at.getTime() / 1000)}:R>`;
}
