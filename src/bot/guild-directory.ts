import { DiscordAPIError, PermissionFlagsBits, RESTJSONErrorCodes, type Client } from 'discord.js';
import type { GuildDirectory } from '../sandbox/guild-directory.ts';

const NOT_A_MEMBER = new Set<number | string>([RESTJSONErrorCodes.UnknownMember, RESTJSONErrorCodes.UnknownUser]);

/** The domain's GuildDirectory answered from the live gateway session and a REST member fetch. */
export class DiscordGuildDirectory implements GuildDirectory {
  constructor(private readonly client: Client) {}

  async isBotInGuild(guildId: string): Promise<boolean> {
    return this.client.guilds.cache.has(guildId);
  }

  /** Fetches the member fresh (roles may have changed) and checks Manage Server. */
  async canManageGuild(guildId: string, userId: string): Promise<boolean> {
    const guild = this.client.guilds.cache.get(guildId);
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
