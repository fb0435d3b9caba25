import type { DatabaseServerConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import { DEFAULT_SERVER, SandboxServers, type ServerHandle } from '../sandbox/servers.ts';
import { createPool, createPrisma, type Database } from './database.ts';
import { migrate } from './migrator.ts';

/** A placement server's pool: small, and quick to give up connecting, so a server that is down is noticed fast. */
const SERVER_POOL_MAX = 4;
const SERVER_CONNECT_TIMEOUT_MS = 3000;

/**
 * The handle of one server from SANDBOX_DATABASE_SERVERS: a small pg pool and a Prisma client on
 * it, both lazy (nothing connects until the first use). prepare() applies our migrations there
 * once per process (the management functions and the template live on every server); it is
 * retried after a failure. The URL is kept for `sandbox env` and never logged.
 */
export function openServerHandle(server: DatabaseServerConfig, logger: Logger): ServerHandle {
  const log = logger.child({ component: 'db-server', server: server.name });
  const pool = createPool(server.url, log, SERVER_POOL_MAX, undefined, SERVER_CONNECT_TIMEOUT_MS);
  const prisma = createPrisma(pool, log);
  let prepared: Promise<unknown> | undefined;
  return {
    name: server.name,
    url: server.url,
    prisma,
    pool,
    prepare() {
      prepared ??= migrate(pool, log).catch((err: unknown) => {
        prepared = undefined;
        throw err;
      });
      return prepared.then(() => undefined);
    },
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      await prisma.$disconnect().catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
  };
}

/** The servers sandboxes are placed on: the control database as `default`, then SANDBOX_DATABASE_SERVERS (lazy). */
export function openSandboxServers(configs: readonly DatabaseServerConfig[], control: Pick<Database, 'url' | 'prisma' | 'pool'>, logger: Logger): SandboxServers {
  const base = SandboxServers.controlOnly(control.prisma, control.url, control.pool);
  if (!configs.length) return base;
  return new SandboxServers(base.handle(DEFAULT_SERVER), configs.map((c) => openServerHandle(c, logger)), logger.child({ component: 'db-servers' }));
}
