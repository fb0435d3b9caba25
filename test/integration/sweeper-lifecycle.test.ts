// The sweeper's everyday work: expire, destroy after the grace period, revive on extend, and warn
// owners by DM exactly once per expiry. The clock is injected; nothing sleeps.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { botJoined, countRows, createTestDatabase, makeManager, schemaExists, snowflake, type TestDatabase } from '../support/db.ts';
import { createPool, createPrisma } from '../../src/db/database.ts';
import { silentLogger } from '../../src/logger.ts';
import { SandboxManager } from '../../src/sandbox/manager.ts';
import type { Sandbox } from '../../src/sandbox/types.ts';
import { runSweepOnce } from '../../src/jobs/sweep-command.ts';
import { Sweeper, type ExpiryNotifier } from '../../src/jobs/sweeper.ts';

const HOUR = 3_600_000;
const MIN = 60_000;
const op = { kind: 'operator', name: 'tester' } as const;
const settings = { graceMs: HOUR, warnBeforeMs: HOUR, stuckAfterMs: 10 * MIN };

let db: TestDatabase;
let now = new Date();
const clock = (): Date => new Date(now);
const advance = (ms: number): void => {
  now = new Date(now.getTime() + ms);
};
let manager: SandboxManager;
const pools: { end(): Promise<void> }[] = [];

/** Another manager on its own pool and Prisma client, as another bot instance would be. */
function otherManager(): SandboxManager {
  const pool = createPool(db.url, silentLogger(), 4);
  pools.push(pool);
  return new SandboxManager({ prisma: createPrisma(pool, silentLogger()), logger: silentLogger(), clock, limits: { maxPerOwner: 50 } });
}

/** A notifier that records every DM, and fails for the owners listed in `failFor`. */
function recordingNotifier(failFor: Set<string> = new Set()): ExpiryNotifier & { sent: Sandbox[]; attempts: Sandbox[] } {
  const sent: Sandbox[] = [];
  const attempts: Sandbox[] = [];
  return {
    sent,
    attempts,
    async notifyExpiring(sandbox) {
      attempts.push(sandbox);
      if (failFor.has(sandbox.owner)) throw new Error('Cannot send messages to this user');
      sent.push(sandbox);
    },
  };
}

const sweeper = (notifier?: ExpiryNotifier, m: SandboxManager = manager): Sweeper =>
  new Sweeper({ manager: m, logger: silentLogger(), settings, notifier });

async function statusOf(id: string): Promise<string> {
  const { rows } = await db.pool.query<{ status: string }>('SELECT status::text AS status FROM sandboxes WHERE id = $1', [id]);
  return rows[0]!.status;
}

async function transitions(id: string): Promise<{ from: string; to: string; actor: string; reason?: string }[]> {
  const { rows } = await db.pool.query<{ details: { from: string; to: string; reason?: string }; actor: string }>(
    `SELECT details, actor FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'status_changed' ORDER BY id`,
    [id],
  );
  return rows.map((r) => ({ from: r.details.from, to: r.details.to, actor: r.actor, ...(r.details.reason ? { reason: r.details.reason } : {}) }));
}

beforeAll(async () => {
  db = await createTestDatabase();
  manager = makeManager(db, { clock, limits: { maxPerOwner: 50 } });
});
afterAll(async () => {
  for (const p of pools) await p.end();
  await db?.drop();
});
beforeEach(async () => {
  // Each test starts with no sandbox due for anything: older ones are far in the past and destroyed.
  advance(1000 * HOUR);
  const summary = await sweeper().runPass();
  expect(summary.failures).toEqual([]);
  expect(await countRows(db, 'sandboxes', "status <> 'destroyed'")).toBe(0);
});

