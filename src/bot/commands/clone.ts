import { noticeText, sandboxEmbed } from '../replies.ts';
import type { CommandHandler } from './context.ts';
import { readArgs } from './options.ts';

/** `/sandbox clone <sandbox> [name]`: a new sandbox owned by the invoker, copying the source's tables and rows. */
export const clone: CommandHandler = async (ctx) => {
  const { interaction, manager, actor } = ctx;
  const args = readArgs(interaction, 'clone');
  const result = await manager.clone(args.sandbox, args.name?.trim(), actor);
  await ctx.respond({
    content: [`Cloned into **${result.sandbox.name}**.`, noticeText(result.notices)].filter(Boolean).join('\n'),
    embeds: [sandboxEmbed(result.sandbox)],
  });
};
