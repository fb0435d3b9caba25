// The sweeper as reconciler: stuck rows, destroys that fail and are retried with backoff, drift
// between rows and schemas, and one failing item that must not stop the pass.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countRows, createTestDatabase, makeManager, schemaExists, snowflake, type TestDatabase } from '../support/db.ts';
import { silentLogger } from '../../src/logger.ts';
import { InjectedFault, type FaultInjector, type FaultPoint } from '../../src/sandbox/faults.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import { Sweeper } from '../../src/jobs/sweeper.ts';

const HOUR = 3_600_000;
const MIN = 60_000;
const op = { kind: 'operator', name: 'tester' } as const;
const settings = { graceMs: HOUR, warnBeforeMs: HOUR, stuckAfterMs: 10 * MIN };

let db: TestDatabase;
let now = new Date(Date.now() - 100 * HOUR);
const clock = (): Date => new Date(now);
const advance = (ms: number): void => {
  now = new Date(now.getTime() + ms);
};

/** Throws at the named points, for the sandboxes listed (all when none are). */
class Faults implements FaultInjector {
  readonly rules = new Map<FaultPoint, Set<string> | 'all'>();
  hit(point: FaultPoint, ctx: { sandboxId?: string }): void {
    const rule = this.rules.get(point);
    if (rule === 'all' || (rule && ctx.sandboxId && rule.has(ctx.sandboxId))) throw new InjectedFault(point);
  }
}
const managerFaults = new Faults();
const sweepFaults = new Faults();
let manager: SandboxManager;
const sweeper = (): Sweeper => new Sweeper({ manager, logger: silentLogger(), settings, faults: sweepFaults });

async function row(id: string): Promise<{ status: string; destroy_attempts: number; next_attempt_at: Date | null }> {
  const { rows } = await db.pool.query('SELECT status::text AS status, destroy_attempts, next_attempt_at FROM sandboxes WHERE id = $1', [id]);
  return rows[0];
}

async function transitions(id: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ details: { from: string; to: string; reason?: string }; actor: string }>(
    `SELECT details, actor FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'status_changed' ORDER BY id`,
    [id],
  );
  return rows.map((r) => `${r.details.from}->${r.details.to} by ${r.actor}${r.details.reason ? ` (${r.details.reason})` : ''}`);
}

/** A row left behind by a process that died mid-create, as it would be found after a crash. */
async function stuckRow(owner: string, status: 'pending' | 'creating', since: Date, withSchema: boolean): Promise<{ id: string; schemaName: string }> {
  const id = randomUUID();
  const { rows } = await db.pool.query<{ schema_name: string }>(
    `INSERT INTO sandboxes (id, name, owner, status, schema_name, created_at, expires_at, last_activity_at, status_changed_at)
     VALUES ($1, $2, $3, $4, sandbox_schema_name($1), $5, $5::timestamptz + interval '24 hours', $5, $5) RETURNING schema_name`,
    [id, `stuck-${id.slice(0, 8)}`, owner, status, since],
  );
  if (withSchema) await db.pool.query('SELECT create_sandbox_schema($1)', [id]);
  return { id, schemaName: rows[0]!.schema_name };
}

beforeAll(async () => {
  db = await createTestDatabase();
  manager = makeManager(db, { clock, faults: managerFaults, limits: { maxPerOwner: 2 } });
});
afterAll(async () => {
  await db?.drop();
});
beforeEach(() => {
  managerFaults.rules.clear();
  sweepFaults.rules.clear();
});

