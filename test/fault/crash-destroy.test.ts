/**
 * Crash mid-destroy: a child process runs `manager.destroy` and is SIGKILLed at a named fault
 * point: after the committed `destroying` status (before any teardown), and inside the teardown
 * transaction after the schema was dropped (which the server then rolls back). The row is left
 * `destroying` with its schema, mapping and claim. The next sweep must complete the destroy:
 * schema gone, no mapping or claim, destroyed_at set, audited by system:sweeper, and the guild
 * and the name usable again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultPoint } from '../../src/sandbox/faults.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import type { Actor } from '../../src/sandbox/types.ts';
import { botJoined, countRows, createTestDatabase, makeManager, schemaExists, snowflake, type TestDatabase } from '../support/db.ts';
import { crashChild } from './support/crash.ts';
import { checkInvariants } from './support/invariants.ts';
import { sweepAt } from './support/sweep.ts';

const operator: Actor = { kind: 'operator', name: 'crash-test' };

describe('a process killed in the middle of destroy', () => {
  let db: TestDatabase;
  let manager: SandboxManager;

  beforeAll(async () => {
    db = await createTestDatabase({ poolSize: 6 });
    manager = makeManager(db);
  });
  afterAll(async () => {
    await db?.drop();
  });

  const points: FaultPoint[] = ['destroy:after-destroying', 'destroy:after-drop'];

  it.each(points)('is completed by the next sweep after a kill at %s', async (point) => {
    const mapped = snowflake();
    const claimed = snowflake(); // the bot is not in this one: it becomes a claim
    await botJoined(db, mapped);
    const name = `doomed-${point.split(':')[1]}`;
    const { sandbox } = await manager.create({ name, guildIds: [mapped, claimed] }, operator);
    expect(await schemaExists(db, sandbox.schemaName)).toBe(true);

    const crash = await crashChild({ url: db.url, point, op: 'destroy', actor: operator, name }, db.pool);
    expect(crash.signal, crash.stderr || crash.stdout).toBe('SIGKILL');
    expect(crash.sandboxId).toBe(sandbox.id);

    // What the crash left: `destroying`, with the schema, mapping and claim all still there.
    const status = async (): Promise<{ status: string; destroyed_at: Date | null }> =>
      (await db.pool.query(`SELECT status::text AS status, destroyed_at FROM sandboxes WHERE id = $1`, [sandbox.id])).rows[0];
    expect((await status()).status).toBe('destroying');
    expect(await schemaExists(db, sandbox.schemaName)).toBe(true);
    expect(await countRows(db, 'sandbox_guild_mapping', 'sandbox_id = $1', [sandbox.id])).toBe(1);
    expect(await countRows(db, 'sandbox_guild_claims', 'sandbox_id = $1', [sandbox.id])).toBe(1);

    const summary = await sweepAt({ prisma: db.prisma });
    expect(summary.failures).toEqual([]);
    expect(summary.counts.destroy_retried).toBe(1);

    const after = await status();
    expect(after.status).toBe('destroyed');
    expect(after.destroyed_at).not.toBeNull();
    expect(await schemaExists(db, sandbox.schemaName)).toBe(false);
    expect(await countRows(db, 'sandbox_guild_mapping', 'sandbox_id = $1', [sandbox.id])).toBe(0);
    expect(await countRows(db, 'sandbox_guild_claims', 'sandbox_id = $1', [sandbox.id])).toBe(0);

    const { rows: trail } = await db.pool.query<{ event_type: string; actor: string; from: string | null; to: string | null; dropped: string | null; guild: string | null }>(
      `SELECT event_type, actor, details->>'from' AS "from", details->>'to' AS "to", details->>'dropped' AS dropped, details->>'guildId' AS guild
       FROM sandbox_audit_log WHERE sandbox_id = $1 AND id > (SELECT max(id) FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'status_changed' AND details->>'to' = 'running')
       ORDER BY id`,
      [sandbox.id],
    );
    expect(trail.map((t) => `${t.event_type}${t.from ? ` ${t.from}→${t.to}` : ''} by ${t.actor}`)).toEqual([
      'status_changed running→destroying by cli:crash-test',
      'guild_unregistered by system:sweeper',
      'guild_claim_removed by system:sweeper',
      'schema_dropped by system:sweeper',
      'status_changed destroying→destroyed by system:sweeper',
      'destroyed by system:sweeper',
    ]);
    expect(trail[1]!.guild).toBe(mapped);
    expect(trail[2]!.guild).toBe(claimed);
    expect(trail[3]!.dropped).toBe('true');

    // The guild and the name are free again.
    const again = await manager.create({ name, guildIds: [mapped] }, operator);
    expect(again.sandbox.guildIds).toEqual([mapped]);
    expect(await checkInvariants(db, { maxPerOwner: manager.limits.maxPerOwner })).toEqual([]);
    await manager.destroy(again.sandbox.id, operator);
  });
});
