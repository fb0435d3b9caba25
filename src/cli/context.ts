import { userInfo } from 'node:os';
import { loadConfig, loadDotEnv, type Config } from '../config.ts';
import { openDatabase, type Database } from '../db/database.ts';
import { openSandboxServers } from '../db/servers.ts';
import { createLogger, type Logger } from '../logger.ts';
import { SandboxManager } from '../sandbox/manager.ts';
import type { Actor } from '../sandbox/types.ts';
import { operatorName } from '../sandbox/validation.ts';
import { createRedisProbe } from '../redis.ts';
import { wireIsolation } from '../isolation.ts';
import { StreamAccess } from '../routing/stream-probe.ts';

export interface CliContext {
  config: Config;
  logger: Logger;
  db: Database;
  manager: SandboxManager;
  actor: Actor;
  close(): Promise<void>;
}

/** The operator running the CLI: `cli:<os user>`. */
export function operatorActor(): Actor {
  let name = process.env.SANDBOX_OPERATOR ?? '';
  if (!name) {
    try {
      name = userInfo().username;
    } catch {
      name = process.env.USER ?? 'operator';
    }
  }
  return { kind: 'operator', name: operatorName(name) };
}

/** Loads and validates configuration (never needs DISCORD_TOKEN), then opens the database. */
export async function openCliContext(opts: { migrate?: boolean } = {}): Promise<CliContext> {
  loadDotEnv();
  // The CLI serves no HTTP, so HTTP_PORT (the bot's) is none of its business.
  const config = loadConfig({ ...process.env, HTTP_PORT: undefined });
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger, migrate: opts.migrate ?? true, poolSize: 4 });
  const redis = createRedisProbe(config.redisUrl, logger);
  // The same role, Redis ACL user and keys as the bot, so CLI creates and destroys behave the same.
  const isolation = wireIsolation(config, logger);
  // With NATS_URL, creates and destroys make and remove the sandbox's stream here too, and `status` shows it.
  const streams = config.routing.natsUrl ? new StreamAccess(config.routing, logger) : undefined;
  const servers = openSandboxServers(config.databaseServers, db, logger);
  const manager = new SandboxManager({
    servers,
    prisma: db.prisma,
    logger,
    limits: config.limits,
    adminIds: config.adminIds,
    redis,
    postgresResources: isolation.postgresResources,
    resources: [...(streams ? [streams.resource()] : []), ...isolation.resources],
    connectionEnv: (s, serverUrl) => isolation.connectionEnv(s, serverUrl),
    events: streams,
    template: config.templateSchema,
  });
  return {
    config,
    logger,
    db,
    manager,
    actor: operatorActor(),
    close: async () => {
      await redis?.close();
      await isolation.close();
      await streams?.close();
      await servers.close();
      await db.close();
    },
  };
}
