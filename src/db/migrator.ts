import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import type { Logger } from '../logger.ts';
import { MIGRATIONS_DIR } from '../paths.ts';
import { ErrorCode, SandboxError } from '../sandbox/errors.ts';

/** Prisma's own bookkeeping table, created exactly as `prisma migrate` creates it. */
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

/** Arbitrary constant advisory-lock key shared by every process migrating this database. */
const MIGRATION_LOCK_KEY = 72_707_369;

export interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationResult {
  applied: string[];
  skipped: string[];
}

/** Prisma's checksum: the SHA-256 of the migration file's bytes, as lowercase hex. */
export const prismaChecksum = (sql: string): string => createHash('sha256').update(sql, 'utf8').digest('hex');

export async function readMigrations(dir: string = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: prismaChecksum(sql) };
    }),
  );
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

/**
 * Applies pending migrations, each in its own transaction under a transaction-level advisory
 * lock, re-reading what is applied inside that transaction. Two processes starting at once are
 * safe on PostgreSQL (the lock) and on PGlite (which runs one transaction at a time).
 * Refuses to proceed when an applied migration's file has changed.
 */
export async function migrate(pool: pg.Pool, logger: Logger, dir: string = MIGRATIONS_DIR): Promise<MigrationResult> {
  const files = await readMigrations(dir);
  const result: MigrationResult = { applied: [], skipped: [] };
  const client = await pool.connect();
  try {
    // One read answers the usual start-up (nothing pending); only pending files take the lock.
    const applied = await readApplied(client);
    for (const file of files) {
      const checksum = applied.get(file.name);
      if (checksum !== undefined) {
        assertUnchanged(file, checksum);
        result.skipped.push(file.name);
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
        await client.query(CREATE_MIGRATIONS_TABLE);
        const { rows } = await client.query<AppliedRow>(
          `SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"
           WHERE migration_name = $1 AND rolled_back_at IS NULL ORDER BY started_at`,
          [file.name],
        );
        const done = rows.find((r) => r.finished_at !== null);
        if (done) {
          assertUnchanged(file, done.checksum);
          await client.query('COMMIT');
          result.skipped.push(file.name);
          continue;
        }
        // An earlier failed attempt rolled back completely (each migration is one transaction).
        await client.query(`UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = $1 AND finished_at IS NULL AND rolled_back_at IS NULL`, [file.name]);
        const id = randomUUID();
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)`,
          [id, file.checksum, file.name],
        );
        await client.query(file.sql);
        await client.query(`UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`, [id]);
        await client.query('COMMIT');
        result.applied.push(file.name);
        logger.info({ migration: file.name }, 'migration applied');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        if (err instanceof SandboxError) throw err;
        await recordFailure(client, file, err);
        throw new SandboxError(ErrorCode.Internal, `Migration ${file.name} failed: ${(err as Error).message}`, { migration: file.name }, { cause: err });
      }
    }
  } finally {
    client.release();
  }
  return result;
}

/** Applied migrations by name and checksum; empty when the bookkeeping table does not exist yet. */
async function readApplied(client: pg.PoolClient): Promise<Map<string, string>> {
  try {
    const { rows } = await client.query<{ migration_name: string; checksum: string }>(
      `SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    return new Map(rows.map((r) => [r.migration_name, r.checksum]));
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return new Map();
    throw err;
  }
}

function assertUnchanged(file: MigrationFile, applied: string): void {
  if (applied === file.checksum) return;
  throw new SandboxError(
    ErrorCode.Config,
    `Migration ${file.name} was changed after it was applied (checksum ${applied.slice(0, 12)}… in the database, ${file.checksum.slice(0, 12)}… on disk). Restore the file; never edit an applied migration.`,
    { migration: file.name },
  );
}

/** Records a failed attempt the way Prisma does (finished_at NULL, logs set), for `migrate status`. */
async function recordFailure(client: pg.PoolClient, file: MigrationFile, err: unknown): Promise<void> {
  try {
    await client.query(CREATE_MIGRATIONS_TABLE);
    await client.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs, started_at, applied_steps_count) VALUES ($1, $2, $3, $4, now(), 0)`,
      [randomUUID(), file.checksum, file.name, String((err as Error)?.stack ?? err)],
    );
  } catch {
    // The database may be gone; the original error is what matters.
  }
}
