import { ownerWords, sandboxEmbed } from '../replies.ts';
import { targetGuild, type CommandHandler } from './context.ts';
import { readArgs } from './options.ts';

/**
 * `/sandbox unregister-guild [sandbox] [guild_id]`. Without a sandbox, the server's own mapping
 * and claims are released, whichever sandbox holds them. Anyone with Manage Server in the server
 * may release it from any sandbox (the manager decides).
 */
export const unregisterGuild: CommandHandler = async (ctx) => {
  const args = readArgs(ctx.interaction, 'unregister-guild');
  const guildId = targetGuild(ctx, args.guild_id);
  if (args.sandbox === undefined) {
    const released = await ctx.manager.releaseGuild(guildId, ctx.actor);
    const lines = released.map((r) =>
      r.kind === 'mapping'
        ? `Server \`${guildId}\` is no longer registered to **${r.name}** (owned by ${ownerWords(r.owner)}).`
        : `The pending registration of server \`${guildId}\` to **${r.name}** (owned by ${ownerWords(r.owner)}) was removed.`,
    );
    await ctx.respond({ content: lines.join('\n') });
    return;
  }
  const sandbox = await ctx.manager.unregisterGuild(args.sandbox, guildId, ctx.actor);
  await ctx.respond({ content: `Server \`${guildId}\` is no longer registered to **${sandbox.name}**.`, embeds: [sandboxEmbed(sandbox)] });
};
