import type { ChatInputCommandInteraction, InteractionEditReplyOptions } from 'discord.js';
import type { Logger } from '../../logger.ts';
import type { SandboxManager } from '../../sandbox/manager.ts';
import type { Actor } from '../../sandbox/types.ts';
import type { Confirmations } from '../confirmations.ts';

/** What every subcommand handler gets. The interaction is already deferred ephemerally. */
export interface CommandContext {
  interaction: ChatInputCommandInteraction;
  manager: SandboxManager;
  actor: Actor;
  log: Logger;
  confirmations: Confirmations;
  destroyConfirmTimeoutMs: number;
  /** Edits the deferred reply (ephemeral, no mentions). */
  respond(options: Omit<InteractionEditReplyOptions, 'allowedMentions'>): Promise<void>;
}

export type CommandHandler = (ctx: CommandContext) => Promise<void>;

/** The guild a command targets: the `guild_id` option, or the server it was run in. */
export function targetGuild(ctx: CommandContext, guildIdOption: string | undefined): string {
  return guildIdOption?.trim() || ctx.interaction.guildId || '';
}
