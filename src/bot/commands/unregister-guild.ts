import { sandboxEmbed } from '../replies.ts';
import { targetGuild, type CommandHandler } from './context.ts';
import { readArgs } from './options.ts';

/** `/sandbox unregister-guild <sandbox> [guild_id]` */
export const unregisterGuild: CommandHandler = async (ctx) => {
  const args = readArgs(ctx.interaction, 'unregister-guild');
  const guildId = targetGuild(ctx, args.guild_id);
  const sandbox = await ctx.manager.unregisterGuild(args.sandbox, guildId, ctx.actor);
  await ctx.respond({ content: `Server \`${guildId}\` is no longer registered to **${sandbox.name}**.`, embeds: [sandboxEmbed(sandbox)] });
};
