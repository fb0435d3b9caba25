// Several sweepers at once (two bot instances and a CLI sweep, each with its own pool and Prisma
// client) process each sandbox exactly once: counted in the audit log, per sandbox and transition.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, createTestDatabase, makeManager, snowflake, type TestDatabase } from '../support/db.ts';
import { createPool, createPrisma } from '../../src/db/database.ts';
import { silentLogger } from '../../src/logger.ts';
import { SandboxManager } from '../../src/sandbox/manager.ts';
import { runSweepOnce } from '../../src/jobs/sweep-command.ts';
import { Sweeper, type SweepSummary } from '../../src/jobs/sweeper.ts';

const HOUR = 3_600_000;
const op = { kind: 'operator', name: 'tester' } as const;
const settings = { intervalMs: 60_000, graceMs: HOUR, warnBeforeMs: HOUR, stuckAfterMs: 600_000 };
const N = 30;

let db: TestDatabase;
let now = new Date();
const clock = (): Date => new Date(now);
const pools: { end(): Promise<void> }[] = [];
let managers: SandboxManager[];
let ids: string[];

function separateManager(): SandboxManager {
  const pool = createPool(db.url, silentLogger(), 5);
  pools.push(pool);
  return new SandboxManager({ prisma: createPrisma(pool, silentLogger()), logger: silentLogger(), clock, limits: { maxPerOwner: 100 } });
}

/** Two long-running sweepers and one CLI sweep, all at once. */
async function concurrentPasses(): Promise<SweepSummary[]> {
  return Promise.all([
    new Sweeper({ manager: managers[0]!, logger: silentLogger(), settings }).runPass(),
    new Sweeper({ manager: managers[1]!, logger: silentLogger(), settings }).runPass(),
    runSweepOnce({ manager: managers[2]!, logger: silentLogger(), config: { sweeper: settings } }),
  ]);
}

/** How many status_changed audit rows each of our sandboxes has for this transition. */
async function perSandbox(from: string, to: string): Promise<number[]> {
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT (SELECT count(*)::int FROM sandbox_audit_log a
             WHERE a.sandbox_id = s.id AND a.event_type = 'status_changed' AND a.details->>'from' = $2 AND a.details->>'to' = $3) AS n
     FROM unnest($1::uuid[]) AS s(id)`,
    [ids, from, to],
  );
  return rows.map((r) => r.n);
}

const total = (summaries: SweepSummary[], action: keyof SweepSummary['counts']): number => summaries.reduce((n, s) => n + s.counts[action], 0);

beforeAll(async () => {
  db = await createTestDatabase();
  managers = [separateManager(), separateManager(), makeManager(db, { clock, limits: { maxPerOwner: 100 } })];
  ids = [];
  const owner = snowflake();
  for (let i = 0; i < N; i += 6) {
    const batch = await Promise.all(Array.from({ length: 6 }, (_, j) => managers[j % 3]!.create({ owner, ttlHours: 1 }, op)));
    ids.push(...batch.map((r) => r.sandbox.id));
  }
});
afterAll(async () => {
  for (const p of pools) await p.end();
  await db?.drop();
});

describe('concurrent sweepers', () => {
  it(`expire each of ${N} sandboxes exactly once`, async () => {
    now = new Date(now.getTime() + HOUR + 1000);
    const summaries = await concurrentPasses();
    expect(summaries.flatMap((s) => s.failures)).toEqual([]);
    expect(total(summaries, 'expired')).toBe(N);
    expect(await perSandbox('running', 'expired')).toEqual(Array(N).fill(1));
    expect(await countRows(db, 'sandboxes', "status = 'expired'")).toBe(N);
  });

  it(`destroy each of ${N} sandboxes exactly once after the grace period`, async () => {
    now = new Date(now.getTime() + HOUR);
    const summaries = await concurrentPasses();
    expect(summaries.flatMap((s) => s.failures)).toEqual([]);
    expect(total(summaries, 'destroyed')).toBe(N);
    expect(await perSandbox('expired', 'destroyed')).toEqual(Array(N).fill(1));
    expect(await countRows(db, 'sandbox_audit_log', "event_type = 'destroyed'")).toBe(N);
    expect(await countRows(db, 'sandboxes', "status = 'destroyed'")).toBe(N);
    const { rows } = await db.pool.query(`SELECT nspname FROM pg_namespace WHERE is_sandbox_schema_name(nspname::text)`);
    expect(rows).toEqual([]);
  });

  it('expire and destroy in one pass when both are due, still once each', async () => {
    const owner = snowflake();
    const fresh = await Promise.all(Array.from({ length: 9 }, (_, j) => managers[j % 3]!.create({ owner, ttlHours: 1 }, op)));
    ids = fresh.map((r) => r.sandbox.id);
    now = new Date(now.getTime() + 3 * HOUR);
    const summaries = await concurrentPasses();
    expect(summaries.flatMap((s) => s.failures)).toEqual([]);
    expect(await perSandbox('running', 'expired')).toEqual(Array(9).fill(1));
    expect(await perSandbox('expired', 'destroyed')).toEqual(Array(9).fill(1));
    expect(total(summaries, 'destroyed') + total(summaries, 'destroy_retried')).toBe(9);
  });

  it('send each expiry DM once when several bot processes sweep at the same time', async () => {
    const owners = Array.from({ length: 12 }, () => snowflake());
    const fresh = await Promise.all(owners.map((owner, j) => managers[j % 3]!.create({ owner, ttlHours: 2 }, op)));
    ids = fresh.map((r) => r.sandbox.id);
    now = new Date(now.getTime() + HOUR + 30 * 60_000); // each expires within the hour's warning window
    const dms: string[] = [];
    const notifier = { notifyExpiring: async (sandbox: { owner: string }) => void dms.push(sandbox.owner) };
    const summaries = await Promise.all(managers.map((manager) => new Sweeper({ manager, logger: silentLogger(), settings, notifier }).runPass()));
    expect(summaries.flatMap((s) => s.failures)).toEqual([]);
    expect(dms.sort()).toEqual([...owners].sort());
    expect(total(summaries, 'notified')).toBe(12);
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT (SELECT count(*)::int FROM sandbox_audit_log a WHERE a.sandbox_id = s.id AND a.event_type = 'expiry_notice_sent') AS n
       FROM unnest($1::uuid[]) AS s(id)`,
      [ids],
    );
    expect(rows.map((r) => r.n)).toEqual(Array(12).fill(1));
    // A later pass by any of them sends nothing again.
    await Promise.all(managers.map((manager) => new Sweeper({ manager, logger: silentLogger(), settings, notifier }).runPass()));
    expect(dms).toHaveLength(12);
  });
});
