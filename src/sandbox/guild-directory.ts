import type { PrismaClient } from '../db/database.ts';
import { SandboxStore } from './store/store.ts';

/**
 * What the domain needs to know about Discord guilds, behind a port so that the domain never
 * imports discord.js. The bot supplies one backed by its gateway session; the CLI uses the
 * database's record of guilds the bot has seen.
 */
export interface GuildDirectory {
  /** Whether the bot is in the guild right now (or, for the CLI, was when last seen). */
  isBotInGuild(guildId: string): Promise<boolean>;
  /** Whether the Discord user holds Manage Server in the guild. Only asked when the bot is in it. */
  canManageGuild(guildId: string, userId: string): Promise<boolean>;
}

/** The CLI's view: `bot_guilds` rows not marked as left. It cannot check member permissions. */
export class RecordedGuildDirectory implements GuildDirectory {
  private readonly store: SandboxStore;

  constructor(source: PrismaClient | SandboxStore) {
    this.store = source instanceof SandboxStore ? source : new SandboxStore(source, () => new Date());
  }

  async isBotInGuild(guildId: string): Promise<boolean> {
    const row = await this.store.findBotGuild(guildId);
    return row !== null && row.leftAt === null;
  }

  async canManageGuild(): Promise<boolean> {
    return false;
  }
}
