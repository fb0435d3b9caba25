import type { Redis } from 'ioredis';
import type { Prisma } from '../../generated/prisma/client.ts';
import type { BotStore } from '../../sandbox/store/bot-store.ts';

/**
 * What a shard keeps across a process restart so that the next process RESUMEs instead of identifying:
 * the session, where to resume, and the last sequence whose dispatches were all handled (routing on: published and
 * acked). `ready` holds READY's `user` and `application`: after a resume no READY arrives, so the gateway strategy
 * hands discord.js a READY built from them (see resumable-strategy.ts).
 */
export interface PersistedSession {
  sessionId: string;
  resumeURL: string;
  shardId: number;
  shardCount: number;
  sequence: number;
  ready: { user: Record<string, unknown>; application: Record<string, unknown> };
}

/** Where shard sessions are kept: Redis when REDIS_URL is set, else the `bot_state` table. */
export interface SessionStore {
  load(shardId: number): Promise<PersistedSession | null>;
  save(session: PersistedSession): Promise<void>;
  clear(shardId: number): Promise<void>;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** A stored value that has every field (an older or damaged one is ignored: the shard identifies). */
export function parseSession(value: unknown): PersistedSession | null {
  if (!isObject(value)) return null;
  const { sessionId, resumeURL, shardId, shardCount, sequence, ready } = value;
  if (typeof sessionId !== 'string' || !sessionId || typeof resumeURL !== 'string' || !resumeURL) return null;
  if (!isCount(shardId) || !isCount(shardCount) || shardCount < 1 || !isCount(sequence)) return null;
  if (!isObject(ready) || !isObject(ready.user) || typeof ready.user.id !== 'string' || !isObject(ready.application)) return null;
  return { sessionId, resumeURL, shardId, shardCount, sequence, ready: { user: ready.user, application: ready.application } };
}

/** Sessions in Redis, one key per shard: `<prefix>session:<shard id>` (shared by every bot process). */
export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(shardId: number): string {
    return `${this.prefix}session:${shardId}`;
  }

  async load(shardId: number): Promise<PersistedSession | null> {
    const raw = await this.redis.get(this.key(shardId));
    if (raw === null) return null;
    try {
      return parseSession(JSON.parse(raw));
    } catch {
      return null;
    }
  }

  async save(session: PersistedSession): Promise<void> {
    await this.redis.set(this.key(session.shardId), JSON.stringify(session));
  }

  async clear(shardId: number): Promise<void> {
    await this.redis.del(this.key(shardId));
  }
}

/** Sessions in the control database's `bot_state`, key `gateway:session:<shard id>`. */
export class BotStateSessionStore implements SessionStore {
  constructor(private readonly store: Pick<BotStore, 'readState' | 'writeState' | 'deleteState'>) {}

  private key(shardId: number): string {
    return `gateway:session:${shardId}`;
  }

  async load(shardId: number): Promise<PersistedSession | null> {
    return parseSession(await this.store.readState(this.key(shardId)));
  }

  async save(session: PersistedSession): Promise<void> {
    await this.store.writeState(this.key(session.shardId), session as unknown as Prisma.InputJsonValue);
  }

  async clear(shardId: number): Promise<void> {
    await this.store.deleteState(this.key(shardId));
  }
}
