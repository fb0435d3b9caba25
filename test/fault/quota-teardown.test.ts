/**
 * Found by the chaos test: `failed` does not count against the owner's limit but `destroying`
 * does (decisions.md), so a failed sandbox whose teardown later moved it failed → destroying in
 * its own transaction pushed its owner over the limit, for as long as the teardown kept failing.
 * This reproduces it deterministically: a sandbox goes `failed` (its schema vanished), the owner
 * uses the freed slot, and the teardown of the failed sandbox then fails. The owner must never
 * hold more than the limit, and the failed sandbox must still be cleaned up by a later sweep.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InjectedFault, type FaultInjector } from '../../src/sandbox/faults.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import type { Actor } from '../../src/sandbox/types.ts';
import { createTestDatabase, makeManager, type TestDatabase } from '../support/db.ts';
import { checkInvariants, ownersWithinLimit } from './support/invariants.ts';
import { sweepAt } from './support/sweep.ts';

const operator: Actor = { kind: 'operator', name: 'quota-test' };
const owner = 'cli:quota';
const failTeardown: FaultInjector = {
  hit(point) {
    if (point === 'destroy:after-drop') throw new InjectedFault(point);
  },
};

describe('the owner limit while failed sandboxes are torn down', () => {
  let db: TestDatabase;
  let manager: SandboxManager;
  beforeAll(async () => {
    db = await createTestDatabase({ poolSize: 4 });
    manager = makeManager(db, { limits: { maxPerOwner: 1 } });
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('never lets a failed sandbox re-enter the count over the limit', async () => {
    const first = await manager.create({ name: 'quota-first', owner }, operator);
    // Drift: the schema disappears. The sweep marks the sandbox failed, which frees the slot,
    // and its teardown fails (injected), so the failed sandbox is still there afterwards.
    await db.pool.query(`DROP SCHEMA ${first.sandbox.schemaName} CASCADE`);
    const marked = await sweepAt({ prisma: db.prisma, limits: { maxPerOwner: 1 } }, { aheadMs: 0, faults: failTeardown });
    expect(marked.schemaMissing.map((s) => s.sandboxId)).toEqual([first.sandbox.id]);
    const status = async (): Promise<string> => (await db.pool.query(`SELECT status::text AS s FROM sandboxes WHERE id = $1`, [first.sandbox.id])).rows[0].s;
    expect(await status()).toBe('failed');

    // The owner uses the freed slot.
    const second = await manager.create({ name: 'quota-second', owner }, operator);
    expect(second.sandbox.status).toBe('running');

    // Cleaning the failed sandbox up fails: the owner must still be within the limit.
    const failing = makeManager(db, { limits: { maxPerOwner: 1 }, faults: failTeardown });
    await expect(failing.tearDown(first.sandbox.id, { kind: 'system', job: 'sweeper' })).rejects.toMatchObject({ code: 'SANDBOX_006' });
    expect(await ownersWithinLimit(db, 1)).toEqual([]);
    // A user's destroy of the failed sandbox, failing the same way, must not either.
    await expect(failing.destroy(first.sandbox.id, operator)).rejects.toMatchObject({ code: 'SANDBOX_006' });
    expect(await ownersWithinLimit(db, 1)).toEqual([]);

    // The next sweep, without faults, finishes the cleanup.
    const cleaned = await sweepAt({ prisma: db.prisma, limits: { maxPerOwner: 1 } }, { aheadMs: 2 * 3_600_000 });
    expect(cleaned.failures).toEqual([]);
    expect(await status()).toBe('destroyed');
    expect(await checkInvariants(db, { maxPerOwner: 1 })).toEqual([]);
  });
});
