import type { SessionInfo } from '@discordjs/ws';
import type { Logger } from '../../logger.ts';
import type { PersistedSession, SessionStore } from './session-store.ts';

/** Where the routing tells which sequences are published and acked (src/routing/acked-sequences.ts). */
export interface AckedThrough {
  ackedThrough(shardId: number, sessionId: string): number | undefined;
}

export interface ShardSessionsOptions {
  store: SessionStore;
  /** Routing on: persist the last contiguous acked sequence. Off: the sequence discord.js processed. */
  acks?: AckedThrough | undefined;
  logger: Logger;
  /** How often changed sessions are written (default 250 ms): never once per event. */
  persistIntervalMs?: number;
}

type ReadyEssentials = PersistedSession['ready'];

/**
 * The gateway sessions of this process's shards: in memory for @discordjs/ws (which reads and updates them on every
 * dispatch), and persisted in the SessionStore every `persistIntervalMs` when they changed, so that the next process
 * can RESUME. The persisted sequence is the last one whose dispatches are all safe (see AckedThrough), so a RESUME
 * replays everything the previous process might have lost. A session Discord invalidated, or one closed on purpose
 * (client.destroy() closes with 1000, which ends the session), is removed from the store, unless the stop keeps the
 * sessions (`keepOnStop`).
 */
export class ShardSessions {
  private readonly memory = new Map<number, SessionInfo>();
  private readonly ready = new Map<number, ReadyEssentials>();
  /** What was last written (or read) for each shard, and its JSON to compare with. */
  private readonly written = new Map<number, { session: PersistedSession; json: string }>();
  /** Shards whose persisted session was looked up: only on their first connect in this process. */
  private readonly lookedUp = new Set<number>();
  private readonly log: Logger;
  private writes: Promise<void> = Promise.resolve();
  private pendingWrites = 0;
  private keepOnClose = false;
  /** While writes fail (store down), only the first failure is a warning. */
  private failing = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: ShardSessionsOptions) {
    this.log = opts.logger.child({ component: 'gateway-sessions' });
    this.timer = setInterval(() => this.persist(), opts.persistIntervalMs ?? 250);
    this.timer.unref();
  }

  /**
   * The session @discordjs/ws resumes with. On this process's first connect of a shard, the persisted one when it was
   * made for this shard id and shard count (`fromStore` says so: the shard will RESUME without a READY).
   */
  async retrieve(shardId: number, shardCount: number): Promise<{ info: SessionInfo | null; fromStore: boolean }> {
    const inMemory = this.memory.get(shardId);
    if (inMemory || this.lookedUp.has(shardId)) return { info: inMemory ?? null, fromStore: false };
    this.lookedUp.add(shardId);
    const saved = await this.opts.store.load(shardId).catch((err: unknown) => {
      this.log.warn({ err: { message: (err as Error).message }, shardId }, 'could not read the persisted gateway session; identifying');
      return null;
    });
    if (!saved || saved.shardId !== shardId || saved.shardCount !== shardCount || this.memory.has(shardId)) {
      return { info: this.memory.get(shardId) ?? null, fromStore: false };
    }
    const { ready, ...info } = saved;
    this.memory.set(shardId, info);
    this.ready.set(shardId, ready);
    this.written.set(shardId, { session: saved, json: JSON.stringify(saved) });
    this.log.info({ shardId, sequence: info.sequence }, 'resuming the persisted gateway session');
    return { info, fromStore: true };
  }

  /**
   * A stop that keeps the sessions resumable (GATEWAY_RESUME_AFTER_STOP): the strategy closes the connections with a
   * code that does not end them, and their last state is persisted by `close()` instead of being removed.
   */
  keepOnStop(): void {
    this.keepOnClose = true;
  }

  get keepingOnStop(): boolean {
    return this.keepOnClose;
  }

  /** @discordjs/ws's update: kept in memory; null (session invalidated or closed) also removes the persisted one. */
  update(shardId: number, info: SessionInfo | null): void {
    if (this.keepOnClose) {
      if (info) this.memory.set(shardId, info);
      return;
    }
    if (info) {
      if (this.memory.get(shardId)?.sessionId !== info.sessionId) this.ready.delete(shardId);
      this.memory.set(shardId, info);
      return;
    }
    this.memory.delete(shardId);
    this.ready.delete(shardId);
    this.written.delete(shardId);
    this.enqueue(() => this.opts.store.clear(shardId), shardId, 'removing the persisted gateway session failed');
  }

  /** READY's `user` and `application`, kept with the session for the READY handed to discord.js after a resume. */
  setReady(shardId: number, data: { user: unknown; application: unknown }): void {
    this.ready.set(shardId, { user: data.user as ReadyEssentials['user'], application: data.application as ReadyEssentials['application'] });
  }

  /** The READY payload discord.js gets for a shard that resumed a persisted session (no READY comes from Discord). */
  readyPayload(shardId: number): Record<string, unknown> | null {
    const info = this.memory.get(shardId);
    const ready = this.ready.get(shardId);
    if (!info || !ready) return null;
    return {
      v: 10,
      user: ready.user,
      application: ready.application,
      session_id: info.sessionId,
      resume_gateway_url: info.resumeURL,
      shard: [shardId, info.shardCount],
      // The guilds are not known after a resume: discord.js starts with an empty guild cache (see README).
      guilds: [],
    };
  }

  /** Writes every session whose persisted form changed (every `persistIntervalMs`, and from `close`). */
  persist(): void {
    if (this.pendingWrites > 0) return;
    for (const [shardId, info] of this.memory) {
      const record = this.record(shardId, info);
      if (!record) continue;
      const json = JSON.stringify(record);
      if (this.written.get(shardId)?.json === json) continue;
      this.written.set(shardId, { session: record, json });
      this.enqueue(() => this.opts.store.save(record), shardId, 'persisting the gateway session failed');
    }
  }

  /** Persists what changed (after a keeping stop: the final acked sequences) and waits for every write; stops the timer. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.writes;
    this.persist();
    await this.writes;
  }

  private record(shardId: number, info: SessionInfo): PersistedSession | null {
    const ready = this.ready.get(shardId);
    if (!ready) return null;
    let sequence = info.sequence;
    if (this.opts.acks) {
      const acked = this.opts.acks.ackedThrough(shardId, info.sessionId);
      // Nothing of this session received yet: keep what was persisted for it, else wait for the first dispatch.
      const kept = this.written.get(shardId)?.session;
      if (acked === undefined && kept?.sessionId !== info.sessionId) return null;
      sequence = Math.min(acked ?? kept!.sequence, info.sequence);
    }
    return { sessionId: info.sessionId, resumeURL: info.resumeURL, shardId, shardCount: info.shardCount, sequence, ready };
  }

  /** Writes run one at a time, in order (a removal is never overtaken by an earlier save). */
  private enqueue(write: () => Promise<void>, shardId: number, failure: string): void {
    this.pendingWrites++;
    this.writes = this.writes
      .then(write)
      .then(() => {
        if (!this.failing) return;
        this.failing = false;
        this.log.info({ shardId }, 'gateway sessions are persisted again');
      })
      .catch((err: unknown) => {
        // A failed save is retried at the next tick; a failed removal leaves a session whose RESUME Discord refuses
        // (the shard then identifies).
        this.written.delete(shardId);
        this.log[this.failing ? 'debug' : 'warn']({ err: { message: (err as Error).message }, shardId }, failure);
        this.failing = true;
      })
      .finally(() => {
        this.pendingWrites--;
      });
  }
}
