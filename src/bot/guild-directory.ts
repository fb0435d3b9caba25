import { DiscordAPIError, PermissionFlagsBits, RESTJSONErrorCodes, type Client, type Guild } from 'discord.js';
import type { GuildDirectory } from '../sandbox/guild-directory.ts';
import { ownsGuild } from '../shards.ts';
import { heldShards } from './client.ts';

const NOT_A_MEMBER = new Set<number | string>([RESTJSONErrorCodes.UnknownMember, RESTJSONErrorCodes.UnknownUser]);
const NOT_IN_GUILD = new Set<number | string>([RESTJSONErrorCodes.UnknownGuild, RESTJSONErrorCodes.MissingAccess]);

/**
 * The domain's GuildDirectory answered from the live gateway session and a REST member fetch. A guild missing from
 * this session's cache is fetched over REST: a guild of a shard another process holds, or any guild of a shard that
 * resumed an earlier process's session (its cache starts empty). Whether the bot is in another process's guild comes
 * from `bot_guilds` (`recorded`, kept by the process holding that shard).
 */
export class DiscordGuildDirectory implements GuildDirectory {
  constructor(
    private readonly client: Client,
    private readonly recorded: Pick<GuildDirectory, 'isBotInGuild'>,
  ) {}

  /** The cached guild, else fetched over REST without caching it (the cache holds what the gateway delivers); null when the bot is not in it. */
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
    if (this.client.guilds.cache.has(guildId)) return true;
    if (this.elsewhere(guildId)) return this.recorded.isBotInGuild(guildId);
    return (await this.guild(guildId)) !== null;
  }

  /** Fetches the member fresh (roles may have changed) and checks Manage Server against the guild's roles. */
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

  /** A guild whose events another process receives (SHARD_IDS leaves its shard out). */
  private elsewhere(guildId: string): boolean {
    return this.client.isReady() && !ownsGuild(heldShards(this.client), guildId);
  }
}
