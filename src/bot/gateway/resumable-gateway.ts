import { SimpleIdentifyThrottler, type IIdentifyThrottler, type WebSocketManager } from '@discordjs/ws';
import { Redis } from 'ioredis';
import type { Logger } from '../../logger.ts';
import type { BotStore } from '../../sandbox/store/bot-store.ts';
import { RedisIdentifyThrottler } from './identify-throttler.ts';
import { ResumableShardingStrategy } from './resumable-strategy.ts';
import { BotStateSessionStore, RedisSessionStore, type SessionStore } from './session-store.ts';
import { ShardSessions, type AckedThrough } from './shard-sessions.ts';

export interface ResumableGatewayOptions {
  /** REDIS_URL: sessions and the identify throttle live in Redis (shared by every process); else `bot_state`. */
  redisUrl: string | undefined;
  /** GATEWAY_KEY_PREFIX: the Redis keys' prefix (`<prefix>session:<shard>`, `<prefix>identify:<bucket>`). */
  keyPrefix: string;
  botStore: Pick<BotStore, 'readState' | 'writeState' | 'deleteState'>;
  /** The routing's acked sequences (routing on); undefined persists the sequence discord.js processed. */
  acks: AckedThrough | undefined;
  logger: Logger;
  /** The Redis identify throttle's window (default 5 s, Discord's; tests shorten it) and how often sessions are written (default 250 ms). */
  identifyWindowMs?: number;
  persistIntervalMs?: number;
  /** Receives the dispatches discord.js never sees (see ResumableShardingStrategy); called only once logged in. */
  routedOnly: (packet: { t: string }, shardId: number) => void;
}

/** What app.ts needs: the discord.js `ws` options, which shards resumed from the store, and a close for shutdown. */
export interface ResumableGateway {
  ws: {
    buildStrategy(manager: WebSocketManager): ResumableShardingStrategy;
    buildIdentifyThrottler(manager: WebSocketManager): Promise<IIdentifyThrottler>;
  };
  /** Shards of this process that resumed a session persisted by an earlier process (their guild cache starts empty). */
  readonly resumedShards: ReadonlySet<number>;
  /** Before client.destroy(): the stop keeps the sessions resumable (GATEWAY_RESUME_AFTER_STOP). */
  keepSessionsOnStop(): void;
  /** After client.destroy() (and the routing's last publishes): waits for pending writes, closes the Redis connection. */
  close(): Promise<void>;
}

/**
 * Gateway sessions that survive a restart (issue 12, decisions "#10 scale-out"), through discord.js's public
 * `ws.buildStrategy` and `ws.buildIdentifyThrottler` options only: see resumable-strategy.ts.
 */
export function createResumableGateway(opts: ResumableGatewayOptions): ResumableGateway {
  const redis = opts.redisUrl
    ? new Redis(opts.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 2000, enableReadyCheck: false })
    : undefined;
  redis?.on('error', (err) => opts.logger.debug({ err: { message: err.message } }, 'redis error (gateway sessions)'));
  const store: SessionStore = redis ? new RedisSessionStore(redis, opts.keyPrefix) : new BotStateSessionStore(opts.botStore);
  const sessions = new ShardSessions({ store, acks: opts.acks, logger: opts.logger, persistIntervalMs: opts.persistIntervalMs });
  const resumed = new Set<number>();
  return {
    ws: {
      buildStrategy: (manager) => new ResumableShardingStrategy(manager, sessions, resumed, opts.logger, opts.routedOnly),
      buildIdentifyThrottler: async (manager) => {
        const maxConcurrency = (await manager.fetchGatewayInformation()).session_start_limit.max_concurrency;
        return redis
          ? new RedisIdentifyThrottler({ redis, prefix: opts.keyPrefix, maxConcurrency, logger: opts.logger, windowMs: opts.identifyWindowMs })
          : new SimpleIdentifyThrottler(maxConcurrency);
      },
    },
    resumedShards: resumed,
    keepSessionsOnStop: () => sessions.keepOnStop(),
    close: async () => {
      await sessions.close();
      redis?.disconnect();
    },
  };
}
