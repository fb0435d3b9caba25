import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { countRows, schemaExists, snowflake } from '../support/db.ts';
import { LatencyLog, addGuild, finalText, sandboxCommand, setupEnv, type Env } from './support/harness.ts';

let env: Env;
let app: App;
const latency = new LatencyLog();

beforeAll(async () => {
  env = await setupEnv();
  app = await env.start();
});

afterAll(async () => {
  latency.report('bot-create');
  await env?.close();
});

const create = (guildId: string, userId: string, options: Record<string, string | number | boolean> = {}) =>
  env.fake.sendCommand(sandboxCommand({ guildId, userId, subcommand: 'create', options }));

describe('/sandbox create', () => {
  it('defers ephemerally before touching the database, then shows the running sandbox mapped to this guild', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    await env.fake.waitForIdentify();
    // Block every statement on the sandboxes table from another connection.
    const blocker = new pg.Client({ connectionString: env.db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE sandboxes IN ACCESS EXCLUSIVE MODE');
    let released = false;
    try {
      const handle = create(guildId, ownerId, { name: 'blocked-create' });
      const first = await handle.firstResponse();
      expect(first.kind).toBe('callback');
      expect(first.body).toEqual({ type: 5, data: { flags: 64 } });
      // The bot is now waiting on the lock: its create has reached the database and cannot finish.
      await expectBlockedOnLock(env.db.url);
      expect(handle.edits).toHaveLength(0);
      await blocker.query('COMMIT');
      released = true;

      // Not recorded in the latency log: this reply waited for the lock on purpose.
      const text = await finalText(handle);
      expect(text).toContain('blocked-create');
      expect(text).toContain('running');
      expect(text).toMatch(/<t:\d+:R>/);
      expect(text).toContain(guildId);
      const edit = handle.edits.at(-1)!;
      expect(edit.allowed_mentions).toEqual({ parse: [] });
      expect(handle.message?.flags ?? 0).toBe(64);
    } finally {
      if (!released) await blocker.query('ROLLBACK').catch(() => undefined);
      await blocker.end();
    }
    const sandbox = await app.manager.getByName('blocked-create');
    expect(sandbox).toMatchObject({ status: 'running', owner: ownerId, guildIds: [guildId] });
    expect(await schemaExists(env.db, sandbox!.schemaName)).toBe(true);
    expect(await countRows(env.db, 'sandbox_guild_mapping', 'guild_id = $1 AND sandbox_id = $2', [guildId, sandbox!.id])).toBe(1);
  });

  it('says so, and still creates, when this guild is already registered to another sandbox', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    await finalText(create(guildId, ownerId, { name: 'first-here' }));
    const handle = create(guildId, ownerId, { name: 'second-here' });
    const text = await finalText(handle);
    latency.record(handle);
    expect(text).toContain('already registered to sandbox first-here');
    const second = await app.manager.getByName('second-here');
    expect(second).toMatchObject({ status: 'running', guildIds: [] });
    expect((await app.manager.getByGuildId(guildId))?.name).toBe('first-here');
  });

  it('creates without mapping, and says why, when the invoker lacks Manage Server here', async () => {
    const member = snowflake();
    const { guildId } = addGuild(env.fake, { members: [member] });
    const handle = create(guildId, member, { name: 'no-manage-here' });
    const text = await finalText(handle);
    latency.record(handle);
    expect(text).toContain('You need the Manage Server permission here to register this server');
    expect(await app.manager.getByName('no-manage-here')).toMatchObject({ status: 'running', owner: member, guildIds: [] });
    expect(await app.manager.getByGuildId(guildId)).toBeNull();
  });

  it('creates without mapping when register_this_guild is false, with a default name', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    const handle = create(guildId, ownerId, { register_this_guild: false });
    const text = await finalText(handle);
    latency.record(handle);
    const [sandbox] = await app.manager.list({ owner: ownerId });
    expect(sandbox).toBeDefined();
    expect(sandbox!.name).toMatch(/^sandbox-/);
    expect(sandbox!.guildIds).toEqual([]);
    expect(text).toContain(sandbox!.name);
    expect(await app.manager.getByGuildId(guildId)).toBeNull();
  });

  it('caps a TTL of 10000 hours at 168 and says so in words', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    const handle = create(guildId, ownerId, { name: 'long-lived', ttl_hours: 10_000 });
    const text = await finalText(handle);
    latency.record(handle);
    expect(text).toContain('TTL capped at the maximum of 168 hours');
    const sandbox = await app.manager.getByName('long-lived');
    const hours = (sandbox!.expiresAt.getTime() - sandbox!.createdAt.getTime()) / 3_600_000;
    expect(hours).toBe(168);
  });

  it.each([
    ['TTL 0', { name: 'zero-ttl', ttl_hours: 0 }, 'SANDBOX_008'],
    ['a hostile name', { name: `x'; DROP TABLE sandboxes; --$(id)` }, 'SANDBOX_008'],
    ['an uppercase unicode name', { name: 'Ünïcode-NAME' }, 'SANDBOX_008'],
  ])('refuses %s with a clear ephemeral error and writes nothing', async (_label, options, code) => {
    const { guildId, ownerId } = addGuild(env.fake);
    const before = await countRows(env.db, 'sandboxes');
    const handle = create(guildId, ownerId, options);
    const text = await finalText(handle);
    latency.record(handle);
    expect(handle.callback).toEqual({ type: 5, data: { flags: 64 } });
    expect(text).toContain(code);
    expect(text).toMatch(/^❌ /);
    expect(text).not.toMatch(/prisma|SELECT|INSERT|at .*\.ts:\d+/i);
    expect(handle.edits.at(-1)!.allowed_mentions).toEqual({ parse: [] });
    expect(await countRows(env.db, 'sandboxes')).toBe(before);
  });

  it('hides internal errors behind an id that is logged with the cause', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    await env.db.pool.query('ALTER TABLE sandbox_audit_log RENAME TO sandbox_audit_log_away');
    let text: string;
    try {
      const handle = create(guildId, ownerId, { name: 'will-break' });
      text = await finalText(handle);
    } finally {
      await env.db.pool.query('ALTER TABLE sandbox_audit_log_away RENAME TO sandbox_audit_log');
    }
    expect(text).toContain('SANDBOX_012');
    expect(text).not.toMatch(/sandbox_audit_log|relation|does not exist/);
    const id = /error id `([a-z0-9]+)`/.exec(text)?.[1];
    expect(id).toBeDefined();
    const logged = env.logs.find((l) => l.errorId === id);
    expect(logged).toBeDefined();
    expect(JSON.stringify(logged)).toContain('sandbox_audit_log');
  });

  it('refuses a sixth sandbox for one owner with the limit code', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    for (let i = 0; i < 5; i++) await finalText(create(guildId, ownerId, { name: `quota-${i}`, register_this_guild: false }));
    const text = await finalText(create(guildId, ownerId, { name: 'quota-5', register_this_guild: false }));
    expect(text).toContain('SANDBOX_002');
    expect(await countRows(env.db, 'sandboxes', "owner = $1 AND status = 'running'", [ownerId])).toBe(5);
  });
});

async function expectBlockedOnLock(url: string): Promise<void> {
  const probe = new pg.Client({ connectionString: url });
  await probe.connect();
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { rows } = await probe.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
      );
      if (rows[0].n > 0) return;
      if (Date.now() > deadline) throw new Error('the bot never reached the locked table');
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await probe.end();
  }
}
