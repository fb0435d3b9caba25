import pg from 'pg';
import { sandboxIdFromIdentityName } from '../sandbox/naming.ts';
import { SandboxConnectError } from './errors.ts';
import type { ResolvedSettings } from './settings.ts';

/** Statuses a worker may connect in: running, and expired (still kept, and revived by an extend). */
const CONNECTABLE = new Set(['running', 'expired']);

/** The libpq startup option that gives every connection exactly this search_path (no public). */
export const searchPathOption = (schema: string): string => `-c search_path=${schema}`;

/** The URL without a `schema` parameter (adapter-pg and pg ignore it; the search_path option decides). */
export function connectionStringOf(url: string): string {
  const u = new URL(url);
  u.searchParams.delete('schema');
  return u.toString();
}

/**
 * A pool whose every connection starts with search_path = the schema, checked before it is returned:
 * not the embedded database; the schema exists (else an error naming the sandbox, never a fallback);
 * search_path is exactly that schema; and, logged in as a sandbox role, it is this sandbox's role
 * and its sandbox is live (sandbox_self_status()).
 */
export async function openDatabase(s: ResolvedSettings, url: string): Promise<pg.Pool> {
  const pool = new pg.Pool({
    connectionString: connectionStringOf(url),
    options: searchPathOption(s.schema),
    max: s.poolSize,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // A dropped idle connection (database restart, teardown ending the role's sessions) must not crash the worker.
  pool.on('error', () => undefined);
  try {
    await verify(pool, s);
    return pool;
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}

async function verify(pool: pg.Pool, s: ResolvedSettings): Promise<void> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '28000' || code === '28P01') {
      throw new SandboxConnectError(
        'SDK_SANDBOX_NOT_LIVE',
        `${s.label}: the database refused its login (the sandbox may have been destroyed, or its credentials rotated: run \`sandbox env\` again)`,
        { cause: err },
      );
    }
    throw new SandboxConnectError('SDK_CONFIG', `${s.label}: cannot connect to the database: ${(err as Error).message}`, { cause: err });
  }
  try {
    const { rows } = await client.query<{ version: string; user: string; schema_exists: boolean; path: string[] }>(
      `SELECT version() AS version, session_user::text AS user,
              EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1) AS schema_exists,
              pg_catalog.current_schemas(false)::text[] AS path`,
      [s.schema],
    );
    const info = rows[0]!;
    if (/PGlite/i.test(info.version)) {
      throw new SandboxConnectError(
        'SDK_EMBEDDED_DATABASE',
        `${s.label}: this is the embedded database (PGlite). Its connections share one session, so a worker's search_path would change the control plane's too; the SDK refuses it. Run the bot with DATABASE_URL set to a PostgreSQL server.`,
      );
    }
    if (!info.schema_exists) {
      throw new SandboxConnectError(
        'SDK_SCHEMA_MISSING',
        s.mode === 'sandbox'
          ? `${s.label}: its schema ${s.schema} does not exist (the sandbox is being created, was destroyed, or failed). Check \`sandbox status ${s.sandboxId}\`; the SDK never falls back to another schema.`
          : `production: schema ${s.schema} (PRODUCTION_SCHEMA) does not exist; the SDK never creates it.`,
      );
    }
    const roleSandbox = sandboxIdFromIdentityName(info.user);
    if (roleSandbox !== undefined) {
      if (roleSandbox !== s.sandboxId) {
        throw new SandboxConnectError('SDK_WRONG_IDENTITY', `${s.label}: the database URL logs in as another sandbox's role (${info.user})`);
      }
      // Qualified: search_path holds only the sandbox's schema, which may not shadow it.
      const { rows: st } = await client.query<{ status: string | null }>(`SELECT "${s.controlSchema}".sandbox_self_status() AS status`);
      const status = st[0]?.status ?? null;
      if (status === null || !CONNECTABLE.has(status)) {
        throw new SandboxConnectError(
          'SDK_SANDBOX_NOT_LIVE',
          `${s.label} is ${status ?? 'unknown to the control database'}, not running: a worker connects only to a running (or expired, not yet reclaimed) sandbox.`,
        );
      }
    }
    // current_schemas() omits a schema the user may not use, so this also proves USAGE.
    if (info.path.length !== 1 || info.path[0] !== s.schema) {
      throw new SandboxConnectError('SDK_CONFIG', `${s.label}: search_path is ${JSON.stringify(info.path)}, expected exactly ["${s.schema}"]`);
    }
  } catch (err) {
    if (err instanceof SandboxConnectError) throw err;
    throw new SandboxConnectError('SDK_CONFIG', `${s.label}: checking the database failed: ${(err as Error).message}`, { cause: err });
  } finally {
    client.release();
  }
}