describe('stuck rows', () => {
  it('a stuck creating row becomes failed, is destroyed with its schema, and frees the owner quota', async () => {
    const owner = snowflake();
    await manager.create({ owner, ttlHours: 24 }, op);
    const stuck = await stuckRow(owner, 'creating', now, true);
    const pending = await stuckRow(snowflake(), 'pending', now, false);
    await expect(manager.create({ owner }, op)).rejects.toMatchObject({ code: 'SANDBOX_002' });

    advance(5 * MIN); // younger than the threshold: maybe still being created
    expect((await sweeper().runPass()).counts.stuck_reconciled).toBe(0);
    expect((await row(stuck.id)).status).toBe('creating');

    advance(6 * MIN);
    const summary = await sweeper().runPass();
    expect(summary.counts.stuck_reconciled).toBe(2);
    expect(summary.failures).toEqual([]);
    expect((await row(stuck.id)).status).toBe('destroyed');
    expect((await row(pending.id)).status).toBe('destroyed');
    expect(await schemaExists(db, stuck.schemaName)).toBe(false);
    expect(await transitions(stuck.id)).toEqual([
      'creating->failed by system:sweeper (stuck_creating)',
      'failed->destroyed by system:sweeper',
    ]);
    expect(await countRows(db, 'sandbox_audit_log', "sandbox_id = $1 AND event_type = 'schema_dropped'", [stuck.id])).toBe(1);

    const { sandbox } = await manager.create({ owner }, op);
    expect(sandbox.status).toBe('running');
  });

  it('a failed destroy stays destroying and is retried with backoff until it finishes', async () => {
    const { sandbox } = await manager.create({ owner: snowflake() }, op);
    managerFaults.rules.set('destroy:after-drop', new Set([sandbox.id]));
    await expect(manager.destroy(sandbox.id, op)).rejects.toMatchObject({ code: 'SANDBOX_006' });
    expect(await row(sandbox.id)).toMatchObject({ status: 'destroying', destroy_attempts: 1 });
    // The failed transaction rolled back: the schema is still there.
    expect(await schemaExists(db, sandbox.schemaName)).toBe(true);

    let summary = await sweeper().runPass(); // backoff (30 s) not over yet
    expect(summary.counts.destroy_retried).toBe(0);
    expect(summary.failures).toEqual([]);
    expect((await row(sandbox.id)).destroy_attempts).toBe(1);

    advance(31_000);
    summary = await sweeper().runPass();
    expect(summary.failures).toEqual([expect.objectContaining({ action: 'destroy_retried', sandboxId: sandbox.id, code: 'SANDBOX_006' })]);
    const second = await row(sandbox.id);
    expect(second).toMatchObject({ status: 'destroying', destroy_attempts: 2 });
    expect(second.next_attempt_at!.getTime()).toBe(now.getTime() + 60_000);

    advance(31_000); // the second backoff is 60 s
    summary = await sweeper().runPass();
    expect(summary.failures).toEqual([]);
    expect((await row(sandbox.id)).destroy_attempts).toBe(2);

    managerFaults.rules.clear();
    advance(30_000);
    summary = await sweeper().runPass();
    expect(summary.counts.destroy_retried).toBe(1);
    expect(await row(sandbox.id)).toMatchObject({ status: 'destroyed', destroy_attempts: 0, next_attempt_at: null });
    expect(await schemaExists(db, sandbox.schemaName)).toBe(false);
    expect(await countRows(db, 'sandbox_audit_log', "sandbox_id = $1 AND event_type = 'destroy_failed'", [sandbox.id])).toBe(2);
  });
});

