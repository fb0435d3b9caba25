/**
 * The bot only answers interactions, fetches members over REST and sends DMs; none of that needs
 * a guild permission, so the invite asks for none.
 */
export const BOT_PERMISSIONS = '0';

/** An invite that adds the bot to exactly this guild (the guild picker is disabled). */
export function inviteUrl(applicationId: string, guildId: string): string {
  const params = new URLSearchParams({
    client_id: applicationId,
    scope: 'bot applications.commands',
    permissions: BOT_PERMISSIONS,
    guild_id: guildId,
    disable_guild_select: 'true',
  });
  return `https://discord.com/oauth2/authorize?${params.toString()}`;
}
