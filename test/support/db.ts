import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { silentLogger, type Logger } from '../../src/logger.ts';
import { SandboxManager, type ManagerDeps } from '../../src/sandbox/manager.ts';

/** The server the tests use; each test file gets its own fresh database on it. */
export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export const urlFor = (database: string): string => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
};

export interface TestDatabase extends Database {
  name: string;
  /** Drops the database (after closing every connection). */
  drop(): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Creates an empty database with a unique name. Returns its name and URL. */
export async function createEmptyDatabase(prefix = 'sbx_test'): Promise<{ name: string; url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  return {
    name,
    url: urlFor(name),
    drop: () => admin((c) => dropDatabase(c, name)),
  };
}

/**
 * Drops a database and the group role its sandbox roles connect through (`sandbox_connect_<oid>`,
 * made when the first sandbox role is): roles are cluster-wide and outlive the database.
 */
export async function dropDatabase(c: pg.Client, name: string): Promise<void> {
  const { rows } = await c.query<{ oid: string }>('SELECT oid::text AS oid FROM pg_database WHERE datname = $1', [name]);
  await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  // A sweeper of another test database may be dropping it as an orphan at the same moment.
  if (rows[0]) await c.query(`DROP ROLE IF EXISTS sandbox_connect_${rows[0].oid}`).catch(() => undefined);
}

/** A fresh, migrated database on the local PostgreSQL. */
export async function createTestDatabase(opts: { logger?: Logger; poolSize?: number } = {}): Promise<TestDatabase> {
  const empty = await createEmptyDatabase();
  const db = await openDatabase({ databaseUrl: empty.url, dataDir: '/nonexistent', logger: opts.logger ?? silentLogger(), poolSize: opts.poolSize ?? 20 });
  return {
    ...db,
    name: empty.name,
    drop: async () => {
      // Roles are cluster-wide: the sandbox roles this database's tests made (isolation on) go with it.
      await db.pool.query('SELECT drop_sandbox_role(id) FROM sandboxes').catch(() => undefined);
      await db.close();
      await empty.drop();
    },
  };
}

/** A fresh embedded (PGlite) database in a temporary directory. */
export async function createEmbeddedTestDatabase(opts: { logger?: Logger } = {}): Promise<TestDatabase & { dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sbx-pglite-'));
  const db = await openDatabase({ dataDir, logger: opts.logger ?? silentLogger(), poolSize: 8 });
  return {
    ...db,
    name: dataDir,
    dataDir,
    drop: async () => {
      await db.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function makeManager(db: Database, deps: Partial<ManagerDeps> = {}): SandboxManager {
  return new SandboxManager({ prisma: db.prisma, logger: silentLogger(), ...deps });
}

/** Exact row count of a table, optionally filtered by a SQL condition on fixed test values. */
export async function countRows(db: Database, table: string, where = 'true', params: unknown[] = []): Promise<number> {
  if (!/^[a-z_]+$/.test(table)) throw new Error('bad table');
  const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table} WHERE ${where}`, params);
  return Number(rows[0]!.n);
}

export async function schemaExists(db: Database, schema: string): Promise<boolean> {
  const { rows } = await db.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  return rows.length === 1;
}

export async function tablesIn(db: Database, schema: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ t: string }>(
    `SELECT c.relname::text AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1`,
    [schema],
  );
  return rows.map((r) => r.t);
}

/** Marks guilds as joined by the bot, as the bot's guild records would. */
export async function botJoined(db: Database, ...guildIds: string[]): Promise<void> {
  for (const id of guildIds) await db.pool.query('INSERT INTO bot_guilds (guild_id) VALUES ($1) ON CONFLICT (guild_id) DO UPDATE SET left_at = NULL', [id]);
}

/** A random Discord-style snowflake (18 digits). */
export const snowflake = (): string => `${1 + randomInt(9)}${Array.from({ length: 17 }, () => randomInt(10)).join('')}`;