describe('drift', () => {
  it('drops orphan schemas only, and marks a sandbox whose schema vanished failed without recreating it', async () => {
    const keep = (await manager.create({ owner: snowflake() }, op)).sandbox;
    const lost = (await manager.create({ owner: snowflake() }, op)).sandbox;
    const orphanId = randomUUID();
    const { rows } = await db.pool.query<{ name: string }>('SELECT create_sandbox_schema($1) AS name', [orphanId]);
    const orphan = rows[0]!.name;
    await db.pool.query('CREATE SCHEMA sandboxes_archive');
    await db.pool.query('CREATE SCHEMA sandbox_abc');
    await db.pool.query(`CREATE SCHEMA sandbox_${'a'.repeat(31)}`);
    await db.pool.query(`DROP SCHEMA ${lost.schemaName} CASCADE`);

    const summary = await sweeper().runPass();
    expect(summary.orphansDropped).toEqual([orphan]);
    expect(summary.counts.orphan_dropped).toBe(1);
    expect(await schemaExists(db, orphan)).toBe(false);
    for (const untouched of ['sandboxes_archive', 'sandbox_abc', `sandbox_${'a'.repeat(31)}`, keep.schemaName]) {
      expect(await schemaExists(db, untouched)).toBe(true);
    }
    expect(await countRows(db, 'sandbox_audit_log', "sandbox_id IS NULL AND event_type = 'orphan_schema_dropped' AND actor = 'system:sweeper' AND details->>'schemaName' = $1", [orphan])).toBe(1);

    expect(summary.schemaMissing).toEqual([{ sandboxId: lost.id, name: lost.name, schemaName: lost.schemaName }]);
    expect(summary.counts.schema_missing).toBe(1);
    expect((await row(lost.id)).status).toBe('failed');
    expect(await schemaExists(db, lost.schemaName)).toBe(false);
    expect(await countRows(db, 'sandbox_audit_log', "sandbox_id = $1 AND event_type = 'schema_missing' AND actor = 'system:sweeper'", [lost.id])).toBe(1);
    expect((await row(keep.id)).status).toBe('running');

    const next = await sweeper().runPass();
    expect(next.counts.failed_cleaned).toBe(1);
    expect(next.schemaMissing).toEqual([]);
    expect((await row(lost.id)).status).toBe('destroyed');
    expect(await schemaExists(db, lost.schemaName)).toBe(false);
    expect((await row(keep.id)).status).toBe('running');
    expect(await schemaExists(db, keep.schemaName)).toBe(true);
    await db.pool.query(`DROP SCHEMA sandboxes_archive, sandbox_abc, sandbox_${'a'.repeat(31)}`);
  });
});

describe('isolation of items', () => {
  it('one failing item does not stop the pass; it is reported and handled by the next pass', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await manager.create({ owner: snowflake(), ttlHours: 1 }, op)).sandbox.id);
    advance(HOUR + MIN);
    await sweeper().runPass();
    advance(HOUR);
    const failing = ids[1]!;
    sweepFaults.rules.set('sweep:before-item', new Set([failing]));

    const summary = await sweeper().runPass();
    expect(summary.counts.destroyed).toBe(2);
    expect(summary.failures).toEqual([
      { action: 'destroyed', sandboxId: failing, code: 'SANDBOX_012', message: 'injected fault at sweep:before-item' },
    ]);
    expect((await row(ids[0]!)).status).toBe('destroyed');
    expect((await row(failing)).status).toBe('expired');
    expect((await row(ids[2]!)).status).toBe('destroyed');

    sweepFaults.rules.clear();
    expect((await sweeper().runPass()).counts.destroyed).toBe(1);
    expect((await row(failing)).status).toBe('destroyed');
  });

  it('a teardown that fails during the destroy step is left destroying with a backoff, not lost', async () => {
    const { sandbox } = await manager.create({ owner: snowflake(), ttlHours: 1 }, op);
    const other = (await manager.create({ owner: snowflake(), ttlHours: 1 }, op)).sandbox;
    managerFaults.rules.set('destroy:after-drop', new Set([sandbox.id]));
    advance(2 * HOUR + 2 * MIN);
    const summary = await sweeper().runPass();
    expect(summary.counts.expired).toBe(2);
    expect(summary.counts.destroyed).toBe(1);
    expect(summary.failures).toEqual([expect.objectContaining({ action: 'destroyed', sandboxId: sandbox.id, code: 'SANDBOX_006' })]);
    expect(await row(sandbox.id)).toMatchObject({ status: 'destroying', destroy_attempts: 1 });
    expect((await row(other.id)).status).toBe('destroyed');

    managerFaults.rules.clear();
    advance(31_000);
    expect((await sweeper().runPass()).counts.destroy_retried).toBe(1);
    expect((await row(sandbox.id)).status).toBe('destroyed');
  });
});
