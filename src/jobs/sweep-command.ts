import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { FaultInjector } from '../sandbox/faults.ts';
import type { SandboxManager } from '../sandbox/manager.ts';
import type { SweepSummary } from './sweep-summary.ts';
import { Sweeper, type ExpiryNotifier, type SweeperObserver } from './sweeper.ts';

export { formatSweepSummary } from './sweep-summary.ts';

export interface SweepOnceOptions {
  manager: SandboxManager;
  logger: Logger;
  config: Pick<Config, 'sweeper'>;
  /** Usually absent in the CLI: expiry DMs are then left for the bot to send. */
  notifier?: ExpiryNotifier | undefined;
  observer?: SweeperObserver | undefined;
  faults?: FaultInjector | undefined;
}

/** One sweeper pass, for `sandbox sweep`. Returns the (JSON-serialisable) summary. */
export function runSweepOnce(opts: SweepOnceOptions): Promise<SweepSummary> {
  const sweeper = new Sweeper({
    manager: opts.manager,
    logger: opts.logger,
    settings: opts.config.sweeper,
    notifier: opts.notifier,
    observer: opts.observer,
    faults: opts.faults,
  });
  return sweeper.runPass();
}
