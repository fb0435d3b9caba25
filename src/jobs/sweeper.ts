import { performance } from 'node:perf_hooks';
import type { Logger } from '../logger.ts';
import { ErrorCode, SandboxError, toSandboxError } from '../sandbox/errors.ts';
import { noFaults, type FaultInjector } from '../sandbox/faults.ts';
import type { SandboxManager } from '../sandbox/manager.ts';
import { SweepQueries } from '../sandbox/store/sweeps.ts';
import { DEFAULT_SERVER } from '../sandbox/servers.ts';
import { actorLabel, type Actor } from '../sandbox/types.ts';
import type { Outcome, StepContext, SweeperSettings } from './steps/context.ts';
import { destroyPastGrace, expireDue } from './steps/expire.ts';
import { sendExpiryDms, type ExpiryNotifier } from './steps/expiry-dms.ts';
import { ensureMissingExternal, markMissingSchemas } from './steps/missing.ts';
import { dropOrphanSchemas, removeOrphanExternal } from './steps/orphans.ts';
import { reconcileStuck } from './steps/reconcile-stuck.ts';
import { dropOrphanPostgresResources, recreateMissingPostgresResources } from './steps/postgres-resources.ts';
import { pruneRouteChanges } from './steps/route-log.ts';
import { cleanFailed, retryTeardowns } from './steps/retry-teardowns.ts';
import { expireClaims, recheckDeferredClaims, type ClaimRechecks } from './steps/claims.ts';
import { emptySummary, type SweepAction, type SweepSummary } from './sweep-summary.ts';

export type { SweepAction, SweepSummary } from './sweep-summary.ts';
export type { ExpiryNotifier } from './steps/expiry-dms.ts';
export type { SweeperSettings } from './steps/context.ts';

/** Hooks for metrics; the sweeper does not depend on prom-client. */
export interface SweeperObserver {
  /** Called once per pass with its summary. */
  pass?(summary: SweepSummary): void;
  /** One finished teardown (expired, stuck, failed or retried), with its outcome and duration. */
  destroyed?(outcome: 'success' | 'failure', seconds: number): void;
}

export const DEFAULT_SWEEPER_SETTINGS: SweeperSettings = {
  intervalMs: 60_000,
  graceMs: 3_600_000,
  warnBeforeMs: 3_600_000,
  stuckAfterMs: 600_000,
  batchSize: 1000,
  driftSlice: 50,
  externalOrphanEveryMs: 600_000,
};

export interface SweeperDeps {
  manager: SandboxManager;
  logger: Logger;
  settings?: Partial<SweeperSettings>;
  /** Without one (CLI sweep) expiry DMs are not sent, so the bot still sends them. */
  notifier?: ExpiryNotifier | undefined;
  observer?: SweeperObserver | undefined;
  /** Test-only: hit at `sweep:before-item` before each sandbox is processed. */
  faults?: FaultInjector | undefined;
  /** The bot's retry of deferred guild-claim checks (a CLI sweep cannot ask Discord). */
  claimRechecks?: ClaimRechecks | undefined;
}

export const SWEEPER_ACTOR: Actor = { kind: 'system', job: 'sweeper' };

/**
 * The lifecycle sweeper: runs the steps in `steps/`, one job per file. Each pass expires,
 * destroys after grace, warns owners, reconciles stuck rows, retries teardowns and repairs drift.
 * Every selection is one query per step; every change is a compare-and-set through the store,
 * so several sweepers (bot instances, a CLI sweep) can run at once and each sandbox is processed
 * once. Each item is processed on its own: one failure never stops the pass. No transaction or
 * lock is held while a DM is sent.
 */
export class Sweeper {
  readonly settings: SweeperSettings;
  private readonly manager: SandboxManager;
  private readonly queries: SweepQueries;
  private readonly log: Logger;
  private readonly notifier: ExpiryNotifier | undefined;
  private readonly observer: SweeperObserver;
  private readonly faults: FaultInjector;
  private readonly claimRechecks: ClaimRechecks | undefined;
  private readonly cursors: StepContext['cursors'] = { missingSchemas: null, orphanSchemas: null, external: null, postgres: {}, servers: {} };
  private current: Promise<SweepSummary> | undefined;
  /** performance.now() of the last external orphan pass (see SweeperSettings.externalOrphanEveryMs). */
  private externalOrphansAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private active = false;

  constructor(deps: SweeperDeps) {
    this.manager = deps.manager;
    this.queries = new SweepQueries(deps.manager.store);
    this.settings = { ...DEFAULT_SWEEPER_SETTINGS, ...definedOnly(deps.settings ?? {}) };
    this.log = deps.logger.child({ component: 'sweeper', actor: actorLabel(SWEEPER_ACTOR) });
    this.notifier = deps.notifier;
    this.observer = deps.observer ?? {};
    this.faults = deps.faults ?? noFaults;
    this.claimRechecks = deps.claimRechecks;
  }

  /** Runs a pass now, then one every intervalMs after the previous one finished. */
  start(): void {
    if (this.active) return;
    this.active = true;
    const tick = async (): Promise<void> => {
      this.timer = undefined;
      try {
        await this.runPass();
      } catch (err) {
        this.log.error({ err }, 'sweep pass crashed');
      }
      if (this.active) this.schedule(tick, this.settings.intervalMs);
    };
    this.schedule(tick, 0);
  }

