import { performance } from 'node:perf_hooks';
import type { Logger } from '../logger.ts';
import { ErrorCode, SandboxError, toSandboxError } from '../sandbox/errors.ts';
import { noFaults, type FaultInjector } from '../sandbox/faults.ts';
import type { SandboxManager } from '../sandbox/manager.ts';
import { SweepQueries } from '../sandbox/store/sweeps.ts';
import { actorLabel, type Actor, type Sandbox, type SandboxStatus } from '../sandbox/types.ts';
import { emptySummary, type SweepAction, type SweepSummary } from './sweep-summary.ts';

export type { SweepAction, SweepSummary } from './sweep-summary.ts';

/** Tells an owner that a sandbox expires soon. The bot implements it with a DM. */
export interface ExpiryNotifier {
  notifyExpiring(sandbox: Sandbox): Promise<void>;
}

/** Hooks for metrics; the sweeper does not depend on prom-client. */
export interface SweeperObserver {
  /** Called once per pass with its summary. */
  pass?(summary: SweepSummary): void;
  /** One finished teardown (expired, stuck, failed or retried), with its outcome and duration. */
  destroyed?(outcome: 'success' | 'failure', seconds: number): void;
}

export interface SweeperSettings {
  /** Pause between passes (default 60 s). */
  intervalMs: number;
  /** How long an expired sandbox may still be extended before it is destroyed (default 1 h). */
  graceMs: number;
  /** How long before expiry the owner is told (default 1 h; 0 disables the DM). */
  warnBeforeMs: number;
  /** After how long a pending/creating row counts as stuck (default 10 min). Also the lease on a claimed destroy. */
  stuckAfterMs: number;
  /** Most rows one step handles per pass; the rest wait for the next pass (default 1000). */
  batchSize: number;
}

export const DEFAULT_SWEEPER_SETTINGS: SweeperSettings = {
  intervalMs: 60_000,
  graceMs: 3_600_000,
  warnBeforeMs: 3_600_000,
  stuckAfterMs: 600_000,
  batchSize: 1000,
};

export interface SweeperDeps {
  manager: SandboxManager;
  logger: Logger;
  settings?: Partial<SweeperSettings>;
  /** Without one (CLI sweep) expiry DMs are not claimed, so the bot still sends them. */
  notifier?: ExpiryNotifier | undefined;
  observer?: SweeperObserver | undefined;
  /** Test-only: hit at `sweep:before-item` before each sandbox is processed. */
  faults?: FaultInjector | undefined;
}

export const SWEEPER_ACTOR: Actor = { kind: 'system', job: 'sweeper' };

type Outcome = 'done' | 'skipped';

/**
 * The lifecycle sweeper. Each pass expires, destroys after grace, warns owners, reconciles stuck
 * rows and repairs drift. Every selection is one query per step; every change is a
 * compare-and-set, so several sweepers (bot instances, a CLI sweep) can run at once and each
 * sandbox is processed once. Each item is processed on its own: one failure never stops the pass.
 * No transaction or lock is held while a DM is sent.
 */
