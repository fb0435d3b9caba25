import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from '../logger.ts';
import { ErrorCode, SandboxError } from '../sandbox/errors.ts';
import { openOwnerLock, type OwnerLock } from './owner-lock.ts';

/**
 * Embedded PostgreSQL (PGlite) for running without a database server.
 *
 * Only one process may open a PGlite data directory. Ownership is an exclusive lock on an open
 * descriptor of `owner.lock` (see owner-lock.ts): the kernel drops it when the owner dies, so a
 * crashed owner never blocks the next start, whatever PID either process has. The owner opens the
 * database, serves it on a local socket (pglite-socket) and writes the address with a fresh random
 * token to `server.json`. Every other process connects to that address, but only after the server
 * there answered with the same token: a stale `server.json` (dead port, or a port reused by another
 * server) is never trusted.
 */
export interface EmbeddedDatabase {
  url: string;
  /** True when this process opened the data directory and serves it. */
  readonly owner: boolean;
  /**
   * The address for a new connection. When the serving process has gone away (its lock is free)
   * or another process now serves the files, this starts a takeover or a re-check in the
   * background, so the connection after next reaches the live server.
   */
  currentUrl(): string;
  close(): Promise<void>;
}

interface ServerInfo {
  pid: number;
  host: string;
  port: number;
  /** Random per serving process; the served database returns it (see OWNER_SETTING). */
  token: string;
}

/** A session setting on the served PGlite instance; every socket connection shares that session. */
const OWNER_SETTING = 'sandbox_embedded.owner_token';
const RECHECK_MS = 250;

const pgliteDir = (dataDir: string): string => join(dataDir, 'pglite');
const lockPath = (dataDir: string): string => join(dataDir, 'owner.lock');
const infoPath = (dataDir: string): string => join(dataDir, 'server.json');

const urlFor = (info: ServerInfo): string => `postgresql://postgres@${info.host}:${info.port}/postgres?sslmode=disable`;

function readInfo(dataDir: string): ServerInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(infoPath(dataDir), 'utf8')) as ServerInfo;
    return typeof info.port === 'number' && typeof info.token === 'string' && info.token.length > 0 ? info : undefined;
  } catch {
    return undefined;
  }
}

