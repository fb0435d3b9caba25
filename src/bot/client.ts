import { Client, GatewayIntentBits, Options, type WebSocketOptions } from 'discord.js';
import { NO_MENTIONS } from './replies.ts';
import type { ShardConfig, ShardSet } from '../shards.ts';

/**
 * What the bot keeps in memory. It reads only the guild list (id, owner, availability), and computes a
 * member's permissions from a fresh REST fetch plus the guild's roles; everything else arrives in the
 * interaction payload. So guilds and roles stay cached (discord.js does not support limiting those, nor
 * channels), and every other cache holds nothing but the bot's own user and member.
 */
const NOTHING = 0;
const isSelf = (client: () => Client) => (entry: { id: string }) => entry.id === client().user?.id;

/**
 * Dispatches the bot itself never reads: with routing on they arrive only to be published (the 'raw' event). The
 * gateway's sharding strategy hands them to the routing without passing them to discord.js, so it does not build
 * and discard a Message, GuildMember, Presence… for each of them. Everything the bot does read (READY, RESUMED,
 * guilds, roles, channels, its own member and user, interactions) is still handled.
 */
export const ROUTED_ONLY_DISPATCHES: ReadonlySet<string> = new Set([
  'MESSAGE_CREATE',
  'MESSAGE_UPDATE',
  'MESSAGE_DELETE',
  'MESSAGE_DELETE_BULK',
  'MESSAGE_REACTION_ADD',
  'MESSAGE_REACTION_REMOVE',
  'MESSAGE_REACTION_REMOVE_ALL',
  'MESSAGE_REACTION_REMOVE_EMOJI',
  'MESSAGE_POLL_VOTE_ADD',
  'MESSAGE_POLL_VOTE_REMOVE',
  'TYPING_START',
  'PRESENCE_UPDATE',
  'GUILD_MEMBER_ADD',
  'GUILD_MEMBER_REMOVE',
  'GUILD_MEMBERS_CHUNK',
  'VOICE_STATE_UPDATE',
  'VOICE_CHANNEL_EFFECT_SEND',
  'THREAD_MEMBER_UPDATE',
  'THREAD_MEMBERS_UPDATE',
  'GUILD_SCHEDULED_EVENT_USER_ADD',
  'GUILD_SCHEDULED_EVENT_USER_REMOVE',
  'GUILD_BAN_ADD',
  'GUILD_BAN_REMOVE',
  'GUILD_AUDIT_LOG_ENTRY_CREATE',
  'AUTO_MODERATION_ACTION_EXECUTION',
  'INVITE_CREATE',
  'INVITE_DELETE',
  'CHANNEL_PINS_UPDATE',
  'WEBHOOKS_UPDATE',
  'GUILD_INTEGRATIONS_UPDATE',
]);

export interface ClientOptions {
  waitGuildTimeoutMs?: number | undefined;
  /** Gateway intents bitfield (config.routing.intents.bits); Guilds is always added. Default Guilds only. */
  intents?: number | undefined;
  /** The gateway's sharding strategy and identify throttler (src/bot/gateway/resumable-gateway.ts). */
  ws?: Pick<WebSocketOptions, 'buildStrategy' | 'buildIdentifyThrottler'> | undefined;
  /** SHARD_COUNT / SHARD_IDS; unset: discord.js's default (one shard). */
  shards?: ShardConfig | undefined;
}

/** discord.js's `shards`/`shardCount` options for this process's shards. */
export function shardOptions(config: ShardConfig | undefined): { shards?: number[] | 'auto'; shardCount?: number } {
  if (config?.count === undefined) return {};
  if (config.count === 'auto') return { shards: 'auto' };
  return { shards: config.ids ?? Array.from({ length: config.count }, (_, i) => i), shardCount: config.count };
}

/**
 * The discord.js client with the configured intents (`Guilds` always: guild joins/leaves/outages and
 * interactions; others only so that their events can be routed). `apiUrl` points REST (and, through GET
 * /gateway/bot, the gateway) at any Discord-compatible server, e.g. the test fake.
 */
export function createClient(apiUrl?: string, opts: ClientOptions = {}): Client {
  let client!: Client;
  const self = isSelf(() => client);
  client = new Client({
    intents: (opts.intents ?? 0) | GatewayIntentBits.Guilds,
    ...shardOptions(opts.shards),
    // How long READY waits for guilds that are still unavailable (an outage) before firing.
    ...(opts.waitGuildTimeoutMs !== undefined ? { waitGuildTimeout: opts.waitGuildTimeoutMs } : {}),
    allowedMentions: { ...NO_MENTIONS },
    ...(apiUrl ? { rest: { api: apiUrl } } : {}),
    ...(opts.ws ? { ws: opts.ws } : {}),
    makeCache: Options.cacheWithLimits({
      ApplicationCommandManager: NOTHING,
      ApplicationEmojiManager: NOTHING,
      AutoModerationRuleManager: NOTHING,
      BaseGuildEmojiManager: NOTHING,
      DMMessageManager: NOTHING,
      EntitlementManager: NOTHING,
      GuildBanManager: NOTHING,
      GuildEmojiManager: NOTHING,
      GuildForumThreadManager: NOTHING,
      GuildInviteManager: NOTHING,
      GuildMemberManager: { maxSize: NOTHING, keepOverLimit: self },
      GuildMessageManager: NOTHING,
      GuildScheduledEventManager: NOTHING,
      GuildStickerManager: NOTHING,
      GuildTextThreadManager: NOTHING,
      MessageManager: NOTHING,
      PresenceManager: NOTHING,
      ReactionManager: NOTHING,
      ReactionUserManager: NOTHING,
      StageInstanceManager: NOTHING,
      ThreadManager: NOTHING,
      ThreadMemberManager: NOTHING,
      UserManager: { maxSize: NOTHING, keepOverLimit: self },
      VoiceStateManager: NOTHING,
    }),
    // Nothing above grows, so the default sweepers (threads) are all there is to sweep.
    sweepers: Options.DefaultSweeperSettings,
  });
  return client;
}

/** The shards this client holds once logged in (discord.js resolves `auto` and its defaults then). */
export function heldShards(client: Client): ShardSet {
  const { shards, shardCount } = client.options;
  const ids = typeof shards === 'number' ? [shards] : Array.isArray(shards) ? [...(shards as readonly number[])] : [0];
  return { ids, count: shardCount ?? 1 };
}
