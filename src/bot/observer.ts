export type CommandOutcome = 'success' | 'user_error' | 'internal_error';

/** Hooks for metrics; the bot does not depend on prom-client. */
export interface BotObserver {
  /** One finished slash command (or button press), from receipt to its last reply. */
  command(subcommand: string, outcome: CommandOutcome, seconds: number): void;
  /** Time from receiving an interaction to its acknowledgement (defer or autocomplete answer). */
  ack(seconds: number): void;
}

export const noopObserver: BotObserver = { command: () => undefined, ack: () => undefined };
