import { inviteUrl } from '../invite.ts';
import { noticeText, sandboxEmbed } from '../replies.ts';
import type { CommandHandler } from './context.ts';

/** `/sandbox create [name] [ttl_hours] [register_this_guild]` */
export const create: CommandHandler = async (ctx) => {
  const { interaction, manager, actor } = ctx;
  const name = interaction.options.getString('name') ?? undefined;
  const ttlHours = interaction.options.getInteger('ttl_hours') ?? undefined;
  const registerHere = interaction.options.getBoolean('register_this_guild') ?? true;
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
    const holder = await manager.getByGuildId(skipped.guildId);
    notices.push(`This server is already registered to sandbox ${holder?.name ?? 'another sandbox'}, so it was not registered to ${result.sandbox.name}.`);
  }
  for (const claimed of result.claimedGuildIds) {
    notices.push(`The bot is not in server ${claimed} yet; add it with ${inviteUrl(interaction.applicationId, claimed)}`);
  }
  await ctx.respond({ content: [`Created sandbox **${result.sandbox.name}**.`, noticeText(notices)].filter(Boolean).join('\n'), embeds: [sandboxEmbed(result.sandbox)] });
};
