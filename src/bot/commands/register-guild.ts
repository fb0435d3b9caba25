import { inviteUrl } from '../invite.ts';
import { sandboxEmbed } from '../replies.ts';
import { targetGuild, type CommandHandler } from './context.ts';
import { readArgs } from './options.ts';

/** `/sandbox register-guild <sandbox> [guild_id]` */
export const registerGuild: CommandHandler = async (ctx) => {
  const { interaction, manager, actor } = ctx;
  const args = readArgs(interaction, 'register-guild');
  const guildId = targetGuild(ctx, args.guild_id);
  const { sandbox, outcome } = await manager.registerGuild(args.sandbox, guildId, actor);
  const content =
    outcome === 'mapped'
      ? `Server \`${guildId}\` is now registered to **${sandbox.name}**.`
      : outcome === 'already-mapped'
        ? `Server \`${guildId}\` was already registered to **${sandbox.name}**; nothing changed.`
        : [
            `The bot is not in server \`${guildId}\` yet, so the registration is pending.`,
            `Add the bot to exactly that server with this link; the server is registered to **${sandbox.name}** as soon as it joins, if you still hold Manage Server there:`,
            inviteUrl(interaction.applicationId, guildId),
          ].join('\n');
  await ctx.respond({ content, embeds: [sandboxEmbed(sandbox)] });
};
