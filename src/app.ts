import type { Client } from 'discord.js';
import type { Config } from './config.ts';
import { openDatabase, type Database } from './db/database.ts';
import type { Logger } from './logger.ts';
import { createRedisProbe } from './redis.ts';
import { createClient } from './bot/client.ts';
import { Confirmations } from './bot/confirmations.ts';
import { Dispatcher } from './bot/dispatcher.ts';
import { createRateLimiter } from './bot/rate-limit.ts';
import { attachEvents } from './bot/events.ts';
import { DiscordGuildDirectory } from './bot/guild-directory.ts';
import type { BotObserver } from './bot/observer.ts';
import { registerCommands } from './bot/register-commands.ts';
import { GuildRegistry } from './sandbox/guild-registry.ts';
import { HttpServer, prismaPing } from './http/server.ts';
import { createDmNotifier } from './jobs/expiry-dm.ts';
import { Sweeper } from './jobs/sweeper.ts';
import { Metrics } from './metrics.ts';
import { SandboxManager, type ManagerObserver } from './sandbox/manager.ts';

export interface AppOptions {
  config: Config;
  logger: Logger;
  /** Overrides for tests. */
  databaseUrl?: string | undefined;
  apiUrl?: string | undefined;
  destroyConfirmTimeoutMs?: number | undefined;
  /** How long READY waits for guilds that are unavailable (discord.js default 15 s). */
  waitGuildTimeoutMs?: number | undefined;
  /** How long stop() waits for in-flight interactions (default 10 s). */
  drainTimeoutMs?: number | undefined;
  observer?: BotObserver | undefined;
  /** The in-process rate limiter's clock (ms); Redis buckets use the Redis server's clock. */
  rateLimitClock?: (() => number) | undefined;
  managerObserver?: ManagerObserver | undefined;
}

export interface App {
  client: Client;
  manager: SandboxManager;
  registry: GuildRegistry;
  dispatcher: Dispatcher;
  db: Database;
  metrics: Metrics;
  http: HttpServer;
  sweeper: Sweeper;
  stop(): Promise<void>;
}

/**
 * The composition root of `npm start`: database (migrated), domain, Discord client, events.
 * Resolves once the gateway is ready and startup reconciliation and command registration ran.
 */
export async function startApp(opts: AppOptions): Promise<App> {
  const { config, logger } = opts;
  const token = config.discord.token;
  if (!token) throw new Error('DISCORD_TOKEN is required to start the bot');
  const db = await openDatabase({ databaseUrl: opts.databaseUrl ?? config.databaseUrl, dataDir: config.dataDir, logger });

  const metrics = new Metrics({ prisma: db.prisma, logger });
  const redis = createRedisProbe(config.redisUrl, logger);
  const client = createClient(opts.apiUrl ?? config.discord.apiUrl, { waitGuildTimeoutMs: opts.waitGuildTimeoutMs });
  const directory = new DiscordGuildDirectory(client);
  const manager = new SandboxManager({
    prisma: db.prisma,
    logger,
    limits: config.limits,
    adminIds: config.adminIds,
    guilds: directory,
    redis,
    template: config.templateSchema,
    observer: opts.managerObserver ?? metrics.managerObserver(),
  });
  const registry = new GuildRegistry(manager, logger);
  const confirmations = new Confirmations();
  const rateLimiter = createRateLimiter(config.redisUrl, config.rateLimit, logger, opts.rateLimitClock);
  const dispatcher = new Dispatcher({
    rateLimiter,
    manager,
    logger,
    confirmations,
    destroyConfirmTimeoutMs: opts.destroyConfirmTimeoutMs ?? 60_000,
    observer: opts.observer ?? metrics.botObserver(),
  });
  const { ready } = attachEvents({
    client,
    registry,
    directory,
    dispatcher,
    logger,
    onReady: async (c) => {
      await registerCommands({ rest: c.rest, prisma: db.prisma, applicationId: c.application.id, devGuildId: config.discord.devGuildId, logger });
    },
  });

  const sweeper = new Sweeper({
    manager,
    logger,
    settings: config.sweeper,
    notifier: createDmNotifier(client, config.sweeper.graceMs),
    observer: metrics.sweeperObserver(),
  });
  const http = new HttpServer({
    ...config.http,
    registry: metrics.registry,
    pingDatabase: prismaPing(db.prisma),
    isGatewayReady: () => client.isReady(),
    logger,
  });

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    logger.info('stopping: finishing in-flight interactions');
    dispatcher.stopAccepting();
    await sweeper.stop();
    await dispatcher.drain(opts.drainTimeoutMs ?? 10_000);
    await client.destroy();
    await http.stop();
    await redis?.close();
    await rateLimiter.close();
    await db.close();
    logger.info('stopped');
  };

  try {
    await http.start();
    await client.login(token);
    await ready;
  } catch (err) {
    await client.destroy().catch(() => undefined);
    await http.stop();
    await redis?.close();
    await rateLimiter.close();
    await db.close();
    throw err;
  }
  sweeper.start();
  return { client, manager, registry, dispatcher, db, metrics, http, sweeper, stop };
}
