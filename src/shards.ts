import { envReaders } from './env-readers.ts';

/**
 * Sharding of the gateway over one or several bot processes (SHARD_COUNT, SHARD_IDS).
 * - neither set: discord.js's default, every shard (one) in this process, as before;
 * - SHARD_COUNT=N: this process runs all N shards;
 * - SHARD_COUNT=auto: this process runs the count GET /gateway/bot recommends (one process only);
 * - SHARD_COUNT=N with SHARD_IDS: this process runs those ids; other processes run the rest.
 */
export interface ShardConfig {
  count: number | 'auto' | undefined;
  /** Sorted, distinct, each < count; undefined: every shard of `count`. */
  ids: number[] | undefined;
}

/** The shards one process holds once connected. */
export interface ShardSet {
  ids: readonly number[];
  count: number;
}

/** The most shards Discord gives any bot is far below this; it bounds the ranges SHARD_IDS may expand. */
const MAX_SHARDS = 65_536;

/** The shard that receives a guild's events: `(guild_id >> 22) % shard_count` (Discord's formula). */
export function shardOf(guildId: string, count: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(count));
}

/** Whether a guild's events come to this set of shards. */
export function ownsGuild(shards: ShardSet, guildId: string): boolean {
  return shards.ids.includes(shardOf(guildId, shards.count));
}

/** Parses SHARD_COUNT and SHARD_IDS; problems are pushed onto `problems` (loadConfig reports them all at once). */
export function parseShardConfig(env: NodeJS.ProcessEnv, problems: string[]): ShardConfig {
  const { str } = envReaders(env, problems);
  const rawCount = str('SHARD_COUNT');
  const rawIds = str('SHARD_IDS');
  let count: ShardConfig['count'];
  if (rawCount === 'auto') count = 'auto';
  else if (rawCount !== undefined) {
    const n = /^\d+$/.test(rawCount) ? Number(rawCount) : NaN;
    if (Number.isInteger(n) && n >= 1 && n <= MAX_SHARDS) count = n;
    else problems.push(`SHARD_COUNT must be auto or a whole number from 1 to ${MAX_SHARDS} (got ${JSON.stringify(rawCount)})`);
  }
  if (rawIds === undefined) return { count, ids: undefined };
  if (rawCount === undefined) {
    problems.push('SHARD_IDS needs SHARD_COUNT, the total number of shards over all processes');
    return { count, ids: undefined };
  }
  if (count === 'auto') {
    problems.push('SHARD_IDS cannot be used with SHARD_COUNT=auto: processes splitting the shards must agree on a fixed SHARD_COUNT');
    return { count, ids: undefined };
  }
  const ids = parseShardIds(rawIds, count ?? MAX_SHARDS, problems);
  return { count, ids };
}

/** `0-3,8`: ids and inclusive ranges, each id below `count` and listed once. */
function parseShardIds(raw: string, count: number, problems: string[]): number[] | undefined {
  const ids = new Set<number>();
  const bad = (why: string): undefined => {
    problems.push(`SHARD_IDS ${why} (got ${JSON.stringify(raw)}; expected ids and ranges such as 0-3,8)`);
    return undefined;
  };
  for (const part of raw.split(',').map((s) => s.trim())) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m) return bad(part ? `has ${JSON.stringify(part)}, which is neither an id nor a range` : 'has an empty entry');
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) return bad(`has the range ${part}, which runs backwards`);
    if (to >= count) return bad(`has ${to}, but shard ids must be below SHARD_COUNT (${count})`);
    for (let id = from; id <= to; id++) {
      if (ids.has(id)) return bad(`lists shard ${id} twice`);
      ids.add(id);
    }
  }
  return [...ids].sort((a, b) => a - b);
}
