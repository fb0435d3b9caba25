import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import { openEmbedded, type EmbeddedDatabase } from './embedded.ts';
import { migrate, type MigrationResult } from './migrator.ts';
import { databaseConfigError, ErrorCode, errorCodes, isConnectionError, SandboxError } from '../sandbox/errors.ts';

export { PrismaClient };

/** Interactive transactions wait their turn on PGlite, which runs one at a time. */
export const TX_OPTIONS = { maxWait: 20_000, timeout: 60_000 } as const;

export interface Database {
  prisma: PrismaClient;
  pool: pg.Pool;
  url: string;
  embedded: boolean;
  close(): Promise<void>;
}

export interface OpenOptions {
  databaseUrl?: string | undefined;
  dataDir: string;
  logger: Logger;
  /** Apply pending migrations before returning (default true). */
  migrate?: boolean;
  poolSize?: number;
}

export function createPool(url: string, logger: Logger, max = 10, embedded?: EmbeddedDatabase, connectionTimeoutMillis = 10_000): pg.Pool {
  // On the embedded database each new connection asks for the current server's address, so a
  // process that outlives the one serving the files takes over instead of failing for good.
  const source = embedded;
  const Client = source
    ? class EmbeddedClient extends pg.Client {
        constructor(config: pg.ClientConfig) {
          super({ ...config, connectionString: source!.currentUrl() });
        }
      }
    : undefined;
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis,
    idleTimeoutMillis: 30_000,
    ...(Client ? { Client: Client as unknown as new () => pg.ClientBase } : {}),
  });
  // An idle client losing its connection (database restart) must not crash the process.
  pool.on('error', (err) => logger.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'database connection lost'));
  return pool;
}

export function createPrisma(pool: pg.Pool, logger: Logger): PrismaClient {
  const adapter = new PrismaPg(pool, {
    onPoolError: (err) => logger.warn({ err: { message: err.message } }, 'database pool error'),
  });
  return new PrismaClient({ adapter });
}

/** Opens the configured database (or the embedded one), migrates it, and returns a Prisma client. */
export async function openDatabase(opts: OpenOptions): Promise<Database & { migrations?: MigrationResult }> {
  const logger = opts.logger.child({ component: 'db' });
  let embedded: EmbeddedDatabase | undefined;
  let url = opts.databaseUrl;
  if (!url) {
    embedded = await openEmbedded(opts.dataDir, logger);
    url = embedded.url;
  }
  const pool = createPool(url, logger, opts.poolSize ?? 10, embedded);
  const prisma = createPrisma(pool, logger);
  const close = async (): Promise<void> => {
    await prisma.$disconnect().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await embedded?.close();
  };
  try {
    // Without migrations, still connect once now, so a wrong URL is reported here, with what to fix.
    const migrations = opts.migrate === false ? void (await pool.query('SELECT 1')) : await migrate(pool, logger);
    return { prisma, pool, url, embedded: embedded !== undefined, close, ...(migrations ? { migrations } : {}) };
  } catch (err) {
    await close();
    throw embedded ? err : connectionFailure(err, url);
  }
}

/**
 * The first connection's failure in words: a wrong database or role is a configuration error
 * (SANDBOX_013); a refused or unresolvable address names host and port and points at DATABASE_URL.
 */
export function connectionFailure(err: unknown, url: string): unknown {
  if (err instanceof SandboxError) return err;
  const config = databaseConfigError(err);
  if (config) return config;
  if (!isConnectionError(err)) return err;
  let where = 'the configured address';
  try {
    const u = new URL(url);
    where = `${u.hostname || 'localhost'}:${u.port || '5432'}`;
  } catch {
    // An unparsable URL was refused by config validation already.
  }
  const codes = errorCodes(err);
  const why = codes.includes('ECONNREFUSED') ? 'the connection was refused' : codes.includes('ENOTFOUND') || codes.includes('EAI_AGAIN') ? 'the host name does not resolve' : 'it did not answer';
  return new SandboxError(
    ErrorCode.Unavailable,
    `Cannot connect to PostgreSQL at ${where}: ${why}. Is PostgreSQL running there? DATABASE_URL may be wrong.`,
    { host: where },
    { cause: err },
  );
}
