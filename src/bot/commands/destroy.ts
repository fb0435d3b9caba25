import { ActionRowBuilder, ButtonBuilder, ButtonStyle } from 'discord.js';
import { sandboxEmbed } from '../replies.ts';
import type { CommandHandler } from './context.ts';
import { readArgs } from './options.ts';

/** `/sandbox destroy <sandbox>`: asks with Confirm/Cancel buttons, which only the invoker may press. */
export const destroy: CommandHandler = async (ctx) => {
  const { interaction, manager, actor } = ctx;
  // Resolve (and check visibility) before asking, so nobody confirms something they cannot destroy.
  const sandbox = await manager.resolveFor(readArgs(interaction, 'destroy').sandbox, actor);
  if (sandbox.status === 'destroyed') {
    await ctx.respond({ content: `**${sandbox.name}** is already destroyed.`, embeds: [sandboxEmbed(sandbox)] });
    return;
  }
  const seconds = Math.round(ctx.destroyConfirmTimeoutMs / 1000);
  const prompt = ctx.confirmations.open(interaction.user.id, ctx.destroyConfirmTimeoutMs);
  const buttons = new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder().setCustomId(prompt.confirmId).setLabel('Destroy').setStyle(ButtonStyle.Danger),
    new ButtonBuilder().setCustomId(prompt.cancelId).setLabel('Cancel').setStyle(ButtonStyle.Secondary),
  );
  await ctx.respond({
    content: `Destroy **${sandbox.name}**? Its schema \`${sandbox.schemaName}\` and all its data are dropped, and its servers are unregistered. This prompt expires in ${seconds} seconds.`,
    embeds: [sandboxEmbed(sandbox)],
    components: [buttons],
  });

  const answer = await prompt.result;
  switch (answer.choice) {
    case 'timeout':
      await ctx.respond({ content: `The confirmation timed out after ${seconds} seconds; **${sandbox.name}** was not destroyed.` });
      return;
    case 'shutdown':
      await ctx.respond({ content: `The bot is restarting; **${sandbox.name}** was not destroyed. Run the command again in a moment.` });
      return;
    case 'cancel':
      await ctx.respond({ content: `Cancelled; **${sandbox.name}** was not destroyed.`, embeds: [sandboxEmbed(sandbox)] });
      return;
    case 'confirm': {
      await ctx.respond({ content: `Destroying **${sandbox.name}**…` });
      const destroyed = await manager.destroy(sandbox.id, actor);
      await ctx.respond({ content: `Destroyed **${destroyed.name}**; its schema is gone and its servers are free again.`, embeds: [sandboxEmbed(destroyed)] });
    }
  }
};
