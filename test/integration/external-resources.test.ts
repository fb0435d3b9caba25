/**
 * The ExternalResource wiring: ensure before the provisioning transaction, compensation when it
 * fails, best-effort resources that never fail a create, the two-phase teardown, and the
 * sweeper's retry, "ensure missing" and orphan passes. The resources are real rows in tables of
 * the test database written outside the manager's transactions (test/support/table-resource.ts).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sweeper } from '../../src/jobs/sweeper.ts';
import { silentLogger } from '../../src/logger.ts';
import { InjectedFault } from '../../src/sandbox/faults.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import { createTestDatabase, makeManager, schemaExists, snowflake, type TestDatabase } from '../support/db.ts';
import { TableResource } from '../support/table-resource.ts';

const op = { kind: 'operator', name: 'tester' } as const;

let db: TestDatabase;
let strict: TableResource;
let soft: TableResource;
let manager: SandboxManager;
const sweep = (m: SandboxManager = manager) => new Sweeper({ manager: m, logger: silentLogger() }).runPass();
const status = async (id: string): Promise<string> => (await db.pool.query(`SELECT status::text AS s FROM sandboxes WHERE id = $1`, [id])).rows[0].s;
const trail = async (id: string): Promise<string[]> =>
  (await db.pool.query(`SELECT details->>'from' AS f, details->>'to' AS t FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'status_changed' ORDER BY id`, [id])).rows.map(
    (r: { f: string; t: string }) => `${r.f}>${r.t}`,
  );

beforeAll(async () => {
  db = await createTestDatabase();
  strict = await new TableResource(db.pool, 'ext_strict', 'strict', false).install();
  soft = await new TableResource(db.pool, 'ext_soft', 'soft', true).install();
  manager = makeManager(db, { resources: [strict, soft] });
});
afterAll(async () => {
  await db?.drop();
});

describe('external resources', () => {
  it('are ensured by create and removed by a two-phase destroy', async () => {
    const { sandbox } = await manager.create({ owner: snowflake() }, op);
    expect(await strict.exists(sandbox.id)).toBe(true);
    expect(await soft.exists(sandbox.id)).toBe(true);
    await manager.destroy(sandbox.id, op);
    expect(await strict.exists(sandbox.id)).toBe(false);
    expect(await soft.exists(sandbox.id)).toBe(false);
    expect(await schemaExists(db, sandbox.schemaName)).toBe(false);
    expect(await trail(sandbox.id)).toEqual(['creating>running', 'running>destroying', 'destroying>destroyed']);
  });

  it('a failing required resource fails the create; a failing best-effort one does not, and the sweeper ensures it later', async () => {
    strict.failing.ensure = true;
    const owner = snowflake();
    await expect(manager.create({ owner, name: 'strict-fails' }, op)).rejects.toThrow();
    strict.failing.ensure = false;
    const failed = (await db.pool.query(`SELECT id FROM sandboxes WHERE name = 'strict-fails'`)).rows[0].id as string;
    expect(await status(failed)).toBe('destroyed');
    expect(await soft.exists(failed)).toBe(false);

    soft.failing.ensure = true;
    const { sandbox } = await manager.create({ owner }, op);
    soft.failing.ensure = false;
    expect(sandbox.status).toBe('running');
    expect(await soft.exists(sandbox.id)).toBe(false);
    const summary = await sweep();
    expect(summary.failures).toEqual([]);
    expect(summary.counts.external_ensured).toBeGreaterThanOrEqual(1);
    expect(await soft.exists(sandbox.id)).toBe(true);
    await manager.destroy(sandbox.id, op);
  });

  it('compensation removes what it ensured when the provisioning transaction fails', async () => {
    const failing = makeManager(db, { resources: [strict, soft], faults: { hit: (p) => { if (p === 'create:before-running') throw new InjectedFault(p); } } });
    await expect(failing.create({ owner: snowflake(), name: 'compensated' }, op)).rejects.toThrow();
    const id = (await db.pool.query(`SELECT id FROM sandboxes WHERE name = 'compensated'`)).rows[0].id as string;
    expect(await status(id)).toBe('destroyed');
    expect(await strict.exists(id)).toBe(false);
    expect(await soft.exists(id)).toBe(false);
    expect(await trail(id)).toEqual(['creating>failed', 'failed>destroyed']);
  });

  it('a failed remove leaves the sandbox destroying with a backoff, and the sweeper finishes it', async () => {
    const { sandbox } = await manager.create({ owner: snowflake() }, op);
    strict.failing.remove = true;
    await expect(manager.destroy(sandbox.id, op)).rejects.toMatchObject({ code: 'SANDBOX_006' });
    expect(await status(sandbox.id)).toBe('destroying');
    expect(await schemaExists(db, sandbox.schemaName)).toBe(false);
    strict.failing.remove = false;
    // Past the backoff.
    const later = makeManager(db, { resources: [strict, soft], clock: () => new Date(Date.now() + 3_600_000) });
    const summary = await sweep(later);
    expect(summary.counts.destroy_retried).toBe(1);
    expect(await status(sandbox.id)).toBe('destroyed');
    expect(await strict.exists(sandbox.id)).toBe(false);
  });

  it('the orphan pass removes only resources of destroyed or failed rows here, and reports unknown ids', async () => {
    const { sandbox: live } = await manager.create({ owner: snowflake() }, op);
    const { sandbox: gone } = await manager.create({ owner: snowflake() }, op);
    await manager.destroy(gone.id, op);
    await strict.ensure(gone.id); // left behind, e.g. by a server that was down during the teardown
    const stranger = randomUUID(); // another control database's sandbox on the same server
    await strict.ensure(stranger);
    const summary = await sweep();
    expect(summary.failures).toEqual([]);
    expect(await strict.exists(gone.id)).toBe(false);
    expect(await strict.exists(live.id)).toBe(true);
    expect(await strict.exists(stranger)).toBe(true);
    expect(summary.externalUnknown).toContainEqual({ kind: 'strict', sandboxId: stranger });
    await manager.destroy(live.id, op);
  });

  it('a running sweeper repeats the server-wide orphan pass only after its interval', async () => {
    const { sandbox } = await manager.create({ owner: snowflake() }, op);
    await manager.destroy(sandbox.id, op);
    const sweeper = new Sweeper({ manager, logger: silentLogger(), settings: { externalOrphanEveryMs: 3_600_000 } });
    await sweeper.runPass(); // the first pass runs it
    await strict.ensure(sandbox.id); // an orphan appears after it
    await sweeper.runPass();
    expect(await strict.exists(sandbox.id)).toBe(true); // within the hour: not looked for
    const eager = new Sweeper({ manager, logger: silentLogger(), settings: { externalOrphanEveryMs: 0 } });
    await eager.runPass();
    await strict.ensure(sandbox.id);
    await eager.runPass();
    expect(await strict.exists(sandbox.id)).toBe(false);
  });
});
