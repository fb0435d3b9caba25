// connectSandbox against the real servers: the pool's search_path is exactly the sandbox's schema,
// keys and channels carry its prefix, and every way a sandbox can be unusable is a clear error that
// names it, never a fallback to public.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSandbox, SandboxConnectError, type SandboxConnection } from '../../src/sdk/index.ts';
import { PrismaClient } from '../../src/generated/prisma/client.ts';
import { RedisAclResource, RedisKeysResource } from '../../src/sandbox/redis-resources.ts';
import { createEmbeddedTestDatabase } from '../support/db.ts';
import { IsolationFixture, REDIS_URL, credentials, type TestSandbox } from './support.ts';

let fx: IsolationFixture;
let a: TestSandbox;
let admin: Redis;
let acl: RedisAclResource;
const open: SandboxConnection[] = [];

const envFor = (sb: TestSandbox, extra: Record<string, string> = {}): Record<string, string> => ({
  SANDBOX_ID: sb.id,
  SANDBOX_NAME: sb.name,
  SANDBOX_SCHEMA: sb.schema,
  SANDBOX_DATABASE_URL: fx.roleUrl(sb.id),
  SANDBOX_REDIS_URL: credentials.redisUrl(REDIS_URL, sb.id),
  ...extra,
});

async function connectError(env: Record<string, string | undefined>): Promise<SandboxConnectError> {
  try {
    open.push(await connectSandbox({ env }));
  } catch (err) {
    expect(err).toBeInstanceOf(SandboxConnectError);
    return err as SandboxConnectError;
  }
  throw new Error('connected');
}

beforeAll(async () => {
  fx = await IsolationFixture.create();
  a = await fx.sandbox();
  admin = new Redis(REDIS_URL);
  acl = new RedisAclResource(admin, credentials);
  await acl.ensure(a.id);
  // A production table with the sandbox's table name, so a fallback to public would be visible.
  await fx.db.pool.query(`CREATE TABLE public.profiles (id int, note text); INSERT INTO public.profiles VALUES (1, 'production row')`);
});

afterAll(async () => {
  await Promise.allSettled(open.map((c) => c.close()));
  await acl?.remove(a.id);
  await new RedisKeysResource(admin).remove(a.id);
  await admin?.quit();
  await fx?.drop();
});

