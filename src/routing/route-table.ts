import pg from 'pg';
import type { Logger } from '../logger.ts';

/** Hooks for metrics; the table depends on no metrics library. */
export interface RouteTableObserver {
  /** After every change of the map: its size and version. */
  applied?(entries: number, version: number): void;
  /** Seconds from a change's commit (its change-log timestamp) to its being applied here. */
  invalidation?(seconds: number): void;
  /** A whole-table reload, with why: 'start' | 'gap' | 'reconnect' | 'periodic'. */
  reloaded?(reason: string): void;
}

export interface RouteTableOptions {
  /** Queries (load, change log, version). */
  pool: pg.Pool;
  /** Opens the dedicated LISTEN connection (default: a new pg.Client from `connectionString`). */
  connectionString?: string;
  logger: Logger;
  /** Poll the version every `pollIntervalMs` instead of LISTEN (the embedded database: NOTIFY never reaches another connection). */
  poll?: boolean;
  pollIntervalMs?: number;
  /** The periodic whole-table check (default 30 s). */
  reloadIntervalMs?: number;
  observer?: RouteTableObserver;
  /** Injectable clock (ms), for invalidation seconds. */
  now?: () => number;
}

export const ROUTE_CHANNEL = 'sandbox_routes';

interface ChangeRow {
  version: string;
  guild_id: string;
  sandbox_id: string | null;
  at_ms: string;
}

/**
 * The whole guild → sandbox map in memory, versioned. A lookup is a Map get. PostgreSQL is the truth: a trigger on
 * sandbox_guild_mapping bumps the route version, logs the change and NOTIFYs in the changing transaction. This table
 * applies notices by reading the change log past its version; a gap in the log (pruned), a reconnect of the listening
 * connection, or the periodic check reloads the whole table. Every update runs on one serial chain and is applied
 * only when it carries a newer version, so a reload never overwrites a newer version with an older one.
 */
