/**
 * Crash mid-create: a child process runs `manager.create` and is SIGKILLed at a named fault
 * point (between the committed `creating` status and the schema transaction, and inside that
 * transaction after the schema DDL, and just before `running`). The crashed create holds the
 * owner's last slot. The next sweep, with its clock past the stuck threshold, must leave no
 * orphan schema, no stuck row (it ends `destroyed`), the owner's quota and the guild freed, and
 * an audit trail explaining it: the row committed as `creating` by the create, then
 * creating→failed with a reason and failed→destroyed (one teardown transaction), by system:sweeper.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, SandboxError } from '../../src/sandbox/errors.ts';
import type { FaultPoint } from '../../src/sandbox/faults.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import type { Actor } from '../../src/sandbox/types.ts';
import { botJoined, createTestDatabase, makeManager, schemaExists, snowflake, type TestDatabase } from '../support/db.ts';
import { crashChild } from './support/crash.ts';
import { checkInvariants, schemasHaveLiveRows } from './support/invariants.ts';
import { sweepAt } from './support/sweep.ts';

const operator: Actor = { kind: 'operator', name: 'crash-test' };
const LIMIT = 2;

describe('a process killed in the middle of create', () => {
  let db: TestDatabase;
  let manager: SandboxManager;

  beforeAll(async () => {
    db = await createTestDatabase({ poolSize: 6 });
    manager = makeManager(db, { limits: { maxPerOwner: LIMIT } });
  });
  afterAll(async () => {
    await db?.drop();
  });

  const points: FaultPoint[] = ['create:after-creating', 'create:after-schema', 'create:before-running'];

  it.each(points)('is reconciled by the next sweep after a kill at %s', async (point) => {
    const owner = `cli:owner-${point.replace(/[^a-z]/g, '')}`;
    const guildId = snowflake();
    await botJoined(db, guildId);
    // The owner is one short of the limit; the crashed create takes the last slot.
    await manager.create({ name: `filler-${point.split(':')[1]}`, owner }, operator);

    const crashName = `crashed-${point.split(':')[1]}`;
    const crash = await crashChild({ url: db.url, point, op: 'create', actor: operator, owner, name: crashName, guildIds: [guildId], maxPerOwner: LIMIT }, db.pool);
    expect(crash.signal, crash.stderr || crash.stdout).toBe('SIGKILL');
    const id = crash.sandboxId!;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    // What the crash left: a committed `creating` row that still holds the slot; no schema, no mapping.
    const before = await db.pool.query<{ status: string; schema_name: string }>(`SELECT status::text AS status, schema_name FROM sandboxes WHERE id = $1`, [id]);
    expect(before.rows[0]!.status).toBe('creating');
    const schemaName = before.rows[0]!.schema_name;
    expect(await schemaExists(db, schemaName)).toBe(false);
    expect((await db.pool.query('SELECT 1 FROM sandbox_guild_mapping WHERE guild_id = $1', [guildId])).rowCount).toBe(0);
    const refused = await manager.create({ owner }, operator).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SandboxError);
    expect((refused as SandboxError).code).toBe(ErrorCode.LimitExceeded);

    const summary = await sweepAt({ prisma: db.prisma, limits: { maxPerOwner: LIMIT } });
    expect(summary.failures).toEqual([]);
    expect(summary.counts.stuck_reconciled).toBe(1);

    // No stuck row: destroyed, with destroyed_at; no orphan schema anywhere.
    const after = await db.pool.query<{ status: string; destroyed_at: Date | null }>(`SELECT status::text AS status, destroyed_at FROM sandboxes WHERE id = $1`, [id]);
    expect(after.rows[0]!.status).toBe('destroyed');
    expect(after.rows[0]!.destroyed_at).not.toBeNull();
    expect(await schemaExists(db, schemaName)).toBe(false);
    expect(await schemasHaveLiveRows(db)).toEqual([]);

    // The audit trail explains it.
    const { rows: trail } = await db.pool.query<{ actor: string; from: string; to: string; reason: string | null }>(
      `SELECT actor, details->>'from' AS "from", details->>'to' AS "to", details->>'reason' AS reason
       FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'status_changed' ORDER BY id`,
      [id],
    );
    // The row was committed directly as `creating` by the crashed create (one commit before any DDL).
    const created = await db.pool.query(`SELECT actor, details->>'status' AS status FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'created'`, [id]);
    expect(created.rows).toEqual([{ actor: 'cli:crash-test', status: 'creating' }]);
    expect(trail.map((t) => `${t.from}→${t.to} by ${t.actor}`)).toEqual([
      'creating→failed by system:sweeper',
      'failed→destroyed by system:sweeper',
    ]);
    expect(trail[0]!.reason).toBe('stuck_creating');
    const dropped = await db.pool.query(`SELECT 1 FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'schema_dropped' AND actor = 'system:sweeper'`, [id]);
    expect(dropped.rowCount).toBe(1);

    // The quota, the name and the guild are free again: the same create now succeeds.
    const retry = await manager.create({ name: crashName, owner, guildIds: [guildId] }, operator);
    expect(retry.sandbox.status).toBe('running');
    expect(retry.sandbox.guildIds).toEqual([guildId]);
    expect(await checkInvariants(db, { maxPerOwner: LIMIT })).toEqual([]);
  });
});
