import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database } from '../src/db/database.ts';
import { silentLogger } from '../src/logger.ts';

export interface BenchDatabase extends Database {
  name: string;
  /** Closes every connection and drops the database. Idempotent. */
  drop(): Promise<void>;
}

async function onServer(adminUrl: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/**
 * A fresh database of its own on the server of `adminUrl`, migrated with the project's migrator
 * (openDatabase). `register` receives the drop function before migration starts, so a failure or
 * SIGINT at any later point still drops it.
 */
export async function createBenchDatabase(adminUrl: string, register: (drop: () => Promise<void>) => void, poolSize = 20): Promise<BenchDatabase> {
  const name = `sbx_bench_${randomBytes(6).toString('hex')}`;
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  await onServer(adminUrl, `CREATE DATABASE ${name}`);
  let db: Database | undefined;
  let dropped: Promise<void> | undefined;
  const drop = (): Promise<void> =>
    (dropped ??= (async () => {
      // Roles are cluster-wide: the sandbox roles made here (isolation on) go with the database.
      await db?.pool.query('SELECT drop_sandbox_role(id) FROM sandboxes').catch(() => undefined);
      // And the group role they connected through (sandbox_connect_<oid>).
      await db?.pool.query('SELECT drop_sandbox_connect_role()').catch(() => undefined);
      await db?.close();
      await onServer(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    })());
  register(drop);
  db = await openDatabase({ databaseUrl: url.toString(), dataDir: '/nonexistent', logger: silentLogger(), poolSize });
  return { ...db, name, drop };
}

/**
 * Counts statements sent through a pool: every client it hands out gets its `query` wrapped
 * once. Counts BEGIN/COMMIT too, so a transaction shows as its statements plus two.
 */
export class QueryCounter {
  private n = 0;
  private static readonly wrapped = Symbol('bench.wrapped');

  constructor(pool: pg.Pool) {
    pool.on('acquire', (client) => this.wrap(client));
  }

  private wrap(client: pg.PoolClient): void {
    const c = client as pg.PoolClient & { [QueryCounter.wrapped]?: true };
    if (c[QueryCounter.wrapped]) return;
    c[QueryCounter.wrapped] = true;
    const original = c.query.bind(c) as (...args: unknown[]) => unknown;
    (c as { query: unknown }).query = (...args: unknown[]) => {
      this.n++;
      return original(...args);
    };
  }

  /** Statements issued while `fn` ran (nothing else may use the pool meanwhile). */
  async count<R>(fn: () => Promise<R>): Promise<{ result: R; statements: number }> {
    const before = this.n;
    const result = await fn();
    return { result, statements: this.n - before };
  }
}
