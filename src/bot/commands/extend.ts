import { absoluteTime, noticeText, relativeTime, sandboxEmbed } from '../replies.ts';
import type { CommandHandler } from './context.ts';
import { readArgs } from './options.ts';

/** `/sandbox extend <sandbox> <hours>` */
export const extend: CommandHandler = async (ctx) => {
  const { interaction } = ctx;
  const args = readArgs(interaction, 'extend');
  const { sandbox, notices } = await ctx.manager.extendTtl(args.sandbox, args.hours, ctx.actor);
  const content = [`**${sandbox.name}** now expires ${absoluteTime(sandbox.expiresAt)} (${relativeTime(sandbox.expiresAt)}).`, noticeText(notices)].filter(Boolean).join('\n');
  await ctx.respond({ content, embeds: [sandboxEmbed(sandbox)] });
};