  private schedule(fn: () => Promise<void>, ms: number): void {
    this.timer = setTimeout(() => void fn(), ms);
    this.timer.unref();
  }

  /** Stops the timer and waits for a running pass to finish. */
  async stop(): Promise<void> {
    this.active = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.current?.catch(() => undefined);
  }

  /** One pass. A pass never overlaps itself: while one runs, this returns that pass's summary. */
  runPass(): Promise<SweepSummary> {
    this.current ??= this.pass().finally(() => {
      this.current = undefined;
    });
    return this.current;
  }

  private async pass(): Promise<SweepSummary> {
    const started = performance.now();
    const now = this.manager.now();
    const summary = emptySummary(now, this.notifier !== undefined);
    let remote: Promise<string[]> | undefined;
    const servers = this.manager.servers;
    const ctx: StepContext = {
      manager: this.manager,
      queries: this.queries,
      settings: this.settings,
      actor: SWEEPER_ACTOR,
      log: this.log,
      summary,
      now,
      item: (action, sandboxId, fn) => this.item(summary, action, sandboxId, fn),
      timedTeardown: (fn) => this.timedTeardown(fn),
      cursors: this.cursors,
      remoteServers: () =>
        (remote ??= servers.several
          ? servers.available().then((up) => {
              summary.serversDown = servers.names().filter((n) => !up.includes(n));
              return up.filter((n) => n !== DEFAULT_SERVER);
            })
          : Promise.resolve([])),
    };
    await this.step(summary, 'expired', () => expireDue(ctx));
    await this.step(summary, 'destroyed', () => destroyPastGrace(ctx));
    if (this.notifier) await this.step(summary, 'notified', () => sendExpiryDms(ctx, this.notifier!));
    await this.step(summary, 'stuck_reconciled', () => reconcileStuck(ctx));
    await this.step(summary, 'destroy_retried', () => retryTeardowns(ctx));
    await this.step(summary, 'failed_cleaned', () => cleanFailed(ctx));
    await this.step(summary, 'orphan_dropped', () => dropOrphanSchemas(ctx));
    await this.step(summary, 'schema_missing', () => markMissingSchemas(ctx));
    await this.step(summary, 'external_ensured', () => ensureMissingExternal(ctx));
    if (this.externalOrphansAt === undefined || started - this.externalOrphansAt >= this.settings.externalOrphanEveryMs) {
      this.externalOrphansAt = started;
      await this.step(summary, 'external_orphan_removed', () => removeOrphanExternal(ctx));
    }
    await this.step(summary, 'claim_expired', () => expireClaims(ctx));
    if (this.claimRechecks) await this.step(summary, 'claim_rechecked', () => recheckDeferredClaims(ctx, this.claimRechecks!));
    await this.step(summary, 'postgres_recreated', () => recreateMissingPostgresResources(ctx));
    await this.step(summary, 'postgres_orphan_dropped', () => dropOrphanPostgresResources(ctx));
    await this.step(summary, 'route_changes_pruned', () => pruneRouteChanges(ctx));
    summary.durationMs = Math.round(performance.now() - started);
    this.observer.pass?.(summary);
    const level = summary.failures.length || summary.schemaMissing.length ? 'warn' : 'info';
    this.log[level](
      { counts: summary.counts, skipped: summary.skipped, failures: summary.failures, schemaMissing: summary.schemaMissing, orphansDropped: summary.orphansDropped, durationMs: summary.durationMs },
      'sweep pass finished',
    );
    return summary;
  }

  /** A whole step failing (its selection query, say) is recorded and the pass goes on. */
  private async step(summary: SweepSummary, action: SweepAction, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.fail(summary, action, err, {});
    }
  }

  /** One sandbox, on its own. A lost compare-and-set means someone else handled it: skipped, not failed. */
  private async item(summary: SweepSummary, action: SweepAction, sandboxId: string, fn: () => Promise<Outcome>): Promise<void> {
    try {
      await this.faults.hit('sweep:before-item', { sandboxId });
      const outcome = await fn();
      if (outcome === 'done') summary.counts[action]++;
      else summary.skipped++;
    } catch (err) {
      if (err instanceof SandboxError && err.code === ErrorCode.Conflict) {
        summary.skipped++;
        return;
      }
      this.fail(summary, action, err, { sandboxId });
    }
  }

  private fail(summary: SweepSummary, action: SweepAction, err: unknown, where: { sandboxId?: string; schemaName?: string }): void {
    const e = toSandboxError(err);
    const cause = (e.cause as Error | undefined)?.message;
    const message = e.code === ErrorCode.Internal && cause ? cause.slice(0, 300) : e.message;
    summary.failures.push({ action, ...where, code: e.code, message });
    this.log.error({ ...where, action, code: e.code, err }, 'sweeper action failed');
  }

  /** Times a teardown for the destroy metrics; rethrows. 'skipped' when another sweeper got there first. */
  private async timedTeardown(fn: () => Promise<boolean>): Promise<Outcome> {
    const t = performance.now();
    try {
      const didIt = await fn();
      if (didIt) this.observer.destroyed?.('success', (performance.now() - t) / 1000);
      return didIt ? 'done' : 'skipped';
    } catch (err) {
      if (!(err instanceof SandboxError && err.code === ErrorCode.Conflict)) this.observer.destroyed?.('failure', (performance.now() - t) / 1000);
      throw err;
    }
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