describe('expiry and grace', () => {
  it('expires a running sandbox past its TTL, then destroys it after the grace period', async () => {
    const guildId = snowflake();
    await botJoined(db, guildId);
    const owner = snowflake();
    const { sandbox } = await manager.create({ owner, ttlHours: 2, guildIds: [guildId] }, op);

    advance(2 * HOUR - MIN);
    expect((await sweeper().runPass()).counts.expired).toBe(0);
    expect(await statusOf(sandbox.id)).toBe('running');

    advance(2 * MIN);
    const first = await sweeper().runPass();
    expect(first.counts.expired).toBe(1);
    expect(first.failures).toEqual([]);
    expect(await statusOf(sandbox.id)).toBe('expired');
    // During the grace period the schema and the guild mapping are still there.
    expect(await schemaExists(db, sandbox.schemaName)).toBe(true);
    expect(await countRows(db, 'sandbox_guild_mapping', 'guild_id = $1', [guildId])).toBe(1);

    advance(HOUR - 2 * MIN);
    expect((await sweeper().runPass()).counts.destroyed).toBe(0);
    expect(await statusOf(sandbox.id)).toBe('expired');

    advance(2 * MIN);
    const second = await sweeper().runPass();
    expect(second.counts.destroyed).toBe(1);
    expect(second.failures).toEqual([]);
    expect(await statusOf(sandbox.id)).toBe('destroyed');
    expect(await schemaExists(db, sandbox.schemaName)).toBe(false);
    expect(await countRows(db, 'sandbox_guild_mapping', 'sandbox_id = $1', [sandbox.id])).toBe(0);
    expect((await transitions(sandbox.id)).slice(-2)).toEqual([
      { from: 'running', to: 'expired', actor: 'system:sweeper', reason: 'ttl_elapsed' },
      { from: 'expired', to: 'destroyed', actor: 'system:sweeper', reason: 'grace_elapsed' },
    ]);
    expect(await countRows(db, 'sandbox_audit_log', "sandbox_id = $1 AND actor = 'system:sweeper' AND event_type = 'guild_unregistered'", [sandbox.id])).toBe(1);
    expect(await countRows(db, 'sandbox_audit_log', "sandbox_id = $1 AND actor = 'system:sweeper' AND event_type = 'schema_dropped'", [sandbox.id])).toBe(1);
    // The guild is free again.
    const again = await manager.create({ owner, guildIds: [guildId] }, op);
    expect(again.sandbox.guildIds).toEqual([guildId]);
  });

  it('an extend during the grace period revives the sandbox, and the next pass leaves it alone', async () => {
    const owner = snowflake();
    const { sandbox } = await manager.create({ owner, ttlHours: 1 }, op);
    advance(HOUR + MIN);
    await sweeper().runPass();
    expect(await statusOf(sandbox.id)).toBe('expired');

    const { sandbox: revived } = await manager.extendTtl(sandbox.name, 3, { kind: 'discord', id: owner });
    expect(revived.status).toBe('running');

    advance(HOUR); // past the original expiry + grace
    const summary = await sweeper().runPass();
    expect(summary.counts.destroyed).toBe(0);
    expect(summary.counts.expired).toBe(0);
    expect(await statusOf(sandbox.id)).toBe('running');
    expect(await schemaExists(db, sandbox.schemaName)).toBe(true);
  });
});

