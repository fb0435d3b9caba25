import { isRecord } from './http.ts';

/** `[shard_id, num_shards]` as sent in IDENTIFY. */
export type Shard = readonly [id: number, count: number];

/**
 * The shard that gets a guild's events: `(guild_id >> 22) % num_shards`. The fake computes this itself (it plays
 * Discord); an id that is not a snowflake goes to shard 0.
 */
export function shardOfGuild(guildId: string, count: number): number {
  return /^\d{1,20}$/.test(guildId) ? Number((BigInt(guildId) >> 22n) % BigInt(count)) : 0;
}

/** IDENTIFY's `shard`: absent means `[0, 1]`; null when malformed (Discord closes with 4010 Invalid shard). */
export function parseShard(raw: unknown): Shard | null {
  if (raw === undefined || raw === null) return [0, 1];
  if (!Array.isArray(raw) || raw.length !== 2) return null;
  const [id, count] = raw as unknown[];
  if (!Number.isInteger(id) || !Number.isInteger(count)) return null;
  return (id as number) >= 0 && (id as number) < (count as number) ? [id as number, count as number] : null;
}

/** The guild a dispatch belongs to: `id` for GUILD_CREATE/UPDATE/DELETE, else `guild_id`; undefined for DMs and the like. */
export function dispatchGuildId(t: string, d: unknown): string | undefined {
  if (!isRecord(d)) return undefined;
  const id = t === 'GUILD_CREATE' || t === 'GUILD_UPDATE' || t === 'GUILD_DELETE' ? d.id : d.guild_id;
  return typeof id === 'string' ? id : undefined;
}

/** Whether a guild belongs to the shard. */
export const onShard = (guildId: string, [id, count]: Shard): boolean => shardOfGuild(guildId, count) === id;
