import { sandboxEmbed } from '../replies.ts';
import { targetGuild, type CommandHandler } from './context.ts';

/** `/sandbox unregister-guild <sandbox> [guild_id]` */
export const unregisterGuild: CommandHandler = async (ctx) => {
  const guildId = targetGuild(ctx);
  const sandbox = await ctx.manager.unregisterGuild(ctx.interaction.options.getString('sandbox', true), guildId, ctx.actor);
  await ctx.respond({ content: `Server \`${guildId}\` is no longer registered to **${sandbox.name}**.`, embeds: [sandboxEmbed(sandbox)] });
};
