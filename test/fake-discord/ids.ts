import { randomBytes } from 'node:crypto';

const DISCORD_EPOCH = 1420070400000n;
let increment = 0n;

/** A Discord-style snowflake for the current time; unique within this process. */
export function snowflake(at: number = Date.now()): string {
  increment = (increment + 1n) & 0x3fffffn;
  return (((BigInt(at) - DISCORD_EPOCH) << 22n) | increment).toString();
}

/** A snowflake whose guild events go to `shard` of `count` (`(id >> 22) % count`), for placing guilds on shards. */
export function snowflakeOnShard(shard: number, count: number, at: number = Date.now()): string {
  const ms = BigInt(at) - DISCORD_EPOCH;
  const bump = (BigInt(shard) - (ms % BigInt(count)) + BigInt(count)) % BigInt(count);
  return snowflake(Number(ms + bump + DISCORD_EPOCH));
}

export function interactionToken(): string {
  return `fake-interaction-${randomBytes(24).toString('base64url')}`;
}

export function sessionId(): string {
  return randomBytes(16).toString('hex');
}
