import { silentLogger } from '../../../src/logger.ts';
import { Sweeper, type SweepSummary } from '../../../src/jobs/sweeper.ts';
import type { FaultInjector } from '../../../src/sandbox/faults.ts';
import { SandboxManager, type ManagerDeps } from '../../../src/sandbox/manager.ts';

/** Stuck threshold used by the fault tests; the sweep clock is moved past it instead of waiting. */
export const STUCK_AFTER_MS = 60_000;

/**
 * One sweeper pass whose clock is `aheadMs` in the future (default: just past the stuck
 * threshold), on its own manager over the given Prisma client.
 */
export function sweepAt(deps: Pick<ManagerDeps, 'prisma'> & Partial<ManagerDeps>, opts: { aheadMs?: number; faults?: FaultInjector } = {}): Promise<SweepSummary> {
  const ahead = opts.aheadMs ?? STUCK_AFTER_MS + 60_000;
  const manager = new SandboxManager({ logger: silentLogger(), ...deps, clock: () => new Date(Date.now() + ahead) });
  const sweeper = new Sweeper({ manager, logger: silentLogger(), settings: { stuckAfterMs: STUCK_AFTER_MS }, faults: opts.faults });
  return sweeper.runPass();
}
