import { healthEmbed } from '../replies.ts';
import type { CommandHandler } from './context.ts';
import { readArgs } from './options.ts';

/** `/sandbox status <sandbox>`: health, table row counts, time left. */
export const status: CommandHandler = async (ctx) => {
  const ref = readArgs(ctx.interaction, 'status').sandbox;
  const { sandbox, health } = await ctx.manager.getStatus(ref, ctx.actor);
  await ctx.respond({ embeds: [healthEmbed(sandbox, health)] });
};
