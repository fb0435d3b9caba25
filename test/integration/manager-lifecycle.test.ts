// Lessons 3, 4 and 5: destroy frees the guild and the name, failures compensate and keep their
// audit trail, state changes are compare-and-set, and authorization lives in the manager.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { botJoined, countRows, createTestDatabase, makeManager, schemaExists, snowflake, type TestDatabase } from '../support/db.ts';
import { InjectedFault, type FaultPoint } from '../../src/sandbox/faults.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';

const op = { kind: 'operator', name: 'tester' } as const;
let db: TestDatabase;
let manager: SandboxManager;

beforeAll(async () => {
  db = await createTestDatabase();
  manager = makeManager(db);
});
afterAll(async () => db?.drop());

/** A sandbox-named schema built from the template by the provisioner (in its own transaction), outside any sandbox row. */
const buildSchema = (id: string): Promise<string> => db.prisma.$transaction((tx) => manager.provisioner.buildSchema(id, tx)).then((r) => r.schemaName);

const auditOf = async (sandboxId: string) =>
  (await db.pool.query<{ event_type: string; actor: string; details: Record<string, unknown> }>(
    'SELECT event_type, actor, details FROM sandbox_audit_log WHERE sandbox_id = $1 ORDER BY id',
    [sandboxId],
  )).rows;

