import type { CommandHandler } from './context.ts';
import { readArgs } from './options.ts';

/** `/sandbox connect <sandbox>`: environment variables for code under test. Never credentials. */
export const connect: CommandHandler = async (ctx) => {
  const details = await ctx.manager.getConnectionDetails(readArgs(ctx.interaction, 'connect').sandbox, ctx.actor);
  const lines = Object.entries(details).map(([key, value]) => `${key}=${value}`);
  await ctx.respond({ content: `Environment for **${details.SANDBOX_NAME}**:\n\`\`\`env\n${lines.join('\n')}\n\`\`\`` });
};
