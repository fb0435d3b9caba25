import { Redis } from 'ioredis';
import type { Logger } from './logger.ts';

export interface RedisProbe {
  ping(): Promise<string>;
  close(): Promise<void>;
}

/** A real PING against REDIS_URL; undefined (health "disabled") when Redis is not configured. */
export function createRedisProbe(url: string | undefined, logger: Logger): RedisProbe | undefined {
  if (!url) return undefined;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000, enableOfflineQueue: false, retryStrategy: () => null });
  client.on('error', (err) => logger.debug({ err: { message: err.message } }, 'redis error'));
  let connecting: Promise<void> | undefined;
  return {
    ping: async () => {
      if (client.status !== 'ready') {
        connecting ??= client.connect().finally(() => (connecting = undefined));
        await connecting;
      }
      return client.ping();
    },
    close: async () => {
      client.disconnect();
    },
  };
}
