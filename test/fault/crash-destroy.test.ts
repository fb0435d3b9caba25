/**
 * Crash mid-destroy: a child process runs `manager.destroy` and is SIGKILLed at a named fault
 * point.
 * - With no external resource the teardown is ONE transaction. A kill inside it (after the
 *   schema drop, which the server then rolls back) leaves the sandbox exactly as it was:
 *   `running`, with its schema, mapping and claim. No half-destroyed state exists to reconcile,
 *   and the next destroy completes it.
 * - With an external resource the teardown has two phases. A kill after the committed
 *   `destroying` (PostgreSQL side gone, external resource still there) leaves a `destroying` row
 *   that the next sweep completes: external resource removed, destroyed_at set, audited by
 *   system:sweeper.
 * Either way: no orphan schema, the guild and the name usable again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import type { Actor } from '../../src/sandbox/types.ts';
import { botJoined, countRows, createTestDatabase, makeManager, schemaExists, snowflake, type TestDatabase } from '../support/db.ts';
import { TableResource } from '../support/table-resource.ts';
import { crashChild } from './support/crash.ts';
import { checkInvariants } from './support/invariants.ts';
import { sweepAt } from './support/sweep.ts';

const operator: Actor = { kind: 'operator', name: 'crash-test' };
const TABLE = 'crash_external';

describe('a process killed in the middle of destroy', () => {
  let db: TestDatabase;
  let manager: SandboxManager;
  let external: TableResource;

  beforeAll(async () => {
    db = await createTestDatabase({ poolSize: 6 });
    external = await new TableResource(db.pool, TABLE).install();
    manager = makeManager(db);
  });
  afterAll(async () => {
    await db?.drop();
  });

  const status = async (id: string): Promise<{ status: string; destroyed_at: Date | null }> =>
    (await db.pool.query(`SELECT status::text AS status, destroyed_at FROM sandboxes WHERE id = $1`, [id])).rows[0];
  const transitions = async (id: string): Promise<string[]> =>
    (
      await db.pool.query<{ actor: string; from: string; to: string }>(
        `SELECT actor, details->>'from' AS "from", details->>'to' AS "to" FROM sandbox_audit_log
         WHERE sandbox_id = $1 AND event_type = 'status_changed' AND details->>'from' <> 'creating' ORDER BY id`,
        [id],
      )
    ).rows.map((t) => `${t.from}→${t.to} by ${t.actor}`);

  it('leaves the sandbox whole after a kill inside the one teardown transaction (no external resource)', async () => {
    const mapped = snowflake();
    const claimed = snowflake();
    await botJoined(db, mapped);
    const name = 'doomed-one-phase';
    const { sandbox } = await manager.create({ name, guildIds: [mapped, claimed] }, operator);

    const crash = await crashChild({ url: db.url, point: 'destroy:after-drop', op: 'destroy', actor: operator, name }, db.pool);
    expect(crash.signal, crash.stderr || crash.stdout).toBe('SIGKILL');
    expect(crash.sandboxId).toBe(sandbox.id);

    // Rolled back as a whole: still running, schema, mapping and claim all there; nothing is stuck.
    expect((await status(sandbox.id)).status).toBe('running');
    expect(await schemaExists(db, sandbox.schemaName)).toBe(true);
    expect(await countRows(db, 'sandbox_guild_mapping', 'sandbox_id = $1', [sandbox.id])).toBe(1);
    expect(await countRows(db, 'sandbox_guild_claims', 'sandbox_id = $1', [sandbox.id])).toBe(1);
    const summary = await sweepAt({ prisma: db.prisma });
    expect(summary.failures).toEqual([]);
    expect((await status(sandbox.id)).status).toBe('running');

    expect((await manager.destroy(name, operator)).status).toBe('destroyed');
    expect(await schemaExists(db, sandbox.schemaName)).toBe(false);
    expect(await transitions(sandbox.id)).toEqual(['running→destroyed by cli:crash-test']);
    const again = await manager.create({ name, guildIds: [mapped] }, operator);
    expect(again.sandbox.guildIds).toEqual([mapped]);
    expect(await checkInvariants(db, { maxPerOwner: manager.limits.maxPerOwner })).toEqual([]);
    await manager.destroy(again.sandbox.id, operator);
  });

  it('is completed by the next sweep after a kill between the two phases (external resource)', async () => {
    const two = makeManager(db, { resources: [external] });
    const mapped = snowflake();
    const claimed = snowflake();
    await botJoined(db, mapped);
    const name = 'doomed-two-phase';
    const { sandbox } = await two.create({ name, guildIds: [mapped, claimed] }, operator);
    expect(await external.exists(sandbox.id)).toBe(true);

    const crash = await crashChild({ url: db.url, point: 'destroy:after-destroying', op: 'destroy', actor: operator, name, externalTable: TABLE }, db.pool);
    expect(crash.signal, crash.stderr || crash.stdout).toBe('SIGKILL');
    expect(crash.sandboxId).toBe(sandbox.id);

    // The PostgreSQL side committed with `destroying`; the external resource is still there.
    expect((await status(sandbox.id)).status).toBe('destroying');
    expect(await schemaExists(db, sandbox.schemaName)).toBe(false);
    expect(await countRows(db, 'sandbox_guild_mapping', 'sandbox_id = $1', [sandbox.id])).toBe(0);
    expect(await countRows(db, 'sandbox_guild_claims', 'sandbox_id = $1', [sandbox.id])).toBe(0);
    expect(await external.exists(sandbox.id)).toBe(true);

    const summary = await sweepAt({ prisma: db.prisma, resources: [external] });
    expect(summary.failures).toEqual([]);
    expect(summary.counts.destroy_retried).toBe(1);
    const after = await status(sandbox.id);
    expect(after.status).toBe('destroyed');
    expect(after.destroyed_at).not.toBeNull();
    expect(await external.exists(sandbox.id)).toBe(false);
    expect(await transitions(sandbox.id)).toEqual(['running→destroying by cli:crash-test', 'destroying→destroyed by system:sweeper']);

    const again = await two.create({ name, guildIds: [mapped] }, operator);
    expect(again.sandbox.guildIds).toEqual([mapped]);
    expect(await checkInvariants(db, { maxPerOwner: two.limits.maxPerOwner })).toEqual([]);
    await two.destroy(again.sandbox.id, operator);
    expect(await external.list()).toEqual([]);
  });
});
