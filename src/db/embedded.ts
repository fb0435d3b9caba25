import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger.ts';
import { ErrorCode, SandboxError } from '../sandbox/errors.ts';

/**
 * Embedded PostgreSQL (PGlite) for running without a database server.
 *
 * Only one process may open a PGlite data directory. The first process takes `owner.lock`,
 * opens the database and serves it on a local socket (pglite-socket), writing the address to
 * `server.json`. Every other process connects to that address instead of opening the files.
 */
export interface EmbeddedDatabase {
  url: string;
  /** True when this process opened the data directory and serves it. */
  readonly owner: boolean;
  /**
   * The address for a new connection. When the serving process has gone away, this starts a
   * takeover in the background (the first process to take the lock serves the files), so the
   * connection after next reaches the new server.
   */
  currentUrl(): string;
  close(): Promise<void>;
}

interface ServerInfo {
  pid: number;
  host: string;
  port: number;
}

const pgliteDir = (dataDir: string): string => join(dataDir, 'pglite');
const lockPath = (dataDir: string): string => join(dataDir, 'owner.lock');
const infoPath = (dataDir: string): string => join(dataDir, 'server.json');

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const urlFor = (info: ServerInfo): string => `postgresql://postgres@${info.host}:${info.port}/postgres?sslmode=disable`;

function tryTakeLock(dataDir: string): boolean {
  try {
    const fd = openSync(lockPath(dataDir), 'wx');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}

function readLockPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(lockPath(dataDir), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function readInfo(dataDir: string): ServerInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(infoPath(dataDir), 'utf8')) as ServerInfo;
    return typeof info.port === 'number' && typeof info.pid === 'number' ? info : undefined;
  } catch {
    return undefined;
  }
}

/** Waits for the lock or for the address of the process that holds it. */
async function acquire(dataDir: string, logger: Logger, waitMs: number): Promise<{ served?: Served; info?: ServerInfo }> {
  mkdirSync(dataDir, { recursive: true });
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (tryTakeLock(dataDir)) return { served: await serve(dataDir, logger) };
    const pid = readLockPid(dataDir);
    if (pid !== undefined && !isAlive(pid)) {
      // The previous owner died without cleaning up. Remove its lock only if it is still that one.
      if (readLockPid(dataDir) === pid) {
        logger.warn({ pid, dataDir }, 'removing stale embedded-database lock');
        rmSync(lockPath(dataDir), { force: true });
        rmSync(infoPath(dataDir), { force: true });
      }
      continue;
    }
    const info = readInfo(dataDir);
    if (info && info.pid === pid) return { info };
    if (Date.now() > deadline) {
      throw new SandboxError(
        ErrorCode.Unavailable,
        `The embedded database in ${dataDir} is locked by process ${pid ?? '?'} but not being served. Stop that process or remove ${lockPath(dataDir)}.`,
      );
    }
    await sleep(100);
  }
}

export async function openEmbedded(dataDir: string, logger: Logger, opts: { waitMs?: number } = {}): Promise<EmbeddedDatabase> {
  const waitMs = opts.waitMs ?? 30_000;
  const first = await acquire(dataDir, logger, waitMs);
  let served = first.served;
  let info = served?.info ?? first.info!;
  let takeover: Promise<void> | undefined;
  if (!served) logger.debug({ pid: info.pid, port: info.port }, 'connecting to the embedded database served by another process');

  const handle: EmbeddedDatabase = {
    url: urlFor(info),
    get owner() {
      return served !== undefined;
    },
    currentUrl: () => {
      if (!served && !isAlive(info.pid) && !takeover) {
        logger.warn({ pid: info.pid }, 'the process serving the embedded database is gone; taking over');
        takeover = acquire(dataDir, logger, waitMs)
          .then((r) => {
            served = r.served;
            info = r.served?.info ?? r.info!;
          })
          .catch((err: unknown) => logger.error({ err }, 'embedded database takeover failed'))
          .finally(() => (takeover = undefined));
      }
      return urlFor(info);
    },
    close: async () => {
      await takeover;
      await served?.close();
      served = undefined;
    },
  };
  return handle;
}

interface Served {
  info: ServerInfo;
  close(): Promise<void>;
}

async function serve(dataDir: string, logger: Logger): Promise<Served> {
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
    const db = await PGlite.create(pgliteDir(dataDir));
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 64 });
    await server.start();
    const [host, port] = server.getServerConn().split(':');
    const info: ServerInfo = { pid: process.pid, host: host ?? '127.0.0.1', port: Number(port) };
    writeFileSync(infoPath(dataDir), JSON.stringify(info));
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
        rmSync(lockPath(dataDir), { force: true });
      },
    };
  } catch (err) {
    rmSync(lockPath(dataDir), { force: true });
    throw err;
  }
}
