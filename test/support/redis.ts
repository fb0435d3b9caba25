import type { Redis } from 'ioredis';

/** Deletes every key under this test file's prefix and returns the keys still there afterwards (expected: none). */
export async function deleteKeys(redis: Redis, prefix: string): Promise<string[]> {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  return redis.keys(`${prefix}*`);
}
