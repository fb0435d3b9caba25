// Teardown of an isolated sandbox against the real servers: destroy leaves no role, ACL user, Redis
// key or stream; a process killed in the middle of a teardown is finished by the next sweep; the
// sweeper puts back a missing role and drops orphan roles only where this database says so; and
// rotate-credentials re-keys the role and the ACL user.
import { randomUUID } from 'node:crypto';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { Metrics } from '../../src/metrics.ts';
import { connectNats } from '../../src/routing/nats.ts';
import { SandboxStreams } from '../../src/routing/streams.ts';
import { SandboxCredentials, Secret } from '../../src/sandbox/credentials.ts';
import { SandboxManager } from '../../src/sandbox/manager.ts';
import { RedisAclResource, RedisKeysResource } from '../../src/sandbox/redis-resources.ts';
import { SandboxRoles } from '../../src/sandbox/store/roles.ts';
import { crashChild } from '../fault/support/crash.ts';
import { sweepAt } from '../fault/support/sweep.ts';
import { IsolationFixture, NATS_URL, OPERATOR, REDIS_URL, SECRET, credentials, type TestSandbox } from './support.ts';

let fx: IsolationFixture;
let admin: Redis;
let nc: NatsConnection;
let jsm: JetStreamManager;
let deps: ConstructorParameters<typeof SandboxManager>[0];

const hexOf = (id: string): string => id.replaceAll('-', '');

async function traces(id: string): Promise<{ role: boolean; aclUser: boolean; keys: string[]; stream: boolean }> {
  const hex = hexOf(id);
  const role = (await fx.db.pool.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [`sandbox_${hex}`])).rows.length === 1;
  const aclUser = (await admin.call('ACL', 'GETUSER', `sandbox_${hex}`)) !== null;
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await admin.scan(cursor, 'MATCH', `sandbox:${id}:*`, 'COUNT', 1000);
    keys.push(...found);
    cursor = next;
  } while (cursor !== '0');
  const stream = await jsm.streams.info(`SANDBOX_${hex}`).then(
    () => true,
    () => false,
  );
  return { role, aclUser, keys, stream };
}

/** What a worker leaves behind: keys written as the sandbox's own ACL user, an event in its stream. */
async function useAsWorker(sb: TestSandbox): Promise<void> {
  const worker = new Redis(credentials.redisUrl(REDIS_URL, sb.id), { enableReadyCheck: false });
  try {
    for (let i = 0; i < 30; i++) await worker.set(`sandbox:${sb.id}:k${i}`, 'v');
  } finally {
    worker.disconnect();
  }
  const js = (await import('@nats-io/jetstream')).jetstream(nc);
  await js.publish(`sandbox.${sb.id}.events.MESSAGE_CREATE`, '{}');
}

beforeAll(async () => {
  admin = new Redis(REDIS_URL);
  nc = await connectNats(NATS_URL, 'teardown-test', silentLogger());
  jsm = await jetstreamManager(nc);
  const resources = [
    new SandboxStreams({ jsm, logger: silentLogger(), maxAgeHours: 1, maxBytes: 1024 * 1024 }),
    new RedisAclResource(admin, credentials),
    new RedisKeysResource(admin),
  ];
  fx = await IsolationFixture.create({ resources });
  deps = { prisma: fx.db.prisma, logger: silentLogger(), postgresResources: [new SandboxRoles(credentials)], resources };
});

afterAll(async () => {
  // Anything a failed assertion left: this file's sandboxes only (their ids are in this database).
  const { rows } = await fx.db.pool.query<{ id: string }>(`SELECT id::text AS id FROM sandboxes`);
  for (const { id } of rows) {
    await admin.call('ACL', 'DELUSER', `sandbox_${hexOf(id)}`).catch(() => undefined);
    await jsm.streams.delete(`SANDBOX_${hexOf(id)}`).catch(() => undefined);
  }
  await fx?.drop();
  admin?.disconnect();
  await nc?.close();
});