describe('expiry DMs', () => {
  it('DMs a Discord owner once inside the warning window, never a cli: owner', async () => {
    const owner = snowflake();
    const { sandbox } = await manager.create({ owner, ttlHours: 3 }, op);
    const cli = await manager.create({ owner: 'cli:bob', ttlHours: 3 }, op);
    const notifier = recordingNotifier();

    advance(90 * MIN); // expires in 1.5 h: outside the 1 h window
    await sweeper(notifier).runPass();
    expect(notifier.attempts).toHaveLength(0);

    advance(45 * MIN); // expires in 45 min
    const summary = await sweeper(notifier).runPass();
    expect(summary.counts.notified).toBe(1);
    expect(notifier.sent.map((s) => s.id)).toEqual([sandbox.id]);
    expect(notifier.sent[0]!.owner).toBe(owner);

    advance(5 * MIN);
    await sweeper(notifier).runPass();
    expect(notifier.attempts.map((s) => s.id)).toEqual([sandbox.id]);
    expect(await countRows(db, 'sandbox_audit_log', "sandbox_id = $1 AND event_type = 'expiry_notice_sent' AND actor = 'system:sweeper'", [sandbox.id])).toBe(1);
    expect(await countRows(db, 'sandbox_audit_log', "sandbox_id = $1 AND event_type LIKE 'expiry_notice%'", [cli.sandbox.id])).toBe(0);
  });

  it('two sweepers passing at once DM each owner once', async () => {
    const owners = Array.from({ length: 6 }, snowflake);
    const ids = [];
    for (const owner of owners) ids.push((await manager.create({ owner, ttlHours: 1 }, op)).sandbox.id);
    const a = recordingNotifier();
    const b = recordingNotifier();
    advance(30 * MIN);
    const summaries = await Promise.all([sweeper(a).runPass(), sweeper(b, otherManager()).runPass(), sweeper(a).runPass()]);
    const dmed = [...a.sent, ...b.sent].map((s) => s.id).sort();
    expect(dmed).toEqual([...ids].sort());
    expect(summaries.reduce((n, s) => n + s.counts.notified, 0)).toBe(6);
  });

  it('skips rows another sweeper is claiming right now, without waiting for it or DMing them', async () => {
    const busy = (await manager.create({ owner: snowflake(), ttlHours: 1 }, op)).sandbox;
    const free = (await manager.create({ owner: snowflake(), ttlHours: 1 }, op)).sandbox;
    advance(30 * MIN);
    const other = await db.pool.connect();
    try {
      // Another sweeper, mid-claim: it holds the row and will mark it notified.
      await other.query('BEGIN');
      await other.query('SELECT id FROM sandboxes WHERE id = $1 FOR UPDATE', [busy.id]);
      const notifier = recordingNotifier();
      const summary = await sweeper(notifier).runPass();
      expect(notifier.sent.map((s) => s.id)).toEqual([free.id]);
      expect(summary.counts.notified).toBe(1);
      await other.query('UPDATE sandboxes SET expiry_notified_at = $2 WHERE id = $1', [busy.id, now]);
      await other.query('COMMIT');
      await sweeper(notifier).runPass();
      expect(notifier.sent.map((s) => s.id)).toEqual([free.id]);
    } finally {
      other.release();
    }
  }, 20_000);

  it('a failed DM is logged and counted, and the pass goes on', async () => {
    const unreachable = snowflake();
    const reachable = snowflake();
    const bad = (await manager.create({ owner: unreachable, ttlHours: 1 }, op)).sandbox;
    const good = (await manager.create({ owner: reachable, ttlHours: 1 }, op)).sandbox;
    // The failing DM comes first, so the one after it proves the step went on.
    await db.pool.query('UPDATE sandboxes SET expires_at = expires_at - interval \'1 minute\' WHERE id = $1', [bad.id]);
    const broken = (await manager.create({ owner: 'cli:carol', ttlHours: 1 }, op)).sandbox;
    await manager.transition(broken.id, 'running', 'failed', op, { reason: 'test' });
    const notifier = recordingNotifier(new Set([unreachable]));

    advance(30 * MIN);
    const summary = await sweeper(notifier).runPass();
    expect(notifier.sent.map((s) => s.id)).toEqual([good.id]);
    expect(summary.counts.notified).toBe(1);
    expect(summary.failures).toEqual([expect.objectContaining({ action: 'notified', sandboxId: bad.id, code: 'SANDBOX_011' })]);
    // Later steps of the same pass still ran.
    expect(summary.counts.failed_cleaned).toBe(1);
    expect(await statusOf(broken.id)).toBe('destroyed');
    expect(await countRows(db, 'sandbox_audit_log', "sandbox_id = $1 AND event_type = 'expiry_notice_failed'", [bad.id])).toBe(1);
    // Not retried every pass (documented: DM failures are almost always permanent).
    advance(MIN);
    await sweeper(notifier).runPass();
    expect(notifier.attempts.filter((s) => s.id === bad.id)).toHaveLength(1);
  });

  it('warns again after an extend', async () => {
    const owner = snowflake();
    const { sandbox } = await manager.create({ owner, ttlHours: 1 }, op);
    const notifier = recordingNotifier();
    advance(30 * MIN);
    await sweeper(notifier).runPass();
    expect(notifier.sent).toHaveLength(1);

    await manager.extendTtl(sandbox.id, 1, { kind: 'discord', id: owner }); // now expires in 1.5 h
    await sweeper(notifier).runPass();
    expect(notifier.sent).toHaveLength(1);

    advance(45 * MIN); // 45 min left
    await sweeper(notifier).runPass();
    expect(notifier.sent.map((s) => s.id)).toEqual([sandbox.id, sandbox.id]);
  });

  it('a sweep without a notifier (the CLI) leaves the DM for the bot', async () => {
    const owner = snowflake();
    const { sandbox } = await manager.create({ owner, ttlHours: 1 }, op);
    advance(30 * MIN);
    const summary = await runSweepOnce({ manager, logger: silentLogger(), config: { sweeper: { ...settings, intervalMs: 60_000 } } });
    expect(summary.notificationsEnabled).toBe(false);
    expect(JSON.parse(JSON.stringify(summary))).toEqual(summary);
    const { rows } = await db.pool.query('SELECT expiry_notified_at FROM sandboxes WHERE id = $1', [sandbox.id]);
    expect(rows[0].expiry_notified_at).toBeNull();

    const notifier = recordingNotifier();
    await sweeper(notifier).runPass();
    expect(notifier.sent.map((s) => s.id)).toEqual([sandbox.id]);
  });

  it('holds no lock while the DM is in flight', async () => {
    const owner = snowflake();
    const { sandbox } = await manager.create({ owner, ttlHours: 1 }, op);
    let release!: () => void;
    let entered!: () => void;
    const inDm = new Promise<void>((r) => (entered = r));
    const notifier: ExpiryNotifier = {
      notifyExpiring: () => {
        entered();
        return new Promise<void>((r) => (release = r));
      },
    };
    advance(30 * MIN);
    const pass = sweeper(notifier).runPass();
    await inDm;
    // Another instance changes the same row while the DM is pending: it would block on a held lock.
    await otherManager().extendTtl(sandbox.id, 2, { kind: 'discord', id: owner });
    release();
    const summary = await pass;
    expect(summary.counts.notified).toBe(1);
  }, 20_000);
});