describe('connectSandbox', () => {
  it("gives a pool whose search_path is exactly the sandbox's schema, logged in as its role", async () => {
    const sb = await connectSandbox({ env: envFor(a) });
    open.push(sb);
    expect(sb.mode).toBe('sandbox');
    const { rows } = await sb.db.query(`SELECT current_schemas(false)::text[] AS path, current_user::text AS u`);
    expect(rows[0]).toEqual({ path: [a.schema], u: `sandbox_${a.hex}` });
    // Unqualified names are the sandbox's tables, never production's public.profiles.
    expect((await sb.db.query('SELECT count(*)::int AS n FROM profiles')).rows[0].n).toBe(0);
    await sb.db.query(`INSERT INTO communities (name, discord_guild_id) VALUES ('c', '100000000000000003')`);
    expect((await fx.db.pool.query(`SELECT count(*)::int AS n FROM ${a.schema}.communities`)).rows[0].n).toBe(1);
    // Every pooled connection, not only the first.
    const clients = await Promise.all([sb.db.connect(), sb.db.connect(), sb.db.connect()]);
    for (const c of clients) expect((await c.query('SHOW search_path')).rows[0].search_path).toBe(a.schema);
    clients.forEach((c) => c.release());
  });

  it('builds a Prisma 7 client on the same schema', async () => {
    const sb = await connectSandbox({ env: envFor(a), redisUrl: false });
    open.push(sb);
    const prisma = sb.prisma(PrismaClient);
    const rows = await prisma.$queryRaw<{ path: string[] }[]>`SELECT current_schemas(false)::text[] AS path`;
    expect(rows[0]!.path).toEqual([a.schema]);
    await sb.close();
    await sb.close();
  });

  it('prefixes keys and pub/sub channels with sandbox:<id>:, as the ACL user', async () => {
    const sb = await connectSandbox({ env: envFor(a), databaseUrl: false });
    open.push(sb);
    await sb.redis.set('last-seen', '42');
    expect(await admin.get(`sandbox:${a.id}:last-seen`)).toBe('42');
    expect(await sb.redis.call('ACL', 'WHOAMI')).toBe(`sandbox_${a.hex}`);
    const got = new Promise<[string, string]>((resolve) => {
      void sb.pubsub.subscribe('chat', (message, channel) => resolve([message, channel]));
    });
    // Wait until the subscription is live, then publish through the admin client on the full name.
    for (let i = 0; i < 50 && Number((await admin.pubsub('NUMSUB', `sandbox:${a.id}:chat`))[1]) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await admin.publish(`sandbox:${a.id}:chat`, 'hello')).toBe(1);
    expect(await got).toEqual(['hello', 'chat']);
    expect(await sb.pubsub.publish('chat', 'again')).toBe(1);
    await sb.close();
  });

  it('a missing schema is an error naming the sandbox, never a fallback to public', async () => {
    const gone = await fx.sandbox('running', { role: false });
    await fx.db.pool.query('SELECT drop_sandbox_schema($1)', [gone.id]);
    // Logged in as the control role (no sandbox role exists), the only thing stopping a fallback is the check.
    const err = await connectError({ ...envFor(gone), SANDBOX_DATABASE_URL: fx.db.url, SANDBOX_REDIS_URL: '' });
    expect(err.code).toBe('SDK_SCHEMA_MISSING');
    expect(err.message).toContain(gone.id);
    expect(err.message).toContain(gone.name);
    expect(err.message).toContain(`schema sandbox_${gone.hex} does not exist`);
  });

  it("a missing schema is an error naming the sandbox when logged in as the sandbox's own role", async () => {
    const lost = await fx.sandbox();
    await fx.db.pool.query(`DROP SCHEMA sandbox_${lost.hex} CASCADE`);
    const err = await connectError({ ...envFor(lost), SANDBOX_REDIS_URL: '' });
    expect(err.code).toBe('SDK_SCHEMA_MISSING');
    expect(err.message).toContain(lost.id);
    expect(err.message).toContain(lost.name);
  });

  it('refuses a sandbox that is not running or expired', async () => {
    const d = await fx.sandbox('running');
    await fx.db.pool.query(`UPDATE sandboxes SET status = 'destroying' WHERE id = $1`, [d.id]);
    const err = await connectError({ ...envFor(d), SANDBOX_REDIS_URL: '' });
    expect(err.code).toBe('SDK_SANDBOX_NOT_LIVE');
    expect(err.message).toContain(d.id);
    expect(err.message).toContain('destroying');
  });

  it("refuses another sandbox's role and a schema that is not the id's", async () => {
    const other = await fx.sandbox();
    const wrongRole = await connectError({ ...envFor(a), SANDBOX_DATABASE_URL: fx.roleUrl(other.id), SANDBOX_REDIS_URL: '' });
    expect(wrongRole.code).toBe('SDK_WRONG_IDENTITY');
    const wrongSchema = await connectError({ ...envFor(a), SANDBOX_SCHEMA: other.schema });
    expect(wrongSchema.code).toBe('SDK_CONFIG');
    expect(wrongSchema.message).toContain(`this sandbox's schema is ${a.schema}`);
  });

  it('a Redis login that is refused says so, without the password', async () => {
    const password = credentials.redisPassword(a.id);
    const err = await connectError({ ...envFor(a), SANDBOX_REDIS_URL: `redis://sandbox_${a.hex}:${'0'.repeat(64)}@127.0.0.1:6379` });
    expect(err.message).toContain('Redis refused its login');
    expect(err.message).not.toContain(password);
  });

  it('a part that is not configured says which variable to set', async () => {
    const sb = await connectSandbox({ env: { SANDBOX_ID: a.id } });
    expect(() => sb.db).toThrow(/SANDBOX_DATABASE_URL/);
    expect(() => sb.redis).toThrow(/SANDBOX_REDIS_URL/);
    expect(() => sb.events).toThrow(/SANDBOX_NATS_URL/);
    await sb.close();
  });
});

describe('production mode (no SANDBOX_ID)', () => {
  it('uses PRODUCTION_SCHEMA, which must exist and is never created', async () => {
    const err = await connectError({ PRODUCTION_DATABASE_URL: fx.db.url, PRODUCTION_SCHEMA: 'prod_missing' });
    expect(err.code).toBe('SDK_SCHEMA_MISSING');
    expect(err.message).toContain('production');
    const { rows } = await fx.db.pool.query(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'prod_missing'`);
    expect(rows[0].n).toBe(0);

    const sb = await connectSandbox({ env: { PRODUCTION_DATABASE_URL: fx.db.url } });
    open.push(sb);
    expect(sb.mode).toBe('production');
    expect((await sb.db.query('SELECT note FROM profiles')).rows).toEqual([{ note: 'production row' }]);
    await sb.close();
  });
});

describe('the embedded database', () => {
  it('is refused with a clear error', async () => {
    const e = await createEmbeddedTestDatabase();
    try {
      const err = await connectError({ SANDBOX_ID: a.id, SANDBOX_DATABASE_URL: e.url });
      expect(err.code).toBe('SDK_EMBEDDED_DATABASE');
      expect(err.message).toMatch(/embedded database \(PGlite\)/);
      expect(err.message).toContain(a.id);
    } finally {
      await e.drop();
    }
  });
});
