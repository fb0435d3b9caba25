import { EmbedBuilder, type InteractionEditReplyOptions } from 'discord.js';
import { formatBytes } from '../format.ts';
import type { Sandbox, SandboxHealth } from '../sandbox/types.ts';

/** No reply of this bot ever pings anyone. */
export const NO_MENTIONS = { parse: [] } as const;

const STATUS_COLOURS: Record<string, number> = {
  running: 0x2ecc71,
  expired: 0xf1c40f,
  destroying: 0xe67e22,
  destroyed: 0x95a5a6,
  failed: 0xe74c3c,
};

export const relativeTime = (date: Date): string => `<t:${Math.floor(date.getTime() / 1000)}:R>`;

/** Date and time, shown in the reader's time zone. */
export const absoluteTime = (date: Date): string => `<t:${Math.floor(date.getTime() / 1000)}:f>`;

/** Escapes Discord markdown in user-chosen text (names are validated, but stay defensive). */
/** A Discord owner as a mention (rendered, never pinged: replies allow no mentions), a CLI owner as text. */
export const ownerWords = (owner: string): string => (/^[0-9]{17,20}$/.test(owner) ? `<@${owner}>` : `\`${owner}\``);

export const plain = (text: string): string => text.replace(/([\\`*_~|])/g, '\\$1');

export function sandboxEmbed(sandbox: Sandbox, title = sandbox.name): EmbedBuilder {
  const guilds = sandbox.guildIds.length ? sandbox.guildIds.map((id) => `\`${id}\``).join(', ') : 'none';
  return new EmbedBuilder()
    .setTitle(plain(title))
    .setColor(STATUS_COLOURS[sandbox.status] ?? 0x3498db)
    .addFields(
      { name: 'Status', value: sandbox.status, inline: true },
      { name: 'Schema', value: `\`${sandbox.schemaName}\``, inline: true },
      sandbox.status === 'destroyed'
        ? { name: 'Destroyed', value: sandbox.destroyedAt ? relativeTime(sandbox.destroyedAt) : 'yes', inline: true }
        : { name: sandbox.status === 'expired' ? 'Expired' : 'Expires', value: relativeTime(sandbox.expiresAt), inline: true },
      { name: 'Servers', value: guilds },
      { name: 'Template', value: sandbox.templateVersion ? `\`${plain(sandbox.templateVersion).slice(0, 200)}\`` : 'built before templates', inline: true },
    )
    .setFooter({ text: `id ${sandbox.id}` });
}

/** The event stream's state, with its message count and size when it exists. */
function eventsText(e: SandboxHealth['events']): string {
  if (e.state !== 'ok') return e.state;
  return `ok: ${e.messages ?? 0} messages, ${formatBytes(e.bytes ?? 0)}`;
}

export function healthEmbed(sandbox: Sandbox, health: SandboxHealth): EmbedBuilder {
  // A destroyed sandbox has no health and no time left; the embed says when it was destroyed.
  if (sandbox.status === 'destroyed') return sandboxEmbed(sandbox).setDescription(sandbox.destroyedAt ? `🗑️ Destroyed ${relativeTime(sandbox.destroyedAt)}` : '🗑️ Destroyed');
  const tables = health.schema.tables.length
    ? health.schema.tables.map((t) => `\`${t.tableName}\`: ${t.rowCount} rows`).join('\n')
    : `schema ${health.schema.state}`;
  const hours = Math.floor(health.ttlRemainingMs / 3_600_000);
  const minutes = Math.floor((health.ttlRemainingMs % 3_600_000) / 60_000);
  return sandboxEmbed(sandbox)
    .setDescription(health.healthy ? '✅ Healthy' : '⚠️ Not healthy')
    .addFields(
      { name: 'Tables', value: tables },
      { name: 'Time left', value: `${hours} h ${minutes} min`, inline: true },
      { name: 'Redis', value: health.redis.state, inline: true },
      { name: 'Events', value: eventsText(health.events), inline: true },
    );
}

export function listEmbed(sandboxes: Sandbox[], everyone: boolean): EmbedBuilder {
  const title = everyone ? 'All sandboxes' : 'Your sandboxes';
  if (sandboxes.length === 0) return new EmbedBuilder().setTitle(title).setDescription('No sandboxes. Create one with `/sandbox create`.');
  const lines = sandboxes.slice(0, 25).map((s) => {
    const owner = everyone ? ` · owner \`${s.owner}\`` : '';
    return `**${plain(s.name)}** · ${s.status} · expires ${relativeTime(s.expiresAt)} · ${s.guildIds.length} server(s)${owner}`;
  });
  if (sandboxes.length > 25) lines.push(`…and ${sandboxes.length - 25} more`);
  return new EmbedBuilder().setTitle(title).setDescription(lines.join('\n'));
}

/** A notice list rendered as words under the main message. */
export const noticeText = (notices: readonly string[]): string => notices.map((n) => `ℹ️ ${n}`).join('\n');

/** The reply every handler sends: ephemeral already (from the defer), never mentioning anyone. */
export function reply(options: Omit<InteractionEditReplyOptions, 'allowedMentions'>): InteractionEditReplyOptions {
  return { content: '', embeds: [], components: [], ...options, allowedMentions: NO_MENTIONS };
}