/** True when the address is live and the database there is this data directory's current owner. */
async function answersAsOwner(info: ServerInfo, timeoutMs = 2_000): Promise<boolean> {
  const client = new pg.Client({ connectionString: urlFor(info), connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ token: string | null }>('SELECT current_setting($1, true) AS token', [OWNER_SETTING]);
    return rows[0]?.token === info.token;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Takes the lock and serves the files, or finds the verified address of the process that does. */
async function acquire(dataDir: string, lock: OwnerLock, logger: Logger, waitMs: number): Promise<{ served?: Served; info?: ServerInfo }> {
  const deadline = Date.now() + waitMs;
  let lastSeen: ServerInfo | undefined;
  for (;;) {
    let locked: boolean;
    try {
      locked = lock.tryLock();
    } catch (err) {
      throw new SandboxError(ErrorCode.Unavailable, `Cannot lock ${lockPath(dataDir)} (${(err as Error).message}). Put the data directory on a local disk or set DATABASE_URL.`, {}, { cause: err });
    }
    if (locked) {
      try {
        return { served: await serve(dataDir, logger) };
      } catch (err) {
        lock.unlock();
        throw err;
      }
    }
    const info = readInfo(dataDir);
    if (info && (await answersAsOwner(info))) return { info };
    lastSeen = info ?? lastSeen;
    if (Date.now() > deadline) {
      throw new SandboxError(
        ErrorCode.Unavailable,
        `The embedded database in ${dataDir} is locked by a running process that does not serve it${lastSeen ? ` (server.json last named pid ${lastSeen.pid})` : ''}. Stop that process and try again.`,
      );
    }
    await sleep(100);
  }
}

export async function openEmbedded(dataDir: string, logger: Logger, opts: { waitMs?: number } = {}): Promise<EmbeddedDatabase> {
  const waitMs = opts.waitMs ?? 30_000;
  mkdirSync(dataDir, { recursive: true });
  const lock = openOwnerLock(lockPath(dataDir));
  let first: Awaited<ReturnType<typeof acquire>>;
  try {
    first = await acquire(dataDir, lock, logger, waitMs);
  } catch (err) {
    lock.release();
    throw err;
  }
  let served = first.served;
  let info = served?.info ?? first.info!;
  let takeover: Promise<void> | undefined;
  let checkedAt = Date.now();
  let closed = false;
  if (!served) logger.debug({ pid: info.pid, port: info.port }, 'connecting to the embedded database served by another process');

  const ownerChanged = (): boolean => {
    try {
      // The lock is free: the owner is gone, and this process now holds the lock and must serve.
      if (lock.tryLock()) {
        logger.warn({ pid: info.pid }, 'the process serving the embedded database is gone; taking over');
        return true;
      }
    } catch (err) {
      logger.warn({ err: { message: (err as Error).message } }, 'could not check the embedded database lock');
      return false;
    }
    return readInfo(dataDir)?.token !== info.token;
  };

  return {
    url: urlFor(info),
    get owner() {
      return served !== undefined;
    },
    currentUrl: () => {
      if (!served && !takeover && !closed && Date.now() - checkedAt >= RECHECK_MS) {
        checkedAt = Date.now();
        if (ownerChanged()) {
          takeover = acquire(dataDir, lock, logger, waitMs)
            .then((r) => {
              served = r.served;
              info = r.served?.info ?? r.info!;
            })
            .catch((err: unknown) => logger.error({ err }, 'embedded database takeover failed'))
            .finally(() => (takeover = undefined));
        }
      }
      return urlFor(info);
    },
    close: async () => {
      closed = true;
      await takeover;
      await served?.close();
      served = undefined;
      // Never delete owner.lock: a waiter may hold it open, and a new file would give two owners.
      lock.release();
    },
  };
}

interface Served {
  info: ServerInfo;
  close(): Promise<void>;
}

async function serve(dataDir: string, logger: Logger): Promise<Served> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create(pgliteDir(dataDir));
  try {
    const token = randomBytes(16).toString('hex');
    await db.query('SELECT set_config($1, $2, false)', [OWNER_SETTING, token]);
    const server = new PGLiteSocketServer({ db: oneSequenceAtATime(db), host: '127.0.0.1', port: 0, maxConnections: 64 });
    await server.start();
    const [host, port] = server.getServerConn().split(':');
    const info: ServerInfo = { pid: process.pid, host: host ?? '127.0.0.1', port: Number(port), token };
    // Written whole or not at all, so a reader never sees half an address.
    const tmp = `${infoPath(dataDir)}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(info));
    renameSync(tmp, infoPath(dataDir));
    logger.info({ dataDir, port: info.port }, 'embedded database started');
    let closed = false;
    return {
      info,
      close: async () => {
        if (closed) return;
        closed = true;
        await server.stop();
        await db.close();
        rmSync(infoPath(dataDir), { force: true });
      },
    };
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}

type PGliteInstance = Awaited<ReturnType<(typeof import('@electric-sql/pglite'))['PGlite']['create']>>;

/** Parse, Bind, Describe, Execute, Close and Flush: the extended-protocol messages that a Sync ends. */
const EXTENDED_PROTOCOL = new Set([0x50, 0x42, 0x44, 0x45, 0x43, 0x48]);

/**
 * pglite-socket runs every connection's messages on one session, one message at a time, keeping to one connection
 * only while a transaction is open. Outside one, two connections' extended-protocol sequences interleave: the
 * second Parse replaces the unnamed statement the first is about to Bind ("bind message supplies 4 parameters,
 * but prepared statement requires 2"), or a result goes to the wrong connection. Its queue asks
 * `isInTransaction()` before choosing the next message, so this view of the database also answers true from a
 * connection's Parse until its Sync: that sequence then runs alone, as it would on its own session. A connection
 * that drops mid-sequence is cleared by the queue's ROLLBACK (an `exec`), which ends the sequence here too.
 */
function oneSequenceAtATime(db: PGliteInstance): PGliteInstance {
  let inSequence = false;
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'isInTransaction') return () => inSequence || target.isInTransaction();
      if (prop === 'execProtocolRawStream') {
        return (message: Uint8Array, options: Parameters<PGliteInstance['execProtocolRawStream']>[1]) => {
          inSequence = EXTENDED_PROTOCOL.has(message[0] ?? 0);
          return target.execProtocolRawStream(message, options);
        };
      }
      if (prop === 'exec') {
        return (...args: Parameters<PGliteInstance['exec']>) => {
          inSequence = false;
          return target.exec(...args);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
