import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import { SimpleIdentifyThrottler, type IIdentifyThrottler } from '@discordjs/ws';
import type { Redis } from 'ioredis';
import type { Logger } from '../../logger.ts';

/** Discord allows one IDENTIFY per rate-limit bucket every 5 s. */
export const IDENTIFY_WINDOW_MS = 5000;

export interface RedisIdentifyThrottlerOptions {
  redis: Redis;
  /** Key prefix; each bucket is `<prefix>identify:<shard id % max concurrency>`. */
  prefix: string;
  /** `session_start_limit.max_concurrency` from GET /gateway/bot. */
  maxConcurrency: number;
  logger: Logger;
  /** One IDENTIFY per bucket per window (default 5 s; tests shorten it). */
  windowMs?: number;
}

/**
 * The identify throttle shared by every bot process through Redis: a shard in bucket `shard_id % max_concurrency`
 * may identify once it took the bucket's key (`SET NX PX window`); the key expiring opens the bucket again, so
 * processes need no coordination beyond Redis, and a process that dies holding it blocks nobody for longer than one
 * window. While Redis cannot answer, the throttle falls back to this process alone (@discordjs/ws's own throttler):
 * identifies are never blocked by a Redis outage.
 */
export class RedisIdentifyThrottler implements IIdentifyThrottler {
  private readonly windowMs: number;
  private readonly local: SimpleIdentifyThrottler;
  private readonly log: Logger;

  constructor(private readonly opts: RedisIdentifyThrottlerOptions) {
    this.windowMs = opts.windowMs ?? IDENTIFY_WINDOW_MS;
    this.local = new SimpleIdentifyThrottler(Math.max(1, opts.maxConcurrency));
    this.log = opts.logger.child({ component: 'identify-throttle' });
  }

  bucketKey(shardId: number): string {
    return `${this.opts.prefix}identify:${shardId % Math.max(1, this.opts.maxConcurrency)}`;
  }

  async waitForIdentify(shardId: number, signal: AbortSignal): Promise<void> {
    const key = this.bucketKey(shardId);
    const token = `${shardId}:${randomUUID()}`;
    for (;;) {
      signal.throwIfAborted();
      let wait: number;
      try {
        if ((await this.opts.redis.set(key, token, 'PX', this.windowMs, 'NX')) === 'OK') return;
        wait = await this.opts.redis.pttl(key);
      } catch (err) {
        this.log.warn({ err: { message: (err as Error).message }, shardId }, 'identify throttle: Redis unavailable, throttling in this process only');
        return this.local.waitForIdentify(shardId, signal);
      }
      // -2: the key expired between the two commands; -1 cannot happen (always set with PX) but must not spin.
      await sleep(wait > 0 ? Math.min(wait, this.windowMs) + Math.floor(Math.random() * 50) : 10, undefined, { signal });
    }
  }
}