describe('destroying an isolated sandbox', () => {
  it('leaves no role, ACL user, Redis key or stream', async () => {
    const sb = await fx.sandbox();
    await useAsWorker(sb);
    const before = await traces(sb.id);
    expect(before).toMatchObject({ role: true, aclUser: true, stream: true });
    expect(before.keys).toHaveLength(30);

    expect((await fx.manager.destroy(sb.id, OPERATOR)).status).toBe('destroyed');
    expect(await traces(sb.id)).toEqual({ role: false, aclUser: false, keys: [], stream: false });
    const { rows } = await fx.db.pool.query(`SELECT event_type FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type IN ('role_created', 'role_dropped') ORDER BY id`, [sb.id]);
    expect(rows.map((r) => r.event_type)).toEqual(['role_created', 'role_dropped']);
  });

  it('keeps the role when the teardown transaction is killed inside (it rolls back), and the next destroy finishes', async () => {
    const sb = await fx.sandbox();
    const crash = await crashChild({ url: fx.db.url, point: 'destroy:after-drop', op: 'destroy', actor: OPERATOR, name: sb.name, isolation: { secret: SECRET, redisUrl: REDIS_URL, natsUrl: NATS_URL } }, fx.db.pool);
    expect(crash.signal, crash.stderr || crash.stdout).toBe('SIGKILL');
    expect((await fx.db.pool.query(`SELECT status::text AS s FROM sandboxes WHERE id = $1`, [sb.id])).rows[0].s).toBe('running');
    expect(await traces(sb.id)).toMatchObject({ role: true, aclUser: true, stream: true });
    await fx.manager.destroy(sb.id, OPERATOR);
    expect(await traces(sb.id)).toEqual({ role: false, aclUser: false, keys: [], stream: false });
  });

  it('is finished by the next sweep after a kill -9 between the two phases', async () => {
    const sb = await fx.sandbox();
    await useAsWorker(sb);
    const crash = await crashChild({ url: fx.db.url, point: 'destroy:after-destroying', op: 'destroy', actor: OPERATOR, name: sb.name, isolation: { secret: SECRET, redisUrl: REDIS_URL, natsUrl: NATS_URL } }, fx.db.pool);
    expect(crash.signal, crash.stderr || crash.stdout).toBe('SIGKILL');
    expect(crash.sandboxId).toBe(sb.id);
    // The PostgreSQL side committed (role gone with the schema); the ACL user, keys and stream are left.
    expect((await fx.db.pool.query(`SELECT status::text AS s FROM sandboxes WHERE id = $1`, [sb.id])).rows[0].s).toBe('destroying');
    const left = await traces(sb.id);
    expect(left).toMatchObject({ role: false, aclUser: true, stream: true });
    expect(left.keys).toHaveLength(30);

    const summary = await sweepAt(deps);
    expect(summary.failures).toEqual([]);
    expect((await fx.db.pool.query(`SELECT status::text AS s FROM sandboxes WHERE id = $1`, [sb.id])).rows[0].s).toBe('destroyed');
    expect(await traces(sb.id)).toEqual({ role: false, aclUser: false, keys: [], stream: false });
  });
});

describe('isolated sandboxes made and destroyed concurrently', () => {
  it('all succeed (the shared grants on the database and sandbox_self_status() are serialized)', async () => {
    const made = await Promise.all(Array.from({ length: 8 }, (_, i) => fx.manager.create({ name: `conc-${i}-${randomUUID().slice(0, 6)}` }, OPERATOR)));
    for (const { sandbox } of made) expect((await traces(sandbox.id)).role).toBe(true);
    const gone = await Promise.all(made.map(({ sandbox }) => fx.manager.destroy(sandbox.id, OPERATOR)));
    expect(gone.map((s) => s.status)).toEqual(Array(8).fill('destroyed'));
    for (const { sandbox } of made) expect(await traces(sandbox.id)).toEqual({ role: false, aclUser: false, keys: [], stream: false });
  });
});

