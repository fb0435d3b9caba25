import { DiscordAPIError, PermissionFlagsBits, RESTJSONErrorCodes, Routes, type APIGuild, type APIGuildMember, type Client } from 'discord.js';
import type { GuildDirectory } from '../sandbox/guild-directory.ts';
import { ownsGuild } from '../shards.ts';
import { heldShards } from './client.ts';

const NOT_A_MEMBER = new Set<number | string>([RESTJSONErrorCodes.UnknownMember, RESTJSONErrorCodes.UnknownUser, RESTJSONErrorCodes.UnknownGuild]);

/**
 * The domain's GuildDirectory answered from the live gateway session and a REST member fetch. A guild of a shard
 * another process holds is not in this session: whether the bot is there comes from `bot_guilds` (`recorded`, kept
 * by the process holding that shard), and Manage Server from REST (the guild's roles and the member's).
 */
export class DiscordGuildDirectory implements GuildDirectory {
  constructor(
    private readonly client: Client,
    private readonly recorded: Pick<GuildDirectory, 'isBotInGuild'>,
  ) {}

  async isBotInGuild(guildId: string): Promise<boolean> {
    if (this.client.guilds.cache.has(guildId)) return true;
    return this.elsewhere(guildId) ? this.recorded.isBotInGuild(guildId) : false;
  }

  /** Fetches the member fresh (roles may have changed) and checks Manage Server. */
  async canManageGuild(guildId: string, userId: string): Promise<boolean> {
    const guild = this.client.guilds.cache.get(guildId);
    try {
      if (guild) {
        const member = await guild.members.fetch({ user: userId, force: true });
        return member.permissions.has(PermissionFlagsBits.ManageGuild);
      }
      return this.elsewhere(guildId) ? await this.canManageByRest(guildId, userId) : false;
    } catch (err) {
      if (err instanceof DiscordAPIError && NOT_A_MEMBER.has(err.code)) return false;
      throw err;
    }
  }

  /** A guild whose events another process receives (SHARD_IDS leaves its shard out). */
  private elsewhere(guildId: string): boolean {
    return this.client.isReady() && !ownsGuild(heldShards(this.client), guildId);
  }

  /** Owner, or Manage Server / Administrator from @everyone and the member's roles. */
  private async canManageByRest(guildId: string, userId: string): Promise<boolean> {
    const [guild, member] = (await Promise.all([this.client.rest.get(Routes.guild(guildId)), this.client.rest.get(Routes.guildMember(guildId, userId))])) as [
      APIGuild,
      APIGuildMember,
    ];
    if (guild.owner_id === userId) return true;
    const roles = new Map(guild.roles.map((r) => [r.id, BigInt(r.permissions)]));
    let bits = roles.get(guild.id) ?? 0n;
    for (const id of member.roles) bits |= roles.get(id) ?? 0n;
    return (bits & (PermissionFlagsBits.Administrator | PermissionFlagsBits.ManageGuild)) !== 0n;
  }
}
