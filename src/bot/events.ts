import { Events, type Client, type Guild } from 'discord.js';
import type { Logger } from '../logger.ts';
import type { GuildRegistry } from '../sandbox/guild-registry.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { DiscordGuildDirectory } from './guild-directory.ts';
import { ownsGuild, shardOf, type ShardSet } from '../shards.ts';
import { heldShards } from './client.ts';

export interface EventDeps {
  client: Client;
  registry: GuildRegistry;
  directory: DiscordGuildDirectory;
  dispatcher: Dispatcher;
  logger: Logger;
  /** Runs once per READY, after reconciliation (command registration), with the shards this process holds. */
  onReady?: (client: Client<true>, shards: ShardSet) => Promise<void>;
  /**
   * Shards that resumed a session persisted by an earlier process (src/bot/gateway/). Their guild cache starts empty
   * and Discord replays what they missed (GUILD_CREATE, GUILD_DELETE…), so an empty cache is not "removed from every
   * guild": reconciliation applies the join rules to the guilds it sees and unmaps none of their guilds.
   */
  resumedShards?: ReadonlySet<number>;
}

/**
 * Wires gateway events to the domain. Every handler is wrapped: a failure is logged and never
 * takes the bot down. An outage (`guildUnavailable`) changes nothing.
 */
export interface AttachedEvents {
  /** Resolves once READY's reconciliation and ready tasks ran. */
  ready: Promise<void>;
  /** The join rules running for this guild (its GUILD_CREATE), if any; resolves when they ran, never rejects. */
  joining(guildId: string): Promise<void> | undefined;
}

export function attachEvents(deps: EventDeps): AttachedEvents {
  const { client, registry, directory, dispatcher } = deps;
  const log = deps.logger.child({ component: 'gateway-events' });
  const verifierFor = (guildId: string) => (userId: string) => directory.canManageGuild(guildId, userId);
  const safe =
    <A extends unknown[]>(event: string, fn: (...args: A) => Promise<unknown>) =>
    (...args: A): void => {
      fn(...args).catch((err) => log.error({ err, event }, 'event handler failed'));
    };

  const joins = new Map<string, Promise<void>>();
  const track = (guildId: string, work: Promise<unknown>): Promise<void> => {
    const done = work.then(
      () => undefined,
      () => undefined,
    );
    joins.set(guildId, done);
    void done.then(() => {
      if (joins.get(guildId) === done) joins.delete(guildId);
    });
    return work as Promise<void>;
  };

  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  client.on(
    Events.ClientReady,
    safe('clientReady', async (c: Client<true>) => {
      try {
        const shards = heldShards(c);
        const resumed = deps.resumedShards ?? new Set<number>();
        log.info({ user: c.user.tag, guilds: c.guilds.cache.size, shards: shards.ids, shardCount: shards.count, resumedShards: [...resumed] }, 'gateway ready');
        const present = [...c.guilds.cache.values()].map((g: Guild) => ({ id: g.id, ownerId: g.available ? g.ownerId : null, available: g.available }));
        // Only this process's shards' guilds: another process's guilds are neither listed here nor ours to mark as left;
        // nor are those of a shard that resumed (its removals are replayed as events).
        const owns = (guildId: string) => ownsGuild(shards, guildId) && !resumed.has(shardOf(guildId, shards.count));
        await registry.reconcile(present, verifierFor, owns).catch((err) => log.error({ err }, 'guild reconciliation failed'));
        await deps.onReady?.(c, shards).catch((err) => log.error({ err }, 'ready task failed'));
      } finally {
        markReady();
      }
    }),
  );
  // After a resume from a persisted session the cache starts empty: a guild the bot was already in arrives as a
  // guildCreate too, so it gets the rules of a guild seen again (a deliberately unregistered guild stays unmapped).
  const fromResumedShard = (guild: Guild) => deps.resumedShards?.has(guild.shardId) === true;
  client.on(
    Events.GuildCreate,
    safe('guildCreate', (guild: Guild) =>
      track(
        guild.id,
        (fromResumedShard(guild)
          ? registry.onGuildSeen({ id: guild.id, ownerId: guild.ownerId }, verifierFor(guild.id))
          : registry.onGuildJoin(guild.id, guild.ownerId, verifierFor(guild.id))
        ).then((outcome) => outcome && log.info({ guildId: guild.id, ...outcome }, 'joined guild')),
      ),
    ),
  );
  client.on(
    Events.GuildAvailable,
    safe('guildAvailable', async (guild: Guild) => {
      // After READY only: a guild that was unavailable at startup may be new to us.
      if (client.isReady()) await track(guild.id, registry.onGuildSeen({ id: guild.id, ownerId: guild.ownerId }, verifierFor(guild.id)));
    }),
  );
  client.on(
    Events.GuildDelete,
    safe('guildDelete', async (guild: Guild) => {
      // discord.js emits guildDelete only for real removals; outages emit guildUnavailable.
      await registry.onGuildRemoved(guild.id);
    }),
  );
  // discord.js emits guildDelete only for cached guilds; after a resume a replayed removal may be of an uncached one.
  const removedWhileUncached = safe('guildDelete', (guildId: string) => registry.onGuildRemoved(guildId));
  client.on(Events.Raw, (packet: { t?: string; d?: { id?: unknown; unavailable?: unknown } }, shardId: number) => {
    if (packet.t !== 'GUILD_DELETE' || packet.d?.unavailable === true || typeof packet.d?.id !== 'string') return;
    if (deps.resumedShards?.has(shardId) && !client.guilds.cache.has(packet.d.id)) removedWhileUncached(packet.d.id);
  });
  client.on(Events.GuildUnavailable, (guild) => log.warn({ guildId: guild.id }, 'guild unavailable (outage); mappings kept'));
  client.on(Events.InteractionCreate, (interaction) => void dispatcher.handle(interaction));
  client.on(Events.Error, (err) => log.error({ err }, 'client error'));
  client.on(Events.Warn, (message) => log.warn({ message }, 'client warning'));
  client.on(Events.ShardDisconnect, (event, shardId) => log.warn({ code: event.code, shardId }, 'gateway disconnected'));
  return { ready, joining: (guildId) => joins.get(guildId) };
}