describe('the sweeper and roles', () => {
  it('recreates the missing role of a live sandbox, with its grants', async () => {
    const sb = await fx.sandbox('running', { role: false });
    expect((await traces(sb.id)).role).toBe(false);
    const summary = await sweepAt(deps, { aheadMs: 0 });
    expect(summary.counts.postgres_recreated).toBeGreaterThanOrEqual(1);
    // A live sandbox with no Redis keys is normal: nothing is "ensured" for it (its ACL user and stream exist).
    expect(summary.counts.external_ensured).toBe(0);
    expect((await traces(sb.id)).role).toBe(true);
    const { rows } = await fx.db.pool.query(`SELECT has_schema_privilege($1, $2, 'USAGE,CREATE') AS ok`, [`sandbox_${sb.hex}`, sb.schema]);
    expect(rows[0].ok).toBe(true);
  });

  it('drops a role whose row here is destroyed, and only reports one with no row here', async () => {
    const sb = await fx.sandbox();
    // An older teardown that forgot the role: destroyed row, schema and role still there.
    await fx.db.pool.query(`UPDATE sandboxes SET status = 'destroyed', destroyed_at = now() WHERE id = $1`, [sb.id]);
    const stranger = randomUUID();
    const strangerRole = `sandbox_${hexOf(stranger)}`;
    await fx.db.pool.query(`CREATE ROLE ${strangerRole} NOLOGIN`);
    try {
      // Slices of 50 roles: other test files share the server, so sweep until both were seen.
      let dropped = false;
      let reported = false;
      for (let pass = 0; pass < 40 && !(dropped && reported); pass++) {
        const summary = await sweepAt(deps, { aheadMs: 0 });
        expect(summary.failures).toEqual([]);
        if (summary.externalUnknown.some((u) => u.kind === 'role' && u.sandboxId === stranger)) {
          reported = true;
          // Reported as a metric too, by kind.
          const metrics = new Metrics();
          metrics.sweeperObserver().pass!(summary);
          expect(await metrics.registry.metrics()).toMatch(/^sweeper_unknown_resources\{kind="role"\} [1-9]/m);
        }
        dropped = !(await traces(sb.id)).role;
      }
      expect(dropped).toBe(true);
      expect(reported).toBe(true);
      expect((await fx.db.pool.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [strangerRole])).rows).toHaveLength(1);
    } finally {
      await fx.db.pool.query(`DROP ROLE IF EXISTS ${strangerRole}`);
    }
  });
});

describe('rotate-credentials', () => {
  it("re-keys every live sandbox's role and ACL user with the new secret, audited", async () => {
    const sb = await fx.sandbox();
    const newSecret = 'a-rotated-credential-secret-0123456789abcdef';
    const rotatedCreds = new SandboxCredentials(new Secret(newSecret));
    const pw = async (): Promise<string> => (await fx.db.pool.query(`SELECT rolpassword FROM pg_authid WHERE rolname = $1`, [`sandbox_${sb.hex}`])).rows[0].rolpassword;
    const before = await pw();
    const manager = new SandboxManager({ ...deps, postgresResources: [new SandboxRoles(rotatedCreds)], resources: [new RedisAclResource(admin, rotatedCreds), new RedisKeysResource(admin)] });
    const r = await manager.rotateCredentials(OPERATOR);
    expect(r.failed).toEqual([]);
    expect(r.rotated).toBeGreaterThanOrEqual(1);
    expect(await pw()).not.toBe(before);

    const login = new Redis(REDIS_URL);
    try {
      await expect(login.call('AUTH', `sandbox_${sb.hex}`, credentials.redisPassword(sb.id))).rejects.toThrow(/WRONGPASS/);
      expect(await login.call('AUTH', `sandbox_${sb.hex}`, rotatedCreds.redisPassword(sb.id))).toBe('OK');
      expect(await login.set(`sandbox:${sb.id}:x`, '1')).toBe('OK');
    } finally {
      login.disconnect();
    }
    const audits = await fx.db.pool.query(`SELECT actor, details FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'credentials_rotated'`, [sb.id]);
    expect(audits.rows).toEqual([{ actor: 'cli:sdk-test', details: { kinds: ['role', 'redis-acl', 'redis-keys'] } }]);
    await manager.destroy(sb.id, OPERATOR);
  });

  it('is refused to a Discord user who is not an admin', async () => {
    await expect(fx.manager.rotateCredentials({ kind: 'discord', id: '123456789012345678' } as never)).rejects.toMatchObject({ code: 'SANDBOX_009' });
  });
});