describe('create', () => {
  it('creates a running sandbox with defaults and an audit trail', async () => {
    const before = Date.now();
    const r = await manager.create({ owner: 'cli:carol' }, op);
    expect(r.sandbox.status).toBe('running');
    expect(r.sandbox.name).toMatch(/^sandbox-carol-[0-9a-z]{6}$/);
    expect(r.sandbox.expiresAt.getTime() - before).toBeGreaterThanOrEqual(24 * 3_600_000 - 5_000);
    expect(r.sandbox.expiresAt.getTime() - before).toBeLessThanOrEqual(24 * 3_600_000 + 5_000);
    expect((await auditOf(r.sandbox.id)).map((a) => a.event_type)).toEqual(['created', 'schema_created', 'status_changed']);
  });

  it('caps a TTL above the maximum and says so; refuses a TTL below one hour', async () => {
    const r = await manager.create({ name: 'capped-ttl', owner: 'cli:carol', ttlHours: 10_000 }, op);
    expect(r.notices).toEqual(['TTL capped at the maximum of 168 hours (you asked for 10000).']);
    expect(Math.round((r.sandbox.expiresAt.getTime() - r.sandbox.createdAt.getTime()) / 3_600_000)).toBe(168);
    await expect(manager.create({ name: 'zero-ttl', owner: 'cli:carol', ttlHours: 0 }, op)).rejects.toMatchObject({ code: 'SANDBOX_008' });
    await expect(manager.create({ name: 'half-ttl', owner: 'cli:carol', ttlHours: 1.5 }, op)).rejects.toMatchObject({ code: 'SANDBOX_008' });
  });

  it('maps guilds the bot is in and records claims for the others', async () => {
    const [inGuild, notYet] = [snowflake(), snowflake()];
    await botJoined(db, inGuild);
    const r = await manager.create({ name: 'with-guilds', owner: 'cli:carol', guildIds: [inGuild, notYet] }, op);
    expect(r.sandbox.guildIds).toEqual([inGuild]);
    expect(r.claimedGuildIds).toEqual([notYet]);
    expect(await countRows(db, 'sandbox_guild_claims', 'guild_id = $1 AND sandbox_id = $2', [notYet, r.sandbox.id])).toBe(1);
    expect((await manager.getByGuildId(inGuild))?.id).toBe(r.sandbox.id);
  });

  it('refuses a guild that is already mapped, before writing anything', async () => {
    const guild = snowflake();
    await botJoined(db, guild);
    await manager.create({ name: 'first-holder', owner: 'cli:dave', guildIds: [guild] }, op);
    const before = await countRows(db, 'sandboxes');
    await expect(manager.create({ name: 'second-holder', owner: 'cli:dave', guildIds: [guild] }, op)).rejects.toMatchObject({ code: 'SANDBOX_003' });
    expect(await countRows(db, 'sandboxes')).toBe(before);
  });

  it('a failed create is compensated: no schema, status destroyed, quota freed, audit kept', async () => {
    const points: FaultPoint[] = ['create:after-schema', 'create:before-running', 'create:after-creating'];
    for (const point of points) {
      const faulty = makeManager(db, { faults: { hit: (p) => { if (p === point) throw new InjectedFault(p); } } });
      const owner = `cli:fault-${points.indexOf(point)}`;
      await expect(faulty.create({ name: `fails-${points.indexOf(point)}`, owner }, op)).rejects.toMatchObject({ code: 'SANDBOX_012' });
      const [row] = (await db.pool.query('SELECT id, status, schema_name, destroyed_at FROM sandboxes WHERE owner = $1', [owner])).rows;
      expect(row.status).toBe('destroyed');
      expect(row.destroyed_at).not.toBeNull();
      expect(await schemaExists(db, row.schema_name)).toBe(false);
      const audit = await auditOf(row.id);
      expect(audit.map((a) => a.event_type)).toContain('creation_failed');
      const chain = audit.filter((a) => a.event_type === 'status_changed').map((a) => `${a.details.from}>${a.details.to}`);
      expect(chain.slice(-2)).toEqual(['creating>failed', 'failed>destroyed']);
      // The name is free again.
      await expect(manager.create({ name: `fails-${points.indexOf(point)}`, owner }, op)).resolves.toMatchObject({ sandbox: { status: 'running' } });
    }
  });

  it('retries a forced schema-name collision with a new id', async () => {
    const existing = (await manager.create({ name: 'collides-with', owner: 'cli:erin' }, op)).sandbox;
    const fresh = randomUUID();
    const ids = [existing.id, fresh];
    const colliding = makeManager(db, { newId: () => ids.shift() ?? randomUUID() });
    const r = await colliding.create({ name: 'after-collision', owner: 'cli:erin' }, op);
    expect(r.sandbox.id).toBe(fresh);
    expect(r.sandbox.status).toBe('running');
    expect((await manager.getById(existing.id))?.status).toBe('running');
    expect(await countRows(db, 'sandbox_audit_log', `event_type = 'schema_name_collision' AND details->>'sandboxId' = $1`, [existing.id])).toBe(1);
  });

  it('never adopts or drops a schema that already exists under the new name', async () => {
    const id = randomUUID();
    const squatter = await buildSchema(id);
    await db.pool.query(`INSERT INTO ${squatter}.communities (name) VALUES ('not yours')`);
    const m = makeManager(db, { newId: () => id });
    await expect(m.create({ name: 'squatted', owner: 'cli:erin' }, op)).rejects.toMatchObject({ code: 'SANDBOX_005' });
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM ${squatter}.communities`)).rows[0].n).toBe(1);
    expect((await manager.getById(id))?.status).toBe('destroyed');
  });
});

describe('destroy', () => {
  it('removes mappings and schema, frees the guild and the name, and audits every step', async () => {
    const guild = snowflake();
    await botJoined(db, guild);
    const { sandbox } = await manager.create({ name: 'reusable', owner: 'cli:frank', guildIds: [guild] }, op);
    const destroyed = await manager.destroy('reusable', op);
    expect(destroyed.status).toBe('destroyed');
    expect(destroyed.destroyedAt).toBeInstanceOf(Date);
    expect(destroyed.guildIds).toEqual([]);
    expect(await schemaExists(db, sandbox.schemaName)).toBe(false);
    expect(await countRows(db, 'sandbox_guild_mapping', 'sandbox_id = $1', [sandbox.id])).toBe(0);
    // No external resources: one teardown transaction, running → destroyed.
    const tail = (await auditOf(sandbox.id)).slice(-4);
    expect(tail.map((a) => a.event_type)).toEqual(['guild_unregistered', 'schema_dropped', 'status_changed', 'destroyed']);
    expect(tail[2]!.details).toMatchObject({ from: 'running', to: 'destroyed' });

    // Idempotent.
    expect((await manager.destroy(sandbox.id, op)).status).toBe('destroyed');
    // The guild and the name are free again.
    const again = await manager.create({ name: 'reusable', owner: 'cli:frank', guildIds: [guild] }, op);
    expect(again.sandbox.guildIds).toEqual([guild]);
    expect((await manager.getByName('reusable'))?.id).toBe(again.sandbox.id);
  });

  it('refuses while a sandbox is still being created', async () => {
    const id = randomUUID();
    await db.pool.query(
      `INSERT INTO sandboxes (id, name, owner, status, schema_name, expires_at) VALUES ($1, 'half-made', 'cli:frank', 'creating', sandbox_schema_name($1), now() + interval '1 hour')`,
      [id],
    );
    await expect(manager.destroy('half-made', op)).rejects.toMatchObject({ code: 'SANDBOX_007' });
  });
});

describe('extend', () => {
  it('computes min(max(expires, now) + hours, now + max) and revives an expired sandbox', async () => {
    const { sandbox } = await manager.create({ name: 'extend-me', owner: 'cli:gina', ttlHours: 2 }, op);
    const r = await manager.extendTtl(sandbox.id, 3, op);
    expect(r.sandbox.expiresAt.getTime()).toBe(sandbox.expiresAt.getTime() + 3 * 3_600_000);
    expect(r.notices).toEqual([]);

    const capped = await manager.extendTtl(sandbox.id, 168, op);
    expect(capped.notices).toEqual(['Expiry capped at 168 hours from now.']);
    expect(capped.sandbox.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 168 * 3_600_000);

    await db.pool.query(`UPDATE sandboxes SET status = 'expired', expires_at = now() - interval '10 hours' WHERE id = $1`, [sandbox.id]);
    const revived = await manager.extendTtl(sandbox.id, 1, op);
    expect(revived.sandbox.status).toBe('running');
    const delta = revived.sandbox.expiresAt.getTime() - Date.now();
    expect(delta).toBeGreaterThan(3_500_000);
    expect(delta).toBeLessThanOrEqual(3_600_000);

    for (const bad of [0, -1, 169, 1.5, Number.NaN]) {
      await expect(manager.extendTtl(sandbox.id, bad, op)).rejects.toMatchObject({ code: 'SANDBOX_008' });
    }
  });

  it('cannot flip a destroying sandbox back to running', async () => {
    const { sandbox } = await manager.create({ name: 'no-zombies', owner: 'cli:gina' }, op);
    await db.pool.query(`UPDATE sandboxes SET status = 'destroying' WHERE id = $1`, [sandbox.id]);
    await expect(manager.extendTtl(sandbox.id, 5, op)).rejects.toMatchObject({ code: 'SANDBOX_007' });
    expect((await manager.getById(sandbox.id))?.status).toBe('destroying');
  });
});

describe('operations on a sandbox’s data', () => {
  it('extend, reset, upgrade and clone refuse a sandbox that is not running or expired, with SANDBOX_007 and its status', async () => {
    const { sandbox } = await manager.create({ name: 'not-usable', owner: 'cli:hana' }, op);
    for (const status of ['failed', 'destroying'] as const) {
      await db.pool.query(`UPDATE sandboxes SET status = $2 WHERE id = $1`, [sandbox.id, status]);
      const refusal = (verb: string) => ({
        code: 'SANDBOX_007',
        message: `not-usable is ${status}; only running or expired sandboxes can be ${verb}.`,
        details: { status },
      });
      await expect(manager.extendTtl(sandbox.id, 5, op)).rejects.toMatchObject(refusal('extended'));
      await expect(manager.reset(sandbox.id, op)).rejects.toMatchObject(refusal('reset'));
      await expect(manager.upgrade(sandbox.id, op)).rejects.toMatchObject(refusal('upgraded'));
      await expect(manager.clone(sandbox.id, 'not-usable-copy', op)).rejects.toMatchObject(refusal('cloned'));
      expect((await manager.getById(sandbox.id))?.status).toBe(status);
    }
    expect(await countRows(db, 'sandboxes', "name = 'not-usable-copy'")).toBe(0);
  });

  it('an expired sandbox can still be reset and cloned', async () => {
    const { sandbox } = await manager.create({ name: 'expired-usable', owner: 'cli:hana' }, op);
    await db.pool.query(`UPDATE sandboxes SET status = 'expired' WHERE id = $1`, [sandbox.id]);
    await expect(manager.reset(sandbox.id, op)).resolves.toMatchObject({ sandbox: { status: 'expired' } });
    await expect(manager.clone(sandbox.id, 'expired-usable-copy', op)).resolves.toMatchObject({ sandbox: { name: 'expired-usable-copy', status: 'running' } });
  });
});

describe('compare-and-set', () => {
  it('detects a lost race instead of overwriting', async () => {
    const { sandbox } = await manager.create({ name: 'raced', owner: 'cli:hal' }, op);
    await manager.transition(sandbox.id, 'running', 'expired', op);
    await expect(manager.transition(sandbox.id, 'running', 'destroying', op)).rejects.toMatchObject({ code: 'SANDBOX_010' });
    await expect(manager.transition(sandbox.id, 'expired', 'creating', op)).rejects.toMatchObject({ code: 'SANDBOX_007' });
    expect((await manager.getById(sandbox.id))?.status).toBe('expired');
  });

  it('lets exactly one of two concurrent destroys do the work', async () => {
    const { sandbox } = await manager.create({ name: 'double-destroy', owner: 'cli:hal' }, op);
    const other = makeManager(db);
    const results = await Promise.allSettled([manager.destroy(sandbox.id, op), other.destroy(sandbox.id, op)]);
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'SANDBOX_010' });
    expect(await countRows(db, 'sandbox_audit_log', `sandbox_id = $1 AND event_type = 'destroyed'`, [sandbox.id])).toBe(1);
  });
});

describe('authorization', () => {
  const alice = { kind: 'discord', id: '111111111111111111' } as const;
  const mallory = { kind: 'discord', id: '222222222222222222' } as const;
  const admin = { kind: 'discord', id: '333333333333333333' } as const;

  it('only the owner or an admin may change a sandbox', async () => {
    const m = makeManager(db, { adminIds: [admin.id] });
    const { sandbox } = await m.create({ name: 'alices' }, alice);
    expect(sandbox.owner).toBe(alice.id);
    await expect(m.create({ name: 'for-alice', owner: alice.id }, mallory)).rejects.toMatchObject({ code: 'SANDBOX_009' });
    for (const attempt of [
      () => m.destroy('alices', mallory),
      () => m.extendTtl('alices', 1, mallory),
      () => m.registerGuild('alices', snowflake(), mallory),
      () => m.getConnectionDetails('alices', mallory),
      () => m.getHealth('alices', mallory),
    ]) {
      await expect(attempt()).rejects.toMatchObject({ code: 'SANDBOX_009', message: 'alices belongs to someone else; only its owner or a bot admin may use it.' });
    }
    // Unregistering is also open to Manage Server holders of that guild, and the refusal says so.
    await expect(m.unregisterGuild('alices', snowflake(), mallory)).rejects.toMatchObject({ code: 'SANDBOX_009', message: expect.stringContaining('someone with Manage Server in server') });
    expect((await m.getByName('alices'))?.status).toBe('running');
    await expect(m.list({ owner: alice.id }, mallory)).rejects.toMatchObject({ code: 'SANDBOX_009' });
    expect(await m.list({}, mallory)).toEqual([]);
    // The admin can.
    await expect(m.extendTtl('alices', 1, admin)).resolves.toBeTruthy();
    expect((await m.destroy('alices', admin)).status).toBe('destroyed');
  });

  it('a Discord user needs Manage Server in a guild the bot is in to map it', async () => {
    const guild = snowflake();
    const managers = new Set<string>();
    const m = makeManager(db, { guilds: { isBotInGuild: async () => true, canManageGuild: async (_g, u) => managers.has(u) } });
    await botJoined(db, guild); // the bot's record of the guild, which register-guild reads in its transaction
    await m.create({ name: 'alice-guilds' }, alice);
    await expect(m.registerGuild('alice-guilds', guild, alice)).rejects.toMatchObject({ code: 'SANDBOX_009' });
    managers.add(alice.id);
    await expect(m.registerGuild('alice-guilds', guild, alice)).resolves.toMatchObject({ outcome: 'mapped' });
    await expect(m.registerGuild('alice-guilds', guild, alice)).resolves.toMatchObject({ outcome: 'already-mapped' });
  });
});

describe('health and connection details', () => {
  it('reports real checks and never a credential', async () => {
    const { sandbox } = await manager.create({ name: 'healthy-one', owner: 'cli:ivy', ttlHours: 5 }, op);
    const h = await manager.getHealth(sandbox.id, op);
    expect(h).toMatchObject({ healthy: true, status: 'running', guildCount: 0, redis: { state: 'disabled' }, schema: { state: 'ok', exists: true } });
    expect(h.ttlRemainingMs).toBeGreaterThan(4.9 * 3_600_000);
    await db.pool.query(`DROP SCHEMA ${sandbox.schemaName} CASCADE`);
    expect(await manager.getHealth(sandbox.id, op)).toMatchObject({ healthy: false, schema: { state: 'missing', exists: false } });

    const broken = makeManager(db, { redis: { ping: async () => { throw new Error('connection refused'); } } });
    expect((await broken.getHealth(sandbox.id, op)).redis).toEqual({ state: 'error', detail: 'connection refused' });

    const env = await manager.getConnectionDetails(sandbox.id, op);
    expect(env).toEqual({
      SANDBOX_ID: sandbox.id,
      SANDBOX_NAME: 'healthy-one',
      SANDBOX_SCHEMA: sandbox.schemaName,
      SANDBOX_REDIS_PREFIX: `sandbox:${sandbox.id}:`,
      SANDBOX_NATS_PREFIX: `sandbox.${sandbox.id}.`,
      SANDBOX_NATS_SUBJECT: `sandbox.${sandbox.id}.events.>`,
      SANDBOX_NATS_STREAM: `SANDBOX_${sandbox.id.replaceAll('-', '')}`,
      SANDBOX_GUILD_IDS: '',
    });
    expect(JSON.stringify(env)).not.toMatch(/password|postgres:\/\/|token/i);
  });

  it('with event routing, health includes the stream (ok with its counts, or missing) and env prints the NATS URL', async () => {
    const { sandbox } = await manager.create({ name: 'with-events', owner: 'cli:ivy', ttlHours: 5 }, op);
    const stats = new Map<string, { messages: number; bytes: number }>([[sandbox.id, { messages: 12, bytes: 4096 }]]);
    const routed = makeManager(db, { events: { natsUrl: 'nats://127.0.0.1:4222', stats: async (id) => stats.get(id) } });
    expect(await routed.getHealth(sandbox.id, op)).toMatchObject({ healthy: true, events: { state: 'ok', messages: 12, bytes: 4096 } });
    stats.delete(sandbox.id);
    expect(await routed.getHealth(sandbox.id, op)).toMatchObject({ healthy: false, events: { state: 'missing' } });
    expect((await manager.getHealth(sandbox.id, op)).events).toEqual({ state: 'disabled' });
    expect((await routed.getConnectionDetails(sandbox.id, op)).SANDBOX_NATS_URL).toBe('nats://127.0.0.1:4222');
  });
});

describe('lookups', () => {
  it('getByGuildId returns the same sandbox as getById, with all its guilds', async () => {
    const [g1, g2] = [snowflake(), snowflake()];
    await botJoined(db, g1, g2);
    const { sandbox } = await manager.create({ name: 'lookup-me', owner: 'cli:jo', guildIds: [g1, g2], metadata: { team: 'qa' } }, op);
    const byGuild = await manager.getByGuildId(g2);
    expect(byGuild).toEqual(await manager.getById(sandbox.id));
    expect(byGuild?.guildIds.sort()).toEqual([g1, g2].sort());
    expect(byGuild?.metadata).toEqual({ team: 'qa' });
    expect(await manager.getByGuildId(snowflake())).toBeNull();
  });
});
