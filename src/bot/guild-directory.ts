import { DiscordAPIError, PermissionFlagsBits, RESTJSONErrorCodes, type Client, type Guild } from 'discord.js';
import type { GuildDirectory } from '../sandbox/guild-directory.ts';

const NOT_A_MEMBER = new Set<number | string>([RESTJSONErrorCodes.UnknownMember, RESTJSONErrorCodes.UnknownUser]);
const NOT_IN_GUILD = new Set<number | string>([RESTJSONErrorCodes.UnknownGuild, RESTJSONErrorCodes.MissingAccess]);

/** The domain's GuildDirectory answered from the live gateway session and a REST member fetch. */
export class DiscordGuildDirectory implements GuildDirectory {
  constructor(private readonly client: Client) {}

  /**
   * The guild from the gateway session's cache, else fetched over REST (not cached: the cache holds what the gateway
   * delivers, kept current by its events): after a shard resumed a session of an earlier process, the cache starts
   * empty (no READY lists the guilds). Null when the bot is not in it.
   */
  async guild(guildId: string): Promise<Guild | null> {
    const cached = this.client.guilds.cache.get(guildId);
    if (cached) return cached;
    try {
      return await this.client.guilds.fetch({ guild: guildId, cache: false });
    } catch (err) {
      if (err instanceof DiscordAPIError && NOT_IN_GUILD.has(err.code)) return null;
      throw err;
    }
  }

  async isBotInGuild(guildId: string): Promise<boolean> {
    return (await this.guild(guildId)) !== null;
  }

  /** Fetches the member fresh (roles may have changed) and checks Manage Server. */
  async canManageGuild(guildId: string, userId: string): Promise<boolean> {
    const guild = await this.guild(guildId);
    if (!guild) return false;
    try {
      const member = await guild.members.fetch({ user: userId, force: true });
      return member.permissions.has(PermissionFlagsBits.ManageGuild);
    } catch (err) {
      if (err instanceof DiscordAPIError && NOT_A_MEMBER.has(err.code)) return false;
      throw err;
    }
  }
}
