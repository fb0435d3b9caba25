import type { CommandHandler } from './context.ts';
import { readArgs } from './options.ts';

/** `/sandbox connect <sandbox>` (ephemeral): environment variables for code under test, with the sandbox's own credentials when isolation is on. */
export const connect: CommandHandler = async (ctx) => {
  const details = await ctx.manager.getConnectionDetails(readArgs(ctx.interaction, 'connect').sandbox, ctx.actor);
  const lines = Object.entries(details).map(([key, value]) => `${key}=${value}`);
  await ctx.respond({ content: `Environment for **${details.SANDBOX_NAME}**:\n\`\`\`env\n${lines.join('\n')}\n\`\`\`` });
};
