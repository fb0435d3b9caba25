/**
 * A private PostgreSQL cluster for tests and the bench that need a second database server
 * (sandbox placement): `initdb --auth=trust` run as the `postgres` user in a temporary directory,
 * started with `pg_ctl` on a free port (TCP on 127.0.0.1 and a socket in the same directory),
 * stopped and removed by `destroy()`. Never touches the shared server. Works as root (CI) through
 * `runuser -u postgres`, and as the postgres user itself.
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/** Debian's layout; PG_BIN_DIR overrides it. */
const BIN = process.env.PG_BIN_DIR ?? '/usr/lib/postgresql/15/bin';

export interface SecondCluster {
  port: number;
  /** A superuser URL of the cluster's `postgres` database (trust auth on 127.0.0.1). */
  adminUrl: string;
  /** A URL for another database on this cluster. */
  urlFor(database: string): string;
  /** Creates a database there and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** pg_ctl stop -m fast: the server goes away, connections are cut, new ones refused. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** Stops it (if running) and removes its directory. */
  destroy(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL binary as the postgres user (through runuser when we are root). */
async function asPostgres(binary: string, args: string[]): Promise<void> {
  const isRoot = process.getuid?.() === 0;
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', join(BIN, binary), ...args]] : [join(BIN, binary), args];
  await run(cmd, argv, { timeout: 120_000 });
}

/**
 * `durable: true` (the bench) keeps PostgreSQL's default fsync, like the shared server, so the two
 * are compared fairly; tests turn it off for speed.
 */
export async function startSecondCluster(opts: { durable?: boolean } = {}): Promise<SecondCluster> {
  const root = mkdtempSync(join(tmpdir(), 'sbx-cluster-'));
  // The postgres user must own the data directory and be able to reach it.
  chmodSync(root, 0o755);
  const dataDir = join(root, 'data');
  const isRoot = process.getuid?.() === 0;
  const pgUid = isRoot ? Number((await run('id', ['-u', 'postgres'])).stdout.trim()) : undefined;
  const pgGid = isRoot ? Number((await run('id', ['-g', 'postgres'])).stdout.trim()) : undefined;
  if (pgUid !== undefined && pgGid !== undefined) chownSync(root, pgUid, pgGid);
  const port = await freePort();
  const base = `postgresql://postgres@127.0.0.1:${port}`;
  let running = false;
  await asPostgres('initdb', ['-D', dataDir, '--auth=trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const start = async (): Promise<void> => {
    await asPostgres('pg_ctl', ['-D', dataDir, '-l', join(root, 'log'), '-w', '-t', '60', '-o', `-p ${port} -k ${root} -c listen_addresses=127.0.0.1${opts.durable ? '' : ' -c fsync=off'} -c max_connections=40`, 'start']);
    running = true;
  };
  const stop = async (): Promise<void> => {
    if (!running) return;
    await asPostgres('pg_ctl', ['-D', dataDir, '-w', '-t', '60', '-m', 'fast', 'stop']);
    running = false;
  };
  try {
    await start();
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  const urlFor = (database: string): string => `${base}/${database}`;
  return {
    port,
    adminUrl: urlFor('postgres'),
    urlFor,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`bad database name ${name}`);
      const c = new pg.Client({ connectionString: urlFor('postgres') });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return urlFor(name);
    },
    stop,
    start,
    async destroy() {
      try {
        await stop();
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}