export class Sweeper {
  readonly settings: SweeperSettings;
  private readonly manager: SandboxManager;
  private readonly log: Logger;
  private readonly notifier: ExpiryNotifier | undefined;
  private readonly observer: SweeperObserver;
  private readonly faults: FaultInjector;
  private readonly actor = SWEEPER_ACTOR;
  private readonly queries: SweepQueries;
  private missingCursor: string | null = null;
  private current: Promise<SweepSummary> | undefined;
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
    await this.step(summary, 'expired', () => this.expire(summary, now));
    await this.step(summary, 'destroyed', () => this.destroyExpired(summary, now));
    if (this.notifier) await this.step(summary, 'notified', () => this.notify(summary, now, this.notifier!));
    await this.step(summary, 'stuck_reconciled', () => this.reconcileStuck(summary, now));
    await this.step(summary, 'destroy_retried', () => this.retryDestroys(summary, now));
    await this.step(summary, 'failed_cleaned', () => this.cleanFailed(summary));
    await this.step(summary, 'orphan_dropped', () => this.dropOrphans(summary));
    await this.step(summary, 'schema_missing', () => this.findMissingSchemas(summary));
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
  private async timedDestroy(fn: () => Promise<boolean>): Promise<Outcome> {
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

  // ------------------------------------------------------------------ steps

  /**
   * running past expires_at → expired. Selection, compare-and-set and audit rows are one
   * statement: rows another sweeper holds are skipped (SKIP LOCKED), never processed twice.
   */
  private async expire(summary: SweepSummary, now: Date): Promise<void> {
    const ids = await this.queries.expireDue(now, this.settings.batchSize, this.actor);
    summary.counts.expired += ids.length;
    if (ids.length) this.log.info({ sandboxIds: ids }, 'sandboxes expired');
  }

  /**
   * expired past expires_at + grace → destroying (compare-and-set: one sweeper wins, and an extend
   * in between wins over us) → destroyed. The destroying row carries a lease (next_attempt_at)
   * so the retry step of another sweeper does not pick it up meanwhile.
   */
  private async destroyExpired(summary: SweepSummary, now: Date): Promise<void> {
    const cutoff = new Date(now.getTime() - this.settings.graceMs);
    const rows = (await this.queries.expiredPastGrace(cutoff, this.settings.batchSize)).map((id) => ({ id }));
    for (const { id } of rows) {
      await this.item(summary, 'destroyed', id, async () => {
        return this.timedDestroy(() => this.manager.tearDown(id, this.actor, { reason: 'grace_elapsed', onlyFrom: ['expired'] }));
      });
    }
  }

  /**
   * Warns owners of running sandboxes expiring within warnBeforeMs. The claim (setting
   * expiry_notified_at) is one compare-and-set statement, so two sweepers never DM twice; the
   * DM is sent afterwards, outside any transaction. At most once: a failed DM is logged,
   * audited and counted, and expiry_notified_at stays set (see notifyOne).
   */
  private async notify(summary: SweepSummary, now: Date, notifier: ExpiryNotifier): Promise<void> {
    const horizon = new Date(now.getTime() + this.settings.warnBeforeMs);
    const claimed = await this.queries.markExpiryNoticesDue(now, horizon, this.settings.batchSize);
    if (!claimed.length) return;
    const rows = await this.manager.store.findSandboxesByIds(claimed);
    for (const row of rows) {
      await this.item(summary, 'notified', row.id, () => this.notifyOne(notifier, row));
    }
  }

  /**
   * A failed DM is not retried: expiry_notified_at stays set. Almost every DM failure is
   * permanent (DMs closed, no shared guild, bot blocked) and discord.js already retries 5xx and
   * rate limits, so retrying every pass would only hammer the API. The failure is audited
   * (expiry_notice_failed), logged and counted; an extend clears the mark, so the next
   * expiry is warned again.
   */
  private async notifyOne(notifier: ExpiryNotifier, sandbox: Sandbox): Promise<Outcome> {
    try {
      await notifier.notifyExpiring(sandbox);
    } catch (err) {
      await this.manager.store
        .audit(this.manager.store.prisma, sandbox.id, 'expiry_notice_failed', this.actor, { owner: sandbox.owner, error: (err as Error)?.message ?? String(err) })
        .catch((auditErr: unknown) => this.log.error({ sandboxId: sandbox.id, err: auditErr }, 'could not audit the failed expiry notice'));
      throw new SandboxError(ErrorCode.Unavailable, `Could not DM the owner: ${(err as Error)?.message ?? String(err)}`, { owner: sandbox.owner }, { cause: err });
    }
    await this.manager.store.audit(this.manager.store.prisma, sandbox.id, 'expiry_notice_sent', this.actor, { owner: sandbox.owner, expiresAt: sandbox.expiresAt.toISOString() });
    return 'done';
  }

  /** pending/creating unchanged for stuckAfterMs → failed (audited), then compensated and destroyed. */
  private async reconcileStuck(summary: SweepSummary, now: Date): Promise<void> {
    const cutoff = new Date(now.getTime() - this.settings.stuckAfterMs);
    const rows = await this.queries.stuckCreates(cutoff, this.settings.batchSize);
    for (const row of rows) {
      await this.item(summary, 'stuck_reconciled', row.id, async () => {
        await this.manager.transition(row.id, row.status, 'failed', this.actor, {
          reason: `stuck_${row.status}`,
          since: row.status_changed_at.toISOString(),
          thresholdMs: this.settings.stuckAfterMs,
        });
        return this.timedDestroy(() => this.manager.tearDown(row.id, this.actor));
      });
    }
  }

  /**
   * destroying rows whose backoff has passed (or that never failed, e.g. a crash mid-destroy).
   * They are claimed in one statement by pushing next_attempt_at out by a lease, so two
   * sweepers do not retry the same row; finishDestroy then clears it or sets the backoff.
   */
  private async retryDestroys(summary: SweepSummary, now: Date): Promise<void> {
    const lease = new Date(now.getTime() + this.settings.stuckAfterMs);
    const rows = (await this.queries.leaseDestroyRetries(now, lease, this.settings.batchSize)).map((id) => ({ id }));
    for (const { id } of rows) {
      await this.item(summary, 'destroy_retried', id, async () => {
        return this.timedDestroy(() => this.manager.tearDown(id, this.actor));
      });
    }
  }

  /** failed → destroying → destroyed: schema dropped, mappings and claims removed. */
  private async cleanFailed(summary: SweepSummary): Promise<void> {
    const rows = (await this.queries.failedDue(this.manager.now(), this.settings.batchSize)).map((id) => ({ id }));
    for (const { id } of rows) {
      await this.item(summary, 'failed_cleaned', id, async () => {
        return this.timedDestroy(() => this.manager.tearDown(id, this.actor));
      });
    }
  }

  /** Schemas matching the sandbox pattern exactly, with no live row. Each drop is audited (no sandbox id). */
  private async dropOrphans(summary: SweepSummary): Promise<void> {
    const result = await this.manager.provisioner.cleanupOrphanedSchemas();
    for (const schemaName of result.dropped) {
      summary.counts.orphan_dropped++;
      summary.orphansDropped.push(schemaName);
      await this.manager.store
        .audit(this.manager.store.prisma, null, 'orphan_schema_dropped', this.actor, { schemaName })
        .catch((err: unknown) => this.log.error({ schemaName, err }, 'could not audit an orphan drop'));
    }
    for (const f of result.failed) {
      summary.failures.push({ action: 'orphan_dropped', schemaName: f.schema, code: ErrorCode.CleanupFailed, message: f.error.slice(0, 300) });
    }
  }

  /**
   * running/expired sandboxes whose schema is gone (found with one query) become `failed` with a
   * `schema_missing` audit row and are reported. They are never recreated empty: the data is
   * lost, and pretending otherwise would hide it. The next pass destroys the failed row.
   */
  private async findMissingSchemas(summary: SweepSummary): Promise<void> {
    const { missing: rows, next } = await this.queries.missingSchemas(this.missingCursor, this.settings.batchSize);
    this.missingCursor = next;
    for (const row of rows) {
      await this.item(summary, 'schema_missing', row.id, async () => {
        const store = this.manager.store;
        const marked = await store.transaction(async (tx) => {
          await store.lockKey(tx, `sandbox:${row.id}`);
          if (await this.manager.provisioner.schemaExists(row.id, tx)) return false;
          await store.changeStatus(tx, row.id, row.status, 'failed', this.actor, { reason: 'schema_missing' });
          await store.audit(tx, row.id, 'schema_missing', this.actor, { schemaName: row.schema_name, previousStatus: row.status });
          return true;
        });
        if (!marked) return 'skipped';
        summary.schemaMissing.push({ sandboxId: row.id, name: row.name, schemaName: row.schema_name });
        this.log.error({ sandboxId: row.id, schemaName: row.schema_name }, 'sandbox schema is missing; marked failed (not recreated)');
        return 'done';
      });
    }
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
