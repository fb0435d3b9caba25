import { listEmbed } from '../replies.ts';
import type { CommandHandler } from './context.ts';
import { readArgs } from './options.ts';

/** `/sandbox list [all]`: your own sandboxes; `all` (bot admins only) lists every owner's. */
export const list: CommandHandler = async (ctx) => {
  const { interaction, manager, actor } = ctx;
  const everyone = readArgs(interaction, 'list').all ?? false;
  const sandboxes = await manager.list(everyone ? { allOwners: true } : { owner: interaction.user.id }, actor);
  await ctx.respond({ embeds: [listEmbed(sandboxes, everyone)] });
};
