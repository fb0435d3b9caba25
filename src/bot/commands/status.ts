import { healthEmbed } from '../replies.ts';
import type { CommandHandler } from './context.ts';

/** `/sandbox status <sandbox>`: health, table row counts, time left. */
export const status: CommandHandler = async (ctx) => {
  const ref = ctx.interaction.options.getString('sandbox', true);
  const { sandbox, health } = await ctx.manager.getStatus(ref, ctx.actor);
  await ctx.respond({ embeds: [healthEmbed(sandbox, health)] });
};