export class RouteTable {
  private map = new Map<string, string>();
  private ver = 0;
  private chain: Promise<void> = Promise.resolve();
  private queuedCatchUp: Promise<void> | undefined;
  private listener: pg.Client | undefined;
  private timers: NodeJS.Timeout[] = [];
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelay = 100;
  private stopped = false;
  private started = false;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly opts: RouteTableOptions) {
    this.log = opts.logger.child({ component: 'route-table' });
    this.now = opts.now ?? Date.now;
  }

  /** The sandbox a guild maps to, or undefined. */
  lookup(guildId: string): string | undefined {
    return this.map.get(guildId);
  }

  get version(): number {
    return this.ver;
  }

  get size(): number {
    return this.map.size;
  }

  /** Loads the table and starts the change feed. Resolves once the table is loaded and the feed listening. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.stopped = false;
    if (this.opts.poll) {
      await this.reload('start');
      const t = setInterval(() => void this.catchUp().catch((err) => this.warn(err, 'route poll failed')), this.opts.pollIntervalMs ?? 1000);
      t.unref();
      this.timers.push(t);
    } else {
      // LISTEN first, then load: a change committed in between is both in the load and announced (ignored as old).
      await this.connectListener();
      await this.reload('start');
    }
    const periodic = setInterval(() => void this.reload('periodic').catch((err) => this.warn(err, 'periodic route reload failed')), this.opts.reloadIntervalMs ?? 30_000);
    periodic.unref();
    this.timers.push(periodic);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.started = false;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    clearTimeout(this.reconnectTimer);
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => undefined);
    await this.chain.catch(() => undefined);
  }

  /** Applies every committed change newer than this table's version now (a process's own change, or a notice). */
  catchUp(): Promise<void> {
    // A burst of notices costs one read: a catch-up queued but not yet started covers every later request too.
    if (this.queuedCatchUp) return this.queuedCatchUp;
    const p = this.serial(() => {
      this.queuedCatchUp = undefined;
      return this.applyChanges();
    });
    this.queuedCatchUp = p;
    return p;
  }

  /** Reloads the whole table (applied only when not older than what is held). */
  reload(reason: string): Promise<void> {
    return this.serial(() => this.loadAll(reason));
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async loadAll(reason: string): Promise<void> {
    // One statement, one snapshot: the version and the mappings agree.
    const { rows } = await this.opts.pool.query<{ version: string; guild_id: string | null; sandbox_id: string | null }>(
      `SELECT v.version::text AS version, m.guild_id, m.sandbox_id::text AS sandbox_id
         FROM sandbox_route_version v LEFT JOIN sandbox_guild_mapping m ON true`,
    );
    const version = rows.length ? Number(rows[0]!.version) : 0;
    if (version < this.ver) {
      this.log.debug({ loaded: version, held: this.ver, reason }, 'route reload older than the table; ignored');
      return;
    }
    const map = new Map<string, string>();
    for (const r of rows) if (r.guild_id && r.sandbox_id) map.set(r.guild_id, r.sandbox_id);
    this.map = map;
    this.ver = version;
    this.opts.observer?.reloaded?.(reason);
    this.opts.observer?.applied?.(map.size, version);
    if (reason !== 'periodic') this.log.debug({ reason, version, entries: map.size }, 'route table loaded');
  }

  private async applyChanges(): Promise<void> {
    const from = this.ver;
    const { rows } = await this.opts.pool.query<ChangeRow>(
      `SELECT version::text AS version, guild_id, sandbox_id::text AS sandbox_id,
              (extract(epoch FROM changed_at) * 1000)::text AS at_ms
         FROM sandbox_route_change WHERE version > $1 ORDER BY version`,
      [from],
    );
    if (!rows.length) {
      // The log may have been pruned past a version we never saw: compare with the live version.
      const { rows: v } = await this.opts.pool.query<{ version: string }>('SELECT version::text AS version FROM sandbox_route_version');
      if (v.length && Number(v[0]!.version) > from) await this.loadAll('gap');
      return;
    }
    if (Number(rows[0]!.version) !== from + 1) {
      await this.loadAll('gap');
      return;
    }
    const now = this.now();
    let expected = from + 1;
    for (const r of rows) {
      const v = Number(r.version);
      if (v !== expected) {
        await this.loadAll('gap');
        return;
      }
      if (r.sandbox_id) this.map.set(r.guild_id, r.sandbox_id);
      else this.map.delete(r.guild_id);
      this.ver = v;
      expected++;
      this.opts.observer?.invalidation?.(Math.max(0, (now - Number(r.at_ms)) / 1000));
    }
    this.opts.observer?.applied?.(this.map.size, this.ver);
  }

  private async connectListener(): Promise<void> {
    const client = new pg.Client({ connectionString: this.opts.connectionString ?? connectionStringOf(this.opts.pool), application_name: 'sandbox-route-feed' });
    client.on('error', (err) => {
      this.warn(err, 'route feed connection lost');
      this.onListenerLost(client);
    });
    client.on('end', () => this.onListenerLost(client));
    client.on('notification', (n) => {
      if (n.channel !== ROUTE_CHANNEL) return;
      let v = NaN;
      try {
        v = Number((JSON.parse(n.payload ?? '{}') as { v?: unknown }).v);
      } catch {
        // A malformed notice still means "something changed".
      }
      if (Number.isFinite(v) && v <= this.ver) return;
      void this.catchUp().catch((err) => this.warn(err, 'applying a route notice failed'));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${ROUTE_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    this.listener = client;
    this.reconnectDelay = 100;
  }

  private onListenerLost(client: pg.Client): void {
    if (this.listener !== client || this.stopped) return;
    this.listener = undefined;
    void client.end().catch(() => undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, 5000);
    this.reconnectTimer = setTimeout(() => {
      this.connectListener()
        .then(() => this.reload('reconnect'))
        .then(() => this.log.info({ version: this.ver }, 'route feed reconnected'))
        .catch((err) => {
          this.warn(err, 'route feed reconnect failed');
          if (this.listener) {
            // Connected but the reload failed: the periodic check or the next notice will repair it.
            return;
          }
          this.scheduleReconnect();
        });
    }, delay);
    this.reconnectTimer.unref();
  }

  private warn(err: unknown, msg: string): void {
    if (this.stopped) return;
    this.log.warn({ err: { message: (err as Error)?.message, code: (err as { code?: string })?.code } }, msg);
  }
}

function connectionStringOf(pool: pg.Pool): string {
  const cs = (pool as unknown as { options?: { connectionString?: string } }).options?.connectionString;
  if (!cs) throw new Error('RouteTable needs connectionString when the pool has none');
  return cs;
}
