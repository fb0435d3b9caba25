import { ActionRowBuilder, ButtonBuilder, ButtonStyle } from 'discord.js';
import { sandboxEmbed } from '../replies.ts';
import type { CommandHandler } from './context.ts';
import { readArgs } from './options.ts';

/** `/sandbox reset <sandbox>`: asks with Reset/Cancel buttons (only the invoker may press them), then resets. */
export const reset: CommandHandler = async (ctx) => {
  const { interaction, manager, actor } = ctx;
  // Resolve (and check ownership) before asking, so nobody confirms something they cannot reset.
  const sandbox = await manager.resolveFor(readArgs(interaction, 'reset').sandbox, actor);
  if (sandbox.status !== 'running' && sandbox.status !== 'expired') {
    await ctx.respond({ content: `**${sandbox.name}** is ${sandbox.status}; only running or expired sandboxes can be reset.`, embeds: [sandboxEmbed(sandbox)] });
    return;
  }
  const seconds = Math.round(ctx.destroyConfirmTimeoutMs / 1000);
  const prompt = ctx.confirmations.open(interaction.user.id, ctx.destroyConfirmTimeoutMs);
  const buttons = new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder().setCustomId(prompt.confirmId).setLabel('Reset').setStyle(ButtonStyle.Danger),
    new ButtonBuilder().setCustomId(prompt.cancelId).setLabel('Cancel').setStyle(ButtonStyle.Secondary),
  );
  await ctx.respond({
    content: `Reset **${sandbox.name}**? Every table in \`${sandbox.schemaName}\` goes back to the template and its seed rows; everything written since is lost, and its event stream and Redis keys are emptied. This prompt expires in ${seconds} seconds.`,
    embeds: [sandboxEmbed(sandbox)],
    components: [buttons],
  });

  const answer = await prompt.result;
  switch (answer.choice) {
    case 'timeout':
      await ctx.respond({ content: `The confirmation timed out after ${seconds} seconds; **${sandbox.name}** was not reset.` });
      return;
    case 'shutdown':
      await ctx.respond({ content: `The bot is restarting; **${sandbox.name}** was not reset. Run the command again in a moment.` });
      return;
    case 'cancel':
      await ctx.respond({ content: `Cancelled; **${sandbox.name}** was not reset.`, embeds: [sandboxEmbed(sandbox)] });
      return;
    case 'confirm': {
      await ctx.respond({ content: `Resetting **${sandbox.name}**…` });
      const r = await manager.reset(sandbox.id, actor);
      const notes = r.purgeFailed.map((k) => `ℹ️ The ${k} could not be emptied; the tables were reset.`);
      await ctx.respond({ content: [`Reset **${r.sandbox.name}** to template version \`${r.sandbox.templateVersion ?? '?'}\`.`, ...notes].join('\n'), embeds: [sandboxEmbed(r.sandbox)] });
    }
  }
};
