// Reset through the manager with real external resources: the sandbox's JetStream stream is purged
// (kept, emptied) and its Redis keys deleted after the commit; other sandboxes' are untouched.
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { jetstream } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { SandboxStreams } from '../../src/routing/streams.ts';
import { RedisKeysResource } from '../../src/sandbox/redis-resources.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import { createTestDatabase, makeManager, type TestDatabase } from '../support/db.ts';
import { deleteStreams, jetstreamManager, natsConnect } from '../routing/support/routing.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const op = { kind: 'operator', name: 'purge-test' } as const;

let db: TestDatabase;
let nc: NatsConnection;
let jsm: JetStreamManager;
let redis: Redis;
let manager: SandboxManager;
const ids: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 4 });
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
  redis = new Redis(REDIS_URL);
  const streams = new SandboxStreams({ jsm, logger: silentLogger(), maxAgeHours: 1, maxBytes: 1024 * 1024 });
  manager = makeManager(db, { resources: [streams, new RedisKeysResource(redis)] });
});
afterAll(async () => {
  for (const id of ids) {
    const keys = await redis.keys(`sandbox:${id}:*`);
    if (keys.length) await redis.unlink(...keys);
  }
  await deleteStreams(jsm, ids.map((id) => `SANDBOX_${id.replaceAll('-', '')}`));
  await nc?.close();
  redis?.disconnect();
  await db?.drop();
});

describe('reset purges the external resources after its commit', () => {
  it("empties the sandbox's stream and deletes its Redis keys, and nobody else's", async () => {
    const { sandbox: a } = await manager.create({ name: 'purge-a', owner: 'cli:purge' }, op);
    const { sandbox: b } = await manager.create({ name: 'purge-b', owner: 'cli:purge' }, op);
    ids.push(a.id, b.id);
    const js = jetstream(nc);
    for (const s of [a, b]) {
      await js.publish(`sandbox.${s.id}.events.one`, 'x');
      await js.publish(`sandbox.${s.id}.events.two`, 'y');
      await redis.set(`sandbox:${s.id}:counter`, '7');
      await redis.hset(`sandbox:${s.id}:profile:1`, 'name', 'alice');
    }
    await db.pool.query(`INSERT INTO "${a.schemaName}".communities (name) VALUES ('since')`);

    const r = await manager.reset(a.id, op);
    expect(r.purgeFailed).toEqual([]);
    const streamOf = (id: string) => jsm.streams.info(`SANDBOX_${id.replaceAll('-', '')}`);
    expect((await streamOf(a.id)).state.messages).toBe(0);
    expect((await streamOf(b.id)).state.messages).toBe(2);
    expect(await redis.keys(`sandbox:${a.id}:*`)).toEqual([]);
    expect((await redis.keys(`sandbox:${b.id}:*`)).sort()).toEqual([`sandbox:${b.id}:counter`, `sandbox:${b.id}:profile:1`]);
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM "${a.schemaName}".communities`)).rows).toEqual([{ n: 0 }]);
    // The stream itself is kept: new events still land in it.
    await js.publish(`sandbox.${a.id}.events.three`, 'z');
    expect((await streamOf(a.id)).state.messages).toBe(1);
  });
});
