import type pg from 'pg';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import { Recorder, range, runBatch } from '../measure.ts';
import { floorCreate, floorDrop, fullCreate, fullDestroy, makesRoles } from '../operations.ts';
import { ratio, summarize, type LatencyStats } from '../stats.ts';

export interface Measured extends LatencyStats {
  opsPerSec: number;
}

/** A full manager operation next to its floor (the bare DDL), measured in the same rounds. */
export interface Comparison {
  full: Measured;
  floor: Measured;
  /** full / floor latency: the overhead of the control plane around the DDL. */
  ratioP50: number;
  ratioP95: number;
  ratioP99: number;
  /** floor / full throughput. */
  throughputRatio: number;
}

export interface LifecycleResult {
  mode: string;
  concurrency: number;
  create: Comparison;
  destroy: Comparison;
}

const measured = (rec: Recorder): Measured => ({ ...summarize(rec.latencies), opsPerSec: rec.throughput });

export const compare = (full: Recorder, floor: Recorder): Comparison => {
  const a = measured(full);
  const b = measured(floor);
  return { full: a, floor: b, ratioP50: ratio(a.p50, b.p50), ratioP95: ratio(a.p95, b.p95), ratioP99: ratio(a.p99, b.p99), throughputRatio: ratio(b.opsPerSec, a.opsPerSec) };
};

/**
 * Creates then destroys `total` sandboxes with `concurrency` workers, in rounds that alternate
 * which side goes first (floor, full / full, floor), so drift on a shared machine hits both alike.
 */
export async function runLifecycle(manager: SandboxManager, floorPool: pg.Pool, opts: { mode: string; total: number; concurrency: number }): Promise<LifecycleResult> {
  const rec = { fullCreate: new Recorder(), floorCreate: new Recorder(), fullDestroy: new Recorder(), floorDrop: new Recorder() };
  const roundSize = opts.concurrency === 1 ? 10 : opts.concurrency * 2;
  const withRole = makesRoles(manager);
  for (let done = 0, round = 0; done < opts.total; done += roundSize, round++) {
    const n = range(Math.min(roundSize, opts.total - done));
    const floorFirst = round % 2 === 0;
    const createFloor = () => runBatch(n, opts.concurrency, () => floorCreate(floorPool, undefined, withRole), rec.floorCreate);
    const createFull = () => runBatch(n, opts.concurrency, () => fullCreate(manager), rec.fullCreate);
    let ids: string[];
    let sandboxes;
    if (floorFirst) {
      ids = await createFloor();
      sandboxes = await createFull();
    } else {
      sandboxes = await createFull();
      ids = await createFloor();
    }
    const dropFloor = () => runBatch(ids, opts.concurrency, (id) => floorDrop(floorPool, id, withRole), rec.floorDrop);
    const destroyFull = () => runBatch(sandboxes, opts.concurrency, (s) => fullDestroy(manager, s), rec.fullDestroy);
    if (floorFirst) {
      await dropFloor();
      await destroyFull();
    } else {
      await destroyFull();
      await dropFloor();
    }
  }
  return {
    mode: opts.mode,
    concurrency: opts.concurrency,
    create: compare(rec.fullCreate, rec.floorCreate),
    destroy: compare(rec.fullDestroy, rec.floorDrop),
  };
}

/** Untimed create/destroy of each kind: connections, plans and caches warm before measuring. */
export async function warmUp(manager: SandboxManager, floorPool: pg.Pool, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await fullDestroy(manager, await fullCreate(manager));
    await floorDrop(floorPool, await floorCreate(floorPool, undefined, makesRoles(manager)), makesRoles(manager));
  }
}
