import type { Client } from 'discord.js';
import type { Config } from './config.ts';
import { openDatabase, type Database } from './db/database.ts';
import { openSandboxServers } from './db/servers.ts';
import type { Logger } from './logger.ts';
import { createRedisProbe } from './redis.ts';
import { wireIsolation } from './isolation.ts';
import { RoutingService } from './routing/service.ts';
import { createClient } from './bot/client.ts';
import { createResumableGateway } from './bot/gateway/resumable-gateway.ts';
import { Confirmations } from './bot/confirmations.ts';
import { Dispatcher } from './bot/dispatcher.ts';
import { createRateLimiter } from './bot/rate-limit.ts';
import { attachEvents } from './bot/events.ts';
import { DiscordGuildDirectory } from './bot/guild-directory.ts';
import type { BotObserver } from './bot/observer.ts';
import { registerCommands } from './bot/register-commands.ts';
import { GuildRegistry } from './sandbox/guild-registry.ts';
import { RecordedGuildDirectory } from './sandbox/guild-directory.ts';
import { HttpServer } from './http/server.ts';
import { BotStore } from './sandbox/store/bot-store.ts';
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
  /** Event routing; undefined without NATS_URL. */
  routing: RoutingService | undefined;
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

  const botStore = new BotStore(db.prisma);
  const metrics = new Metrics({ store: botStore, logger });
  const redis = createRedisProbe(config.redisUrl, logger);
  // Event routing: only with NATS_URL. The embedded database polls the route version (NOTIFY cannot reach us there).
  const routing = config.routing.natsUrl
    ? new RoutingService({ config: config.routing, pool: db.pool, databaseUrl: db.url, embedded: db.embedded, logger, registry: metrics.registry })
    : undefined;
  if (!routing) logger.info('event routing off (NATS_URL is not set)');
  // GATEWAY_INTENTS only matter when their events are routed; without routing, Guilds alone.
  // Shard sessions persisted (Redis, else bot_state) so that a restarted process RESUMEs; see src/bot/gateway/.
  const gateway = createResumableGateway({
    redisUrl: config.redisUrl,
    keyPrefix: config.gateway.keyPrefix,
    identifyWindowMs: config.gateway.identifyWindowMs,
    botStore,
    acks: routing?.acks,
    logger,
    // The routing reads dispatches from 'raw'; these never reach discord.js, so they are emitted there directly.
    routedOnly: (packet, shardId) => client.emit('raw', packet, shardId),
  });
  const client = createClient(opts.apiUrl ?? config.discord.apiUrl, {
    waitGuildTimeoutMs: opts.waitGuildTimeoutMs,
    intents: routing ? config.routing.intents.bits : undefined,
    ws: gateway.ws,
    shards: config.shards,
  });
  // Guilds of shards other processes hold: presence from bot_guilds, permissions by REST.
  const directory = new DiscordGuildDirectory(client, new RecordedGuildDirectory(db.prisma));
  // Per-sandbox role (isolation on), Redis ACL user and keys; connection variables for `/sandbox connect`.
  const isolation = wireIsolation(config, logger, opts.databaseUrl ?? config.databaseUrl);
  // Where sandbox schemas go: the control database, then SANDBOX_DATABASE_SERVERS (connected and migrated on first use).
  const servers = openSandboxServers(config.databaseServers, db, logger);
  const manager = new SandboxManager({
    servers,
    postgresResources: isolation.postgresResources,
    resources: [...(routing ? [routing.streamResource()] : []), ...isolation.resources],
    connectionEnv: (s, serverUrl) => isolation.connectionEnv(s, serverUrl),
    prisma: db.prisma,
    logger,
    limits: config.limits,
    adminIds: config.adminIds,
    guilds: directory,
    redis,
    template: config.templateSchema,
    observer: withRouting(opts.managerObserver ?? metrics.managerObserver(), routing),
    events: routing?.eventsProbe(),
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
  const { ready, joining } = attachEvents({
    client,
    registry,
    directory,
    dispatcher,
    logger,
    resumedShards: gateway.resumedShards,
    onReady: async (c, shards) => {
      // Once across processes: the one holding shard 0 registers (and skips when the definitions are unchanged).
      if (!shards.ids.includes(0)) {
        logger.info({ shards: shards.ids }, 'commands are registered by the process holding shard 0');
        return;
      }
      await registerCommands({ rest: c.rest, state: botStore, applicationId: c.application.id, devGuildId: config.discord.devGuildId, logger });
    },
  });

  const sweeper = new Sweeper({
    manager,
    logger,
    settings: config.sweeper,
    notifier: createDmNotifier(client, config.sweeper.graceMs),
    observer: metrics.sweeperObserver(),
    claimRechecks: () =>
      registry.retryDeferredClaims(async (guildId) => {
        const guild = await directory.guild(guildId);
        return guild?.available ? { ownerId: guild.ownerId, verify: (userId) => directory.canManageGuild(guildId, userId) } : null;
      }),
  });
  let startedUp = false;
  const http = new HttpServer({
    ...config.http,
    registry: metrics.registry,
    pingDatabase: () => botStore.ping(),
    // Ready once the startup work is done (guilds reconciled, commands registered), not at the gateway's READY alone.
    isGatewayReady: () => startedUp && client.isReady(),
    eventsHealth: () => routing?.health() ?? 'disabled',
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
    // Closes with 1000, which ends the gateway sessions: their persisted copies are removed (the next start identifies).
    // With GATEWAY_RESUME_AFTER_STOP the sessions stay open and are persisted after the last publishes (below).
    if (config.gateway.resumeAfterStop) gateway.keepSessionsOnStop();
    await client.destroy();
    // After the gateway: every event received is handed to NATS (or counted as dropped) before we go.
    await routing?.close().catch((err: unknown) => logger.warn({ err: { message: (err as Error).message } }, 'closing event routing failed'));
    await gateway.close();
    await http.stop();
    await redis?.close();
    await isolation.close();
    await rateLimiter.close();
    await servers.close();
    await db.close();
    logger.info('stopped');
  };

  try {
    await http.start();
    if (routing) {
      // No leaks: the route table is loaded and its change feed running before the first dispatch can arrive.
      await routing.start();
      // A guild's GUILD_CREATE (and its later events) wait for the join rules, which may map it to a sandbox.
      routing.attach(client, { holdGuild: (guildId) => joining(guildId) ?? (client.isReady() ? undefined : ready) });
    }
    await client.login(token);
    await ready;
    startedUp = true;
  } catch (err) {
    await client.destroy().catch(() => undefined);
    await routing?.close().catch(() => undefined);
    await gateway.close();
    await http.stop();
    await redis?.close();
    await isolation.close();
    await rateLimiter.close();
    await servers.close();
    await db.close();
    throw err;
  }
  sweeper.start();
  return { client, manager, registry, dispatcher, db, metrics, http, sweeper, routing, stop };
}

/** The manager's observer, plus: a committed mapping change is applied to this process's route table at once. */
function withRouting(observer: ManagerObserver, routing: RoutingService | undefined): ManagerObserver {
  if (!routing) return observer;
  return {
    ...observer,
    routesChanged: async () => {
      await Promise.all([observer.routesChanged?.(), routing.routesChanged()]);
    },
  };
}
