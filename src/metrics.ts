import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BotObserver, CommandOutcome } from './bot/observer.ts';
import type { BotStore } from './sandbox/store/bot-store.ts';
import type { SweeperObserver } from './jobs/sweeper.ts';
import { SWEEP_ACTIONS } from './jobs/sweep-summary.ts';
import type { Logger } from './logger.ts';
import type { ManagerObserver } from './sandbox/manager.ts';
import { SANDBOX_STATUSES } from './sandbox/types.ts';

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Discord allows 3 s to acknowledge an interaction; the buckets are dense below that. */
const ACK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 5];

export interface MetricsOptions {
  /** Source of the `sandboxes` gauge, read at scrape time with one GROUP BY query. */
  /** Counts sandboxes by status for the gauge; absent in processes without a database. */
  store?: Pick<BotStore, 'countByStatus'> | undefined;
  logger?: Logger | undefined;
  /** Process metrics (CPU, memory, event loop, ...). Default true. */
  defaultMetrics?: boolean;
}

/**
 * All metrics of one process in their own Registry (not prom-client's global one, so tests can
 * create several). The adapters below implement the observers of the manager, the bot and the
 * sweeper, none of which depend on prom-client.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly sandboxes: Gauge<'status'>;
  readonly creates: Counter<'outcome'>;
  readonly destroys: Counter<'outcome'>;
  readonly createDuration: Histogram<'outcome'>;
  readonly destroyDuration: Histogram<'outcome'>;
  readonly destroyFailures: Counter;
  readonly commands: Counter<'subcommand' | 'outcome'>;
  readonly commandDuration: Histogram<'subcommand' | 'outcome'>;
  readonly ack: Histogram;
  readonly sweeperActions: Counter<'action'>;
  readonly sweeperFailures: Counter<'action'>;
  readonly sweeperPassDuration: Histogram;
  private readonly store: Pick<BotStore, 'countByStatus'> | undefined;
  readonly sweeperUnknownResources: Gauge;
  private readonly log: Logger | undefined;

  constructor(opts: MetricsOptions = {}) {
    this.store = opts.store;
    this.log = opts.logger?.child({ component: 'metrics' });
    const registers = [this.registry];
    this.sandboxes = new Gauge({
      name: 'sandboxes',
      help: 'Sandboxes by status, counted in the database at scrape time',
      labelNames: ['status'],
      registers,
      collect: () => this.collectSandboxes(),
    });
    this.creates = new Counter({ name: 'sandbox_creates_total', help: 'Sandbox creations by outcome', labelNames: ['outcome'], registers });
    this.destroys = new Counter({ name: 'sandbox_destroys_total', help: 'Sandbox teardowns (user and sweeper) by outcome', labelNames: ['outcome'], registers });
    this.createDuration = new Histogram({
      name: 'sandbox_create_duration_seconds',
      help: 'Time to create a sandbox, by outcome',
      labelNames: ['outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.destroyDuration = new Histogram({
      name: 'sandbox_destroy_duration_seconds',
      help: 'Time to tear a sandbox down, by outcome',
      labelNames: ['outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.destroyFailures = new Counter({
      name: 'sandbox_destroy_failures_total',
      help: 'Destroys that failed and were left in destroying for a retry with backoff (SANDBOX_006)',
      registers,
    });
    this.commands = new Counter({ name: 'bot_commands_total', help: 'Slash commands and button presses, by subcommand and outcome', labelNames: ['subcommand', 'outcome'], registers });
    this.commandDuration = new Histogram({
      name: 'bot_command_duration_seconds',
      help: 'Time from receiving a command to its last reply',
      labelNames: ['subcommand', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.ack = new Histogram({ name: 'interaction_ack_seconds', help: 'Time from receiving an interaction to acknowledging it', buckets: ACK_BUCKETS, registers });
    this.sweeperActions = new Counter({ name: 'sweeper_actions_total', help: 'Sweeper actions done, by action', labelNames: ['action'], registers });
    this.sweeperFailures = new Counter({ name: 'sweeper_failures_total', help: 'Sweeper actions that failed, by action', labelNames: ['action'], registers });
    this.sweeperPassDuration = new Histogram({ name: 'sweeper_pass_duration_seconds', help: 'Duration of one sweeper pass', buckets: DURATION_BUCKETS, registers });
    this.sweeperUnknownResources = new Gauge({
      name: 'sweeper_unknown_resources',
      help: 'Server-wide sandbox resources (role, stream, ACL user, keys) whose id has no row in this control database, seen by the last sweep pass, by kind; never touched',
      labelNames: ['kind'],
      registers,
    });
    // Every label combination is visible from the start, so rates work before the first event.
    for (const outcome of ['success', 'failure']) {
      this.creates.inc({ outcome }, 0);
      this.destroys.inc({ outcome }, 0);
    }
    for (const action of SWEEP_ACTIONS) {
      this.sweeperActions.inc({ action }, 0);
      this.sweeperFailures.inc({ action }, 0);
    }
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** One query for every status; statuses with no rows report 0. A failed query drops the samples. */
  private async collectSandboxes(): Promise<void> {
    this.sandboxes.reset();
    if (!this.store) return;
    try {
      const counts = await this.store.countByStatus();
      for (const status of SANDBOX_STATUSES) this.sandboxes.set({ status }, counts.get(status) ?? 0);
    } catch (err) {
      this.log?.warn({ err }, 'could not count sandboxes for /metrics');
    }
  }

  /** A teardown by a user or the sweeper. */
  private recordDestroy(outcome: 'success' | 'failure', seconds: number): void {
    this.destroys.inc({ outcome });
    this.destroyDuration.observe({ outcome }, seconds);
  }

  managerObserver(): ManagerObserver {
    return {
      created: (outcome, seconds) => {
        this.creates.inc({ outcome });
        this.createDuration.observe({ outcome }, seconds);
      },
      destroyed: (outcome, seconds) => this.recordDestroy(outcome, seconds),
      teardownFailed: () => this.destroyFailures.inc(),
    };
  }

  botObserver(): BotObserver {
    return {
      command: (subcommand: string, outcome: CommandOutcome, seconds: number) => {
        this.commands.inc({ subcommand, outcome });
        this.commandDuration.observe({ subcommand, outcome }, seconds);
      },
      ack: (seconds: number) => this.ack.observe(seconds),
    };
  }

  sweeperObserver(): SweeperObserver {
    return {
      pass: (summary) => {
        for (const action of SWEEP_ACTIONS) if (summary.counts[action]) this.sweeperActions.inc({ action }, summary.counts[action]);
        for (const f of summary.failures) this.sweeperFailures.inc({ action: f.action });
        this.sweeperPassDuration.observe(summary.durationMs / 1000);
        this.sweeperUnknownResources.reset();
        for (const u of summary.externalUnknown) this.sweeperUnknownResources.inc({ kind: u.kind });
      },
      destroyed: (outcome, seconds) => this.recordDestroy(outcome, seconds),
    };
  }
}
