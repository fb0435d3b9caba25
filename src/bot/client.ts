import { Client, GatewayIntentBits, Options } from 'discord.js';
import { NO_MENTIONS } from './replies.ts';

/**
 * What the bot keeps in memory. It reads only the guild list (id, owner, availability), and computes a
 * member's permissions from a fresh REST fetch plus the guild's roles; everything else arrives in the
 * interaction payload. So guilds and roles stay cached (discord.js does not support limiting those, nor
 * channels), and every other cache holds nothing but the bot's own user and member.
 */
const NOTHING = 0;
const isSelf = (client: () => Client) => (entry: { id: string }) => entry.id === client().user?.id;

/**
 * The discord.js client. Only the Guilds intent: guild joins/leaves/outages and interactions.
 * `apiUrl` points REST (and, through GET /gateway/bot, the gateway) at any Discord-compatible
 * server, e.g. the test fake.
 */
export function createClient(apiUrl?: string, opts: { waitGuildTimeoutMs?: number | undefined; intents?: number | undefined } = {}): Client {
  let client!: Client;
  const self = isSelf(() => client);
  client = new Client({
    // With routing on, the intents of GATEWAY_INTENTS (Guilds always included) so the routed events arrive.
    intents: opts.intents ?? [GatewayIntentBits.Guilds],
    // How long READY waits for guilds that are still unavailable (an outage) before firing.
    ...(opts.waitGuildTimeoutMs !== undefined ? { waitGuildTimeout: opts.waitGuildTimeoutMs } : {}),
    allowedMentions: { ...NO_MENTIONS },
    ...(apiUrl ? { rest: { api: apiUrl } } : {}),
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
