import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { DEFAULT_SWEEPER_SETTINGS, Sweeper } from '../../src/jobs/sweeper.ts';
import { silentLogger } from '../../src/logger.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import type { QueryCounter } from '../database.ts';
import { timeOnce } from '../measure.ts';
import { seedSandboxes, liveSandboxes } from '../seed.ts';
import { summarize } from '../stats.ts';
import { runLifecycle, type Comparison } from './lifecycle.ts';

/** One control-plane pass timed at one size: median time, and statements per pass (the most seen). */
export interface PassTiming {
  p50Ms: number;
  statements: number;
  /** Rows listed, actions taken, orphans found or dropped: whatever the pass produces. */
  items: number;
  failures: number;
}

export interface ScalePoint {
  /** Live sandboxes before the timed creates (seeded rows; the bench's own are destroyed again). */
  existing: number;
  create: Comparison;
  destroy: Comparison;
  list: PassTiming;
  sweep: PassTiming;
  /** The orphan lookup one sweeper pass makes: a slice of driftSlice sandbox-pattern schemas (gated: flat). */
  findOrphans: PassTiming;
  /** One lookup over every sandbox-pattern schema (reported: grows with the number of schemas). */
  findOrphansFull: PassTiming;
  cleanupOrphans: PassTiming;
}

/** Samples of the per-pass orphan lookup at each size (see runScale). */
const ORPHAN_SLICE_REPS = 61;

export interface ScaleOptions {
  sizes: number[];
  creates: number;
  reps: number;
  orphans: number;
  seedBatch: number;
}

/** Times `fn` `reps` times (after one untimed call), counting the statements each call sends through the manager's pool. */
async function timePass<R>(counter: QueryCounter, reps: number, fn: () => Promise<R>, describe: (r: R) => { items: number; failures: number }): Promise<PassTiming> {
  await fn();
  const times: number[] = [];
  let statements = 0;
  let last = { items: 0, failures: 0 };
  for (let i = 0; i < reps; i++) {
    const { result, ms } = await timeOnce(() => counter.count(fn));
    times.push(ms);
    statements = Math.max(statements, result.statements);
    last = describe(result.result);
  }
  return { p50Ms: summarize(times).p50, statements, ...last };
}

/** Empty schemas matching the sandbox pattern with no row: what the orphan cleanup must drop. */
async function plantOrphans(pool: pg.Pool, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await pool.query(`CREATE SCHEMA sandbox_${randomBytes(16).toString('hex')}`);
}

/**
 * At each size: seed up to it in bulk, then time creates (next to the DDL floor), list (all
 * owners), one idle sweeper pass and orphan cleanup, with statement counts per pass.
 */
export async function runScale(
  manager: SandboxManager,
  counter: QueryCounter,
  pool: pg.Pool,
  floorPool: pg.Pool,
  opts: ScaleOptions,
  progress: (line: string) => void,
): Promise<ScalePoint[]> {
  const sweeper = new Sweeper({ manager, logger: silentLogger() });
  const points: ScalePoint[] = [];
  let seeded = 0;
  for (const size of opts.sizes) {
    if (size > seeded) {
      const { ms } = await timeOnce(() => seedSandboxes(pool, seeded + 1, size, opts.seedBatch));
      progress(`seeded ${size - seeded} sandboxes in ${(ms / 1000).toFixed(1)} s`);
      seeded = size;
    }
    const existing = await liveSandboxes(pool);
    const { create, destroy } = await runLifecycle(manager, floorPool, { mode: `scale ${size}`, total: opts.creates, concurrency: 1 });
    const list = await timePass(counter, opts.reps, () => manager.list(), (rows) => ({ items: rows.length, failures: 0 }));
    const sweep = await timePass(counter, opts.reps, () => sweeper.runPass(), (s) => ({
      items: Object.values(s.counts).reduce((a, b) => a + b, 0),
      failures: s.failures.length,
    }));
    const find: number[] = [];
    const findFull: number[] = [];
    let findFullStatements = 0;
    let foundFull = 0;
    const clean: number[] = [];
    let findStatements = 0;
    let cleanStatements = 0;
    let found = 0;
    let dropped = 0;
    let failed = 0;
    // The gated per-pass lookup is about 1 ms, so it gets ORPHAN_SLICE_REPS samples; the full lookup
    // and the cleanup get `reps`. Each sample follows one untimed lookup: the first statement after
    // the planting session's DDL also pays for applying that DDL's catalog invalidations, which in a
    // sweeper pass the earlier steps' statements have already absorbed.
    for (let i = 0; i < Math.max(opts.reps, ORPHAN_SLICE_REPS); i++) {
      await plantOrphans(floorPool, opts.orphans);
      await manager.provisioner.findOrphanedSchemas(undefined, { limit: DEFAULT_SWEEPER_SETTINGS.driftSlice });
      const f = await timeOnce(() => counter.count(() => manager.provisioner.findOrphanedSchemas(undefined, { limit: DEFAULT_SWEEPER_SETTINGS.driftSlice })));
      find.push(f.ms);
      if (i >= opts.reps) {
        await manager.provisioner.cleanupOrphanedSchemas();
        continue;
      }
      const ff = await timeOnce(() => counter.count(() => manager.provisioner.findOrphanedSchemas()));
      findFull.push(ff.ms);
      findFullStatements = Math.max(findFullStatements, ff.result.statements);
      foundFull = ff.result.result.length;
      const c = await timeOnce(() => counter.count(() => manager.provisioner.cleanupOrphanedSchemas()));
      clean.push(c.ms);
      findStatements = Math.max(findStatements, f.result.statements);
      cleanStatements = Math.max(cleanStatements, c.result.statements);
      found = f.result.result.length;
      dropped = c.result.result.dropped.length;
      failed = c.result.result.failed.length;
    }
    points.push({
      existing,
      create,
      destroy,
      list,
      sweep,
      findOrphans: { p50Ms: summarize(find).p50, statements: findStatements, items: found, failures: 0 },
      findOrphansFull: { p50Ms: summarize(findFull).p50, statements: findFullStatements, items: foundFull, failures: 0 },
      cleanupOrphans: { p50Ms: summarize(clean).p50, statements: cleanStatements, items: dropped, failures: failed },
    });
    progress(`scale ${size}: done`);
  }
  return points;
}
