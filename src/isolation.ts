import { Redis } from 'ioredis';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { SandboxCredentials } from './sandbox/credentials.ts';
import { RedisAclResource, RedisKeysResource } from './sandbox/redis-resources.ts';
import type { ExternalResource, PostgresResource } from './sandbox/resources.ts';
import { SandboxRoles } from './sandbox/store/roles.ts';
import type { Sandbox } from './sandbox/types.ts';

/** What the bot and the CLI give the manager for enforced isolation and the sandbox's Redis. */
export interface IsolationWiring {
  /** The role driver when isolation is on. */
  postgresResources: PostgresResource[];
  /** redis-acl (isolation on) and redis-keys, when REDIS_URL is set. Callers append others (the stream). */
  resources: ExternalResource[];
  credentials: SandboxCredentials | undefined;
  /** The variables `sandbox env` and `/sandbox connect` add: credentials (on the sandbox's server: `serverUrl`, default the control database) and the NATS consumer (the NATS URL comes with the manager's events probe). */
  connectionEnv(sandbox: Sandbox, serverUrl?: string): Record<string, string>;
  close(): Promise<void>;
}

/** The durable consumer a sandbox's worker uses by default (the SDK's default too). */
export const WORKER_CONSUMER = 'worker';

/**
 * Builds the per-sandbox identity drivers from the configuration: the same for `npm start` and the
 * CLI, so a sandbox made or destroyed by either gets and loses the same things. `databaseUrl` is
 * the control database actually opened (tests override config.databaseUrl).
 */
export function wireIsolation(config: Config, logger: Logger, databaseUrl: string | undefined = config.databaseUrl): IsolationWiring {
  const log = logger.child({ component: 'isolation' });
  const secret = config.isolation.enabled ? config.isolation.credentialSecret : undefined;
  const credentials = secret ? new SandboxCredentials(secret) : undefined;
  const postgresResources: PostgresResource[] = credentials && databaseUrl ? [new SandboxRoles(credentials)] : [];
  const resources: ExternalResource[] = [];
  let admin: Redis | undefined;
  if (config.redisUrl) {
    // Unprefixed admin connection; commands fail fast while Redis is away (the drivers are best-effort).
    admin = new Redis(config.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: true });
    admin.on('error', (err) => log.debug({ err: { message: err.message } }, 'redis admin connection error'));
    if (credentials) resources.push(new RedisAclResource(admin, credentials, { logger: log }));
    resources.push(new RedisKeysResource(admin, { logger: log }));
  }
  const natsUrl = config.routing.natsUrl;
  return {
    postgresResources,
    resources,
    credentials,
    connectionEnv(sandbox, serverUrl) {
      const env: Record<string, string> = {};
      const url = serverUrl ?? databaseUrl;
      if (credentials && url) {
        // The sandbox's role lives on its schema's server: that server's address, the sandbox's login.
        env.SANDBOX_DATABASE_URL = credentials.databaseUrl(url, sandbox.id);
        const controlSchema = new URL(url).searchParams.get('schema');
        if (controlSchema) env.SANDBOX_CONTROL_SCHEMA = controlSchema;
      }
      if (credentials && config.redisUrl) env.SANDBOX_REDIS_URL = credentials.redisUrl(config.redisUrl, sandbox.id);
      // SANDBOX_NATS_URL itself comes with the events probe (getConnectionDetails, publicNatsUrl).
      if (natsUrl) env.SANDBOX_NATS_CONSUMER = WORKER_CONSUMER;
      return env;
    },
    async close() {
      admin?.disconnect();
    },
  };
}
