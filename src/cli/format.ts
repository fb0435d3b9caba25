import { formatBytes } from '../format.ts';
import type { Sandbox, SandboxHealth } from '../sandbox/types.ts';

/** The machine-readable shape of a sandbox in `--json` output. */
export const sandboxJson = (s: Sandbox): Record<string, unknown> => ({
  id: s.id,
  name: s.name,
  owner: s.owner,
  status: s.status,
  schemaName: s.schemaName,
  guildIds: s.guildIds,
  createdAt: s.createdAt.toISOString(),
  expiresAt: s.expiresAt.toISOString(),
  destroyedAt: s.destroyedAt?.toISOString() ?? null,
  lastActivityAt: s.lastActivityAt.toISOString(),
  metadata: s.metadata,
  templateVersion: s.templateVersion ?? null,
  server: s.server,
});

export function relative(target: Date, now: Date): string {
  const ms = target.getTime() - now.getTime();
  const abs = Math.abs(ms);
  const [n, unit] = abs >= 86_400_000 ? [abs / 86_400_000, 'd'] : abs >= 3_600_000 ? [abs / 3_600_000, 'h'] : [abs / 60_000, 'm'];
  const text = `${Math.floor(n)}${unit}${unit === 'd' ? ` ${Math.floor((abs % 86_400_000) / 3_600_000)}h` : unit === 'h' ? ` ${Math.floor((abs % 3_600_000) / 60_000)}m` : ''}`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

export function sandboxText(s: Sandbox, now: Date): string {
  const rows: [string, string][] = [
    ['name', s.name],
    ['id', s.id],
    ['status', s.status],
    ['owner', s.owner],
    ['schema', s.server === 'default' ? s.schemaName : `${s.schemaName} (on server ${s.server})`],
    ['template', s.templateVersion ?? '(built before templates)'],
    ['guilds', s.guildIds.join(', ') || '(none)'],
    ['created', s.createdAt.toISOString()],
  ];
  // A destroyed sandbox no longer expires: say when it went instead.
  if (s.status === 'destroyed') rows.push(['destroyed', s.destroyedAt ? `${s.destroyedAt.toISOString()} (${relative(s.destroyedAt, now)})` : 'yes']);
  else rows.push([s.status === 'expired' ? 'expired' : 'expires', `${s.expiresAt.toISOString()} (${relative(s.expiresAt, now)})`]);
  return rows.map(([k, v]) => `${k.padEnd(10)} ${v}`).join('\n');
}

/** The new expiry after `extend`, as a sentence. */
export function extendedText(s: Sandbox, now: Date): string {
  return `${s.name} now expires ${s.expiresAt.toISOString()} (${relative(s.expiresAt, now)}).`;
}

export function healthText(h: SandboxHealth): string {
  const lines = [
    `health     ${h.healthy ? 'healthy' : 'unhealthy'}`,
    `schema     ${h.schema.state}${h.schema.exists ? ` (${h.schema.totalRows} rows)` : ''}`,
    ...h.schema.tables.map((t) => `  ${t.tableName.padEnd(12)} ${t.rowCount}`),
    `redis      ${h.redis.state}${h.redis.detail ? ` (${h.redis.detail})` : ''}`,
    `events     ${eventsText(h.events)}`,
  ];
  return lines.join('\n');
}

/** `ok (12 messages, 4.1 KiB)`, `missing`, `disabled`, `error (why)`. */
export function eventsText(e: SandboxHealth['events']): string {
  if (e.state === 'ok') return `ok (${e.messages ?? 0} messages, ${formatBytes(e.bytes ?? 0)})`;
  return `${e.state}${e.detail ? ` (${e.detail})` : ''}`;
}

/** With `servers` (several database servers configured) a SERVER column says where each schema lives. */
export function table(rows: Sandbox[], now: Date, servers = false): string {
  if (rows.length === 0) return 'No sandboxes.';
  const head = ['NAME', 'STATUS', 'OWNER', 'GUILDS', 'EXPIRES', ...(servers ? ['SERVER'] : []), 'ID'];
  const body = rows.map((s) => [s.name, s.status, s.owner, String(s.guildIds.length), s.status === 'destroyed' ? '-' : relative(s.expiresAt, now), ...(servers ? [s.server] : []), s.id]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  return [head, ...body].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