describe('scheduling', () => {
  it('start() runs passes until stop(), which waits for the running pass', async () => {
    const { sandbox } = await manager.create({ owner: snowflake(), ttlHours: 1 }, op);
    advance(HOUR + MIN);
    const s = new Sweeper({ manager, logger: silentLogger(), settings: { ...settings, intervalMs: 10 } });
    let passes = 0;
    const original = s.runPass.bind(s);
    const done = new Promise<void>((resolve) => {
      s.runPass = async () => {
        const r = await original();
        if (++passes === 2) resolve();
        return r;
      };
    });
    s.start();
    await done;
    await s.stop();
    expect(await statusOf(sandbox.id)).toBe('expired');
    // Stopped: a sandbox that expires now is left alone, however many intervals go by.
    const later = (await manager.create({ owner: snowflake(), ttlHours: 1 }, op)).sandbox;
    advance(HOUR + MIN);
    await new Promise((r) => setTimeout(r, 100));
    expect(await statusOf(later.id)).toBe('running');
  });

  it('a pass never overlaps itself', async () => {
    const s = sweeper();
    const [a, b] = [s.runPass(), s.runPass()];
    expect(a).toBe(b);
    await a;
  });
});

describe('route change log', () => {
  it('a pass prunes change rows older than an hour, keeping the newest and every recent one', async () => {
    const [g1, g2, g3] = [snowflake(), snowflake(), snowflake()];
    await botJoined(db, g1, g2, g3);
    await manager.create({ name: 'route-log', owner: 'cli:rl', guildIds: [g1, g2] }, op);
    await db.pool.query(`UPDATE sandbox_route_change SET changed_at = now() - interval '2 hours'`);
    await manager.registerGuild('route-log', g3, op);
    const { rows: before } = await db.pool.query<{ n: string; max: string }>('SELECT count(*)::text AS n, max(version)::text AS max FROM sandbox_route_change');
    expect(Number(before[0]!.n)).toBeGreaterThanOrEqual(3);
    const summary = await sweeper().runPass();
    expect(summary.counts.route_changes_pruned).toBe(Number(before[0]!.n) - 1);
    const { rows: after } = await db.pool.query<{ version: string; guild_id: string }>('SELECT version::text AS version, guild_id FROM sandbox_route_change');
    expect(after).toEqual([{ version: before[0]!.max, guild_id: g3 }]);
  });
});
