import type pg from 'pg';
import type { PrismaClient } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import { ErrorCode, SandboxError, databaseConfigError, isConnectionError } from './errors.ts';

/** The control server's name: the database of DATABASE_URL, which also holds the control tables. */
export const DEFAULT_SERVER = 'default';

/** One PostgreSQL server sandbox schemas are placed on (see src/db/servers.ts for how one is opened). */
export interface ServerHandle {
  readonly name: string;
  /** Connection URL (may hold a password: never log it). `sandbox env` derives the sandbox's URL from it. */
  readonly url: string;
  readonly prisma: PrismaClient;
  readonly pool?: pg.Pool | undefined;
  /** Once per process before first use: our migrations (functions, template) on that server. Idempotent; retried after a failure. */
  prepare(): Promise<void>;
  /** One round trip; rejects when the server does not answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** After a connection failure a server counts as down this long before it is tried again (creates skip it meanwhile). */
const DOWN_FOR_MS = 5000;

/**
 * The servers sandboxes live on, `default` (the control database) first, then
 * SANDBOX_DATABASE_SERVERS in its order. Remote servers connect lazily. A server whose connection
 * fails is "down" for a few seconds: creates are placed elsewhere, and operations on its own
 * sandboxes fail with SANDBOX_011 naming it. Nothing else is touched.
 */
export class SandboxServers {
  private readonly handles = new Map<string, ServerHandle>();
  private readonly downUntil = new Map<string, number>();

  constructor(
    control: ServerHandle,
    extra: readonly ServerHandle[] = [],
    private readonly logger?: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.handles.set(DEFAULT_SERVER, control);
    for (const h of extra) {
      if (h.name === DEFAULT_SERVER || this.handles.has(h.name)) throw new Error(`duplicate database server ${h.name}`);
      this.handles.set(h.name, h);
    }
  }

  /** The control database alone (no SANDBOX_DATABASE_SERVERS): every schema on `default`. */
  static controlOnly(prisma: PrismaClient, url = '', pool?: pg.Pool): SandboxServers {
    const noop = async (): Promise<void> => undefined;
    return new SandboxServers({ name: DEFAULT_SERVER, url, prisma, pool, prepare: noop, ping: noop, close: noop });
  }

  /** Every configured server name, `default` first. */
  names(): string[] {
    return [...this.handles.keys()];
  }

  /** True when sandboxes may be placed on more than the control server. */
  get several(): boolean {
    return this.handles.size > 1;
  }

  /** The configured handle (not checked for being up); SANDBOX_011 for a name no longer configured. */
  handle(name: string): ServerHandle {
    const h = this.handles.get(name);
    if (!h) {
      throw new SandboxError(ErrorCode.Unavailable, `This sandbox lives on database server ${JSON.stringify(name)}, which is not configured (SANDBOX_DATABASE_SERVERS). Add it back to reach the sandbox.`, { server: name });
    }
    return h;
  }

  /** The server's Prisma client, prepared (migrated) and not known to be down; SANDBOX_011 naming it otherwise. */
  async use(name: string): Promise<PrismaClient> {
    const h = this.handle(name);
    if (name === DEFAULT_SERVER) return h.prisma;
    if (this.isDown(name)) throw unavailable(name);
    await this.guard(name, () => h.prepare());
    return h.prisma;
  }

  /** The servers that answer now, in the configured order (`default` always: it is the control database). Probed in parallel. */
  async available(): Promise<string[]> {
    const up = await Promise.all(
      this.names().map(async (name) => {
        if (name === DEFAULT_SERVER) return true;
        if (this.isDown(name)) return false;
        try {
          await this.guard(name, async () => {
            const h = this.handle(name);
            await h.prepare();
            await h.ping();
          });
          return true;
        } catch (err) {
          // Whatever failed (a connection, or its migration), it is left alone for a while, not retried by every create.
          this.downUntil.set(name, this.now() + DOWN_FOR_MS);
          this.logger?.warn({ server: name, code: (err as SandboxError).code, err: { message: (err as Error).message } }, 'database server unavailable; new sandboxes go elsewhere');
          return false;
        }
      }),
    );
    return this.names().filter((_, i) => up[i]);
  }

  /** Runs fn against a server: a connection failure marks it down and becomes SANDBOX_011 naming it. */
  async guard<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      // A connection failure may arrive wrapped (a SandboxError whose cause it is): errorCodes walks causes.
      if (name === DEFAULT_SERVER || (err instanceof SandboxError && err.code === ErrorCode.Unavailable) || !isConnectionError(err) || databaseConfigError(err)) throw err;
      this.downUntil.set(name, this.now() + DOWN_FOR_MS);
      throw unavailable(name, err);
    }
  }

  private isDown(name: string): boolean {
    const until = this.downUntil.get(name);
    if (until === undefined) return false;
    if (this.now() < until) return true;
    this.downUntil.delete(name);
    return false;
  }

  /** Closes the remote servers' pools (the control database is closed by its owner). */
  async close(): Promise<void> {
    await Promise.all([...this.handles.values()].filter((h) => h.name !== DEFAULT_SERVER).map((h) => h.close()));
  }
}

export const unavailable = (server: string, cause?: unknown): SandboxError =>
  new SandboxError(
    ErrorCode.Unavailable,
    `Database server ${server} is unavailable right now, so sandboxes placed on it cannot be reached. Please try again later.`,
    { server },
    cause === undefined ? undefined : { cause },
  );
