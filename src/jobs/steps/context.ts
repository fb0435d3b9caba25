import type { Logger } from '../../logger.ts';
import type { SandboxManager } from '../../sandbox/manager.ts';
import type { SweepQueries } from '../../sandbox/store/sweeps.ts';
import type { Actor } from '../../sandbox/types.ts';
import type { SweepAction, SweepSummary } from '../sweep-summary.ts';

export type Outcome = 'done' | 'skipped';

export interface SweeperSettings {
  /** Pause between passes (default 60 s). */
  intervalMs: number;
  /** How long an expired sandbox may still be extended before it is destroyed (default 1 h). */
  graceMs: number;
  /** How long before expiry the owner is told (default 1 h; 0 disables the DM). */
  warnBeforeMs: number;
  /** After how long a creating row counts as stuck (default 10 min). Also the lease on a claimed teardown retry. */
  stuckAfterMs: number;
  /** Most rows one step handles per pass; the rest wait for the next pass (default 1000). */
  batchSize: number;
  /**
   * Drift checks (missing schemas, orphan schemas, missing external resources) look at this many
   * sandboxes or schemas per pass, continuing where the last pass stopped (default 50), so a
   * pass costs the same at any size and the whole set is covered every size/driftSlice passes.
   */
  driftSlice: number;
  /**
   * The server-wide orphan pass over external resources (every stream, every `sandbox:*` Redis key, every ACL user)
   * costs O(resources on the server), so it runs on a sweeper's first pass and then at most this often (default
   * 10 min). Teardowns never depend on it: a crash mid-teardown leaves the row `destroying`, which is retried.
   */
  externalOrphanEveryMs: number;
}

/** What a sweeper step gets: the manager, its queries, the pass's summary and the per-item runner. */
export interface StepContext {
  manager: SandboxManager;
  queries: SweepQueries;
  settings: SweeperSettings;
  actor: Actor;
  log: Logger;
  summary: SweepSummary;
  now: Date;
  /** Runs one sandbox's work on its own: a failure is recorded, a lost race is a skip. */
  item(action: SweepAction, sandboxId: string, fn: () => Promise<Outcome>): Promise<void>;
  /**
   * The servers of SANDBOX_DATABASE_SERVERS (not `default`) that answer this pass, asked once per
   * pass; the per-server drift checks skip the others (reported in the summary's serversDown).
   */
  remoteServers(): Promise<string[]>;
  /** Times a teardown for the destroy metrics. */
  timedTeardown(fn: () => Promise<boolean>): Promise<Outcome>;
  /** Cursors that persist between passes (drift slices). */
  cursors: {
    missingSchemas: string | null;
    orphanSchemas: string | null;
    external: string | null;
    /** PostgreSQL-side resources (roles), by kind (`<kind>@<server>` on other servers): the live-sandbox slice and the server-wide orphan slice. */
    postgres: Record<string, { missing: string | null; orphans: string | null }>;
    /** The other servers' drift slices (missing schemas, orphan schemas), by server. */
    servers: Record<string, { missingSchemas: string | null; orphanSchemas: string | null }>;
  };
}
