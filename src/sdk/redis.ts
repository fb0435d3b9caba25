import { Redis } from 'ioredis';
import { SandboxConnectError } from './errors.ts';
import type { ResolvedSettings } from './settings.ts';

export type MessageListener = (message: string, channel: string) => void;

/**
 * Pub/sub under the sandbox's prefix. ioredis's keyPrefix covers keys only, so channel names are
 * prefixed here: `publish('chat', m)` goes to `sandbox:<uuid>:chat`, which the ACL allows.
 */
export interface SandboxPubSub {
  /** The full channel name for a name within the sandbox. */
  channel(name: string): string;
  publish(name: string, message: string | Buffer): Promise<number>;
  /** Subscribes on a dedicated connection (made on first use). Returns an unsubscribe function. */
  subscribe(name: string, listener: MessageListener): Promise<() => Promise<void>>;
}

export interface SandboxRedis {
  client: Redis;
  pubsub: SandboxPubSub;
  close(): Promise<void>;
}

/**
 * An ioredis client logged in as the sandbox's ACL user, with keyPrefix `sandbox:<uuid>:`.
 * enableReadyCheck is off because the ACL refuses INFO. There is deliberately no SCAN helper:
 * SCAN would list other sandboxes' key names, so the ACL refuses it.
 */
export async function openRedis(s: ResolvedSettings, url: string): Promise<SandboxRedis> {
  const options = { keyPrefix: s.redisPrefix, enableReadyCheck: false, lazyConnect: true, maxRetriesPerRequest: 3 } as const;
  const client = new Redis(url, options);
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    client.disconnect();
    const msg = (err as Error).message ?? '';
    const denied = /WRONGPASS|NOAUTH|NOPERM/.test(msg);
    throw new SandboxConnectError(
      denied ? 'SDK_SANDBOX_NOT_LIVE' : 'SDK_CONFIG',
      denied
        ? `${s.label}: Redis refused its login (its ACL user is missing or its credentials were rotated: run \`sandbox env\` again)`
        : `${s.label}: cannot connect to Redis: ${msg}`,
      { cause: err },
    );
  }

  let subscriber: Redis | undefined;
  const listeners = new Map<string, Set<MessageListener>>();
  const channel = (name: string): string => {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('channel name must be a non-empty string');
    return `${s.redisPrefix}${name}`;
  };
  const pubsub: SandboxPubSub = {
    channel,
    publish: (name, message) => client.publish(channel(name), message),
    async subscribe(name, listener) {
      const full = channel(name);
      if (!subscriber) {
        subscriber = client.duplicate();
        subscriber.on('error', () => undefined);
        subscriber.on('message', (ch: string, message: string) => {
          for (const l of listeners.get(ch) ?? []) l(message, ch.slice(s.redisPrefix.length));
        });
      }
      let set = listeners.get(full);
      if (!set) {
        set = new Set();
        listeners.set(full, set);
        await subscriber.subscribe(full);
      }
      set.add(listener);
      return async () => {
        const current = listeners.get(full);
        if (!current?.delete(listener) || current.size > 0) return;
        listeners.delete(full);
        await subscriber?.unsubscribe(full);
      };
    },
  };
  return {
    client,
    pubsub,
    async close() {
      await Promise.all([client.quit().catch(() => client.disconnect()), subscriber?.quit().catch(() => subscriber?.disconnect())]);
    },
  };
}
