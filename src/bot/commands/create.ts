import { inviteUrl } from '../invite.ts';
import { noticeText, ownerWords, sandboxEmbed } from '../replies.ts';
import type { CommandHandler } from './context.ts';
import { readArgs } from './options.ts';

/** `/sandbox create [name] [ttl_hours] [register_this_guild]` */
export const create: CommandHandler = async (ctx) => {
  const { interaction, manager, actor } = ctx;
  const args = readArgs(interaction, 'create');
  const name = args.name;
  const ttlHours = args.ttl_hours;
  const registerHere = args.register_this_guild ?? true;
  const guildId = interaction.guildId;
  const result = await manager.create(
    { name: name?.trim(), ttlHours, guildIds: registerHere && guildId ? [guildId] : [] },
    actor,
    { bestEffortGuilds: true },
  );
  const notices = [...result.notices];
  for (const skipped of result.skippedGuilds) {
    if (skipped.reason === 'forbidden') {
      notices.push(`You need the Manage Server permission here to register this server, so it was not registered to ${result.sandbox.name}.`);
      continue;
    }
    if (skipped.reason === 'unverified') {
      notices.push(`Discord could not tell whether you hold the Manage Server permission here, so this server was not registered to ${result.sandbox.name}. Try /sandbox register-guild later.`);
      continue;
    }
    const holder = await manager.getByGuildId(skipped.guildId);
    const held = holder ? `sandbox ${holder.name}, owned by ${ownerWords(holder.owner)}` : 'another sandbox';
    notices.push(
      `This server is already registered to ${held}, so it was not registered to ${result.sandbox.name}. ` +
        'Anyone with the Manage Server permission here can release it with /sandbox unregister-guild.',
    );
  }
  for (const claimed of result.claimedGuildIds) {
    notices.push(`The bot is not in server ${claimed} yet; add it with ${inviteUrl(interaction.applicationId, claimed)}`);
  }
  await ctx.respond({ content: [`Created sandbox **${result.sandbox.name}**.`, noticeText(notices)].filter(Boolean).join('\n'), embeds: [sandboxEmbed(result.sandbox)] });
};
