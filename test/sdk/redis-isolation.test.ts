// Redis isolation and teardown on the real server: sandbox A's ACL user is refused everything outside
// sandbox:<A>:*, and the keys driver removes every key of a sandbox and nothing else.
// A and B are sandboxes made by the manager (its ACL user made at create); every key and user here
// carries ids of this file's sandboxes and is removed afterwards.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisAclResource, RedisKeysResource } from '../../src/sandbox/redis-resources.ts';
import { IsolationFixture, OPERATOR, REDIS_URL, credentials } from './support.ts';

let fx: IsolationFixture;
let A: string;
let B: string;
const userOf = (id: string): string => `sandbox_${id.replaceAll('-', '')}`;
let admin: Redis;
let acl: RedisAclResource;
let keys: RedisKeysResource;
let worker: Redis;

async function refused(cmd: string, ...args: string[]): Promise<string> {
  try {
    await worker.call(cmd, ...args);
  } catch (err) {
    return (err as Error).message.split(' ')[0]!;
  }
  throw new Error(`not refused: ${cmd} ${args.join(' ')}`);
}

async function countKeys(pattern: string): Promise<number> {
  let n = 0;
  let cursor = '0';
  do {
    const [next, found] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    n += found.length;
    cursor = next;
  } while (cursor !== '0');
  return n;
}

beforeAll(async () => {
  admin = new Redis(REDIS_URL);
  acl = new RedisAclResource(admin, credentials);
  keys = new RedisKeysResource(admin);
  fx = await IsolationFixture.create({ resources: [acl, keys] });
  A = (await fx.sandbox()).id;
  B = (await fx.sandbox()).id;
  await admin.set(`sandbox:${B}:x`, 'b-secret');
  worker = new Redis(credentials.redisUrl(REDIS_URL, A), { enableReadyCheck: false });
  worker.on('error', () => undefined);
});

afterAll(async () => {
  worker?.disconnect();
  // The manager's destroy removes each ACL user and its keys.
  for (const id of [A, B]) if (id) await fx.manager.destroy(id, OPERATOR);
  if (A) await admin?.del(`sandbox:${A}`, `xsandbox:${A}:k`);
  await admin?.quit();
  await fx?.drop();
});

describe("sandbox A's ACL user", () => {
  it('reads and writes its own keys and channels', async () => {
    expect(await worker.call('ACL', 'WHOAMI')).toBe(userOf(A));
    await worker.set(`sandbox:${A}:k`, 'v');
    expect(await worker.get(`sandbox:${A}:k`)).toBe('v');
    expect(await worker.publish(`sandbox:${A}:chan`, 'hi')).toBe(0);
  });

  it("is refused B's keys, KEYS, FLUSHALL, FLUSHDB, CONFIG, SCAN, SELECT, DBSIZE, RANDOMKEY, SCRIPT FLUSH and B's channels", async () => {
    expect(await refused('GET', `sandbox:${B}:x`)).toBe('NOPERM');
    expect(await refused('SET', `sandbox:${B}:x`, 'overwritten')).toBe('NOPERM');
    expect(await refused('GET', 'unprefixed')).toBe('NOPERM');
    expect(await refused('KEYS', '*')).toBe('NOPERM');
    expect(await refused('FLUSHALL')).toBe('NOPERM');
    expect(await refused('FLUSHDB')).toBe('NOPERM');
    expect(await refused('CONFIG', 'GET', '*')).toBe('NOPERM');
    expect(await refused('SCAN', '0')).toBe('NOPERM');
    expect(await refused('SELECT', '1')).toBe('NOPERM');
    expect(await refused('DBSIZE')).toBe('NOPERM');
    expect(await refused('RANDOMKEY')).toBe('NOPERM');
    expect(await refused('SCRIPT', 'FLUSH')).toBe('NOPERM');
    expect(await refused('INFO')).toBe('NOPERM');
    expect(await refused('PUBLISH', `sandbox:${B}:chan`, 'x')).toBe('NOPERM');
    expect(await refused('EVAL', `return redis.call('get', KEYS[1])`, '1', `sandbox:${B}:x`)).toBe('NOPERM');
    expect(await admin.get(`sandbox:${B}:x`)).toBe('b-secret');
  });
});

describe('redis-acl driver', () => {
  it('is idempotent, lists by the exact pattern, and removing logs the user out', async () => {
    await acl.ensure(A);
    const rules = (await admin.call('ACL', 'GETUSER', userOf(A))) as unknown[];
    const asMap = new Map<string, unknown>();
    for (let i = 0; i < rules.length; i += 2) asMap.set(String(rules[i]), rules[i + 1]);
    expect(asMap.get('keys')).toBe(`~sandbox:${A}:*`);
    expect(asMap.get('channels')).toBe(`&sandbox:${A}:*`);
    expect((asMap.get('passwords') as string[]).length).toBe(1);

    await admin.call('ACL', 'SETUSER', 'sandbox_decoy', 'off');
    try {
      const listed = await acl.list();
      expect(listed).toContain(A);
      expect(listed).toContain(B);
      expect(listed.every((id) => /^[0-9a-f-]{36}$/.test(id))).toBe(true);
    } finally {
      await admin.call('ACL', 'DELUSER', 'sandbox_decoy');
    }

    const c = randomUUID();
    await acl.ensure(c);
    expect(await acl.exists(c)).toBe(true);
    const w = new Redis(credentials.redisUrl(REDIS_URL, c), { enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    w.on('error', () => undefined);
    await w.set(`sandbox:${c}:k`, '1');
    await acl.remove(c);
    await acl.remove(c);
    expect(await acl.exists(c)).toBe(false);
    await expect(w.get(`sandbox:${c}:k`)).rejects.toThrow();
    w.disconnect();
    await keys.remove(c);
  });
});

describe('redis-keys driver', () => {
  it("removes every key under sandbox:<id>: in batches, and nothing else", async () => {
    const pipe = admin.pipeline();
    for (let i = 0; i < 2500; i++) pipe.set(`sandbox:${A}:k${i}`, String(i));
    pipe.set(`sandbox:${A}`, 'no colon: not the sandbox key space');
    pipe.set(`xsandbox:${A}:k`, 'other prefix');
    await pipe.exec();
    expect(await countKeys(`sandbox:${A}:*`)).toBe(2501); // 2500 + the worker's 'k'
    expect(await keys.list()).toEqual(expect.arrayContaining([A, B]));
    expect(await keys.exists(A)).toBe(true);

    await keys.remove(A);

    expect(await countKeys(`sandbox:${A}:*`)).toBe(0);
    expect(await keys.exists(A)).toBe(false);
    expect(await keys.list()).not.toContain(A);
    expect(await admin.get(`sandbox:${B}:x`)).toBe('b-secret');
    expect(await admin.get(`sandbox:${A}`)).toBe('no colon: not the sandbox key space');
    expect(await admin.get(`xsandbox:${A}:k`)).toBe('other prefix');
    await keys.remove(A); // absent is success
  });

  it('refuses an admin client with a keyPrefix', () => {
    const prefixed = new Redis(REDIS_URL, { keyPrefix: 'p:', lazyConnect: true });
    expect(() => new RedisKeysResource(prefixed)).toThrow(/keyPrefix/);
    prefixed.disconnect();
  });
});
