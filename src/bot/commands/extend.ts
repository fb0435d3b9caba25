import { noticeText, relativeTime, sandboxEmbed } from '../replies.ts';
import type { CommandHandler } from './context.ts';

/** `/sandbox extend <sandbox> <hours>` */
export const extend: CommandHandler = async (ctx) => {
  const { interaction } = ctx;
  const hours = interaction.options.getInteger('hours', true);
  const { sandbox, notices } = await ctx.manager.extendTtl(interaction.options.getString('sandbox', true), hours, ctx.actor);
  const content = [`**${sandbox.name}** now expires ${relativeTime(sandbox.expiresAt)}.`, noticeText(notices)].filter(Boolean).join('\n');
  await ctx.respond({ content, embeds: [sandboxEmbed(sandbox)] });
};
