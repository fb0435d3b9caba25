import { performance } from 'node:perf_hooks';
import { MessageFlags, type AutocompleteInteraction, type ButtonInteraction, type ChatInputCommandInteraction, type Interaction } from 'discord.js';
import { customAlphabet } from 'nanoid';
import type { Logger } from '../logger.ts';
import { ErrorCode, SandboxError, toSandboxError } from '../sandbox/errors.ts';
import type { SandboxManager } from '../sandbox/manager.ts';
import type { Actor } from '../sandbox/types.ts';
import { sandboxChoices } from './commands/autocomplete.ts';
import type { CommandContext } from './commands/context.ts';
import { sandboxCommand } from './commands/definition.ts';
import { handlerFor } from './commands/index.ts';
import type { Confirmations } from './confirmations.ts';
import { discordErrorToSandboxError } from './discord-errors.ts';
import { noopObserver, type BotObserver, type CommandOutcome } from './observer.ts';
import { discordRelativeTime, type RateLimiter } from './rate-limit.ts';
import { NO_MENTIONS, reply } from './replies.ts';

const errorId = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 10);

export interface DispatcherDeps {
  manager: SandboxManager;
  logger: Logger;
  confirmations: Confirmations;
  destroyConfirmTimeoutMs: number;
  observer?: BotObserver | undefined;
  /** Limits mutating subcommands per user; none means unlimited. */
  rateLimiter?: RateLimiter | undefined;
}

/** Subcommands that change state and so take a rate-limit token. Buttons and autocomplete never do. */
const MUTATING: ReadonlySet<string> = new Set(['create', 'register-guild', 'unregister-guild', 'extend', 'destroy', 'reset', 'clone']);

/** Turns any error into what the user sees. Raw SQL and stacks never leave this function. */
export function describeError(err: unknown, log: Logger, context: Record<string, unknown>): { text: string; outcome: CommandOutcome } {
  const error = discordErrorToSandboxError(err) ?? toSandboxError(err);
  if (error.isUserError) {
    log.info({ ...context, code: error.code, msg: error.message }, 'command refused');
    return { text: `❌ ${error.message} (${error.code})`, outcome: 'user_error' };
  }
  const id = errorId();
  log.error({ ...context, err, errorId: id, code: error.code }, 'command failed');
  const message = error.code === ErrorCode.Internal ? 'Something went wrong on our side.' : error.message;
  return { text: `❌ ${message} (${error.code}, error id \`${id}\`). Please try again; if it keeps happening, give the error id to the bot's operators.`, outcome: 'internal_error' };
}

/**
 * The single entry point for interactions. Slash commands are deferred ephemerally before any
 * database work, routed to their handler, and every error becomes an ephemeral message with a
 * code. Autocomplete is answered directly; confirmation buttons go to their prompt.
 */
export class Dispatcher {
  private readonly log: Logger;
  private readonly observer: BotObserver;
  private readonly inFlight = new Set<Promise<void>>();
  private accepting = true;

  constructor(private readonly deps: DispatcherDeps) {
    this.log = deps.logger.child({ component: 'dispatcher' });
    this.observer = deps.observer ?? noopObserver;
  }

  /** Handles one interaction; never rejects. */
  handle(interaction: Interaction): Promise<void> {
    const received = performance.now();
    const work = this.route(interaction, received).catch((err) => this.log.error({ err, interactionId: interaction.id }, 'interaction handling failed'));
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
    return work;
  }

  /** New interactions are answered with "restarting" from now on. */
  stopAccepting(): void {
    this.accepting = false;
    this.deps.confirmations.closeAll();
  }

  /** Waits for in-flight interactions, at most `timeoutMs`; true when all finished. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.inFlight.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const done = Promise.allSettled([...this.inFlight]).then(() => true as const);
    const finished = await Promise.race([done, timeout]);
    clearTimeout(timer);
    if (!finished) this.log.warn({ pending: this.inFlight.size }, 'stopping with interactions still in flight');
    return finished;
  }

  get pending(): number {
    return this.inFlight.size;
  }

  /**
   * Ours: `/sandbox` commands, their autocomplete and our confirmation buttons. The application is shared with the
   * team's bot: every other interaction is routed to its events and answered by its worker, never by us.
   */
  isOwn(interaction: Interaction): boolean {
    if (interaction.isChatInputCommand() || interaction.isAutocomplete()) return interaction.commandName === sandboxCommand.name;
    if (interaction.isButton()) return this.deps.confirmations.owns(interaction.customId);
    return false;
  }

  private async route(interaction: Interaction, received: number): Promise<void> {
    // Before anything else, during shutdown too: not ours, not answered.
    if (!this.isOwn(interaction)) return;
    if (!this.accepting) {
      if (interaction.isAutocomplete()) return void (await interaction.respond([]).catch(() => undefined));
      if (interaction.isRepliable()) {
        await interaction
          .reply({ content: 'The bot is restarting. Please try again in a moment.', flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS })
          .catch(() => undefined);
      }
      return;
    }
    if (interaction.isChatInputCommand()) return this.command(interaction, received);
    if (interaction.isAutocomplete()) return this.autocomplete(interaction, received);
    if (interaction.isButton()) return this.button(interaction, received);
  }

  private actorOf(interaction: Interaction): Actor {
    return { kind: 'discord', id: interaction.user.id };
  }

  private async command(interaction: ChatInputCommandInteraction, received: number): Promise<void> {
    const subcommand = interaction.options.getSubcommand(false) ?? '(none)';
    const log = this.log.child({ interactionId: interaction.id, guildId: interaction.guildId, actor: `discord:${interaction.user.id}`, subcommand });
    // Acknowledge first: Discord gives us 3 s, and the database may be slow or down.
    try {
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    } catch (err) {
      log.warn({ err }, 'could not acknowledge the interaction');
      this.finish(log, subcommand, 'internal_error', received);
      return;
    }
    this.observer.ack((performance.now() - received) / 1000);

    const respond: CommandContext['respond'] = async (options) => {
      await interaction.editReply(reply(options));
    };
    let outcome: CommandOutcome = 'success';
    try {
      const handler = handlerFor(subcommand);
      if (!handler) throw new SandboxError(ErrorCode.InvalidInput, `Unknown subcommand ${JSON.stringify(subcommand)}.`);
      const actor = this.actorOf(interaction);
      if (MUTATING.has(subcommand) && this.deps.rateLimiter) {
        const decision = await this.deps.rateLimiter.take(interaction.user.id);
        if (!decision.allowed) {
          throw new SandboxError(
            ErrorCode.LimitExceeded,
            `You are changing sandboxes too quickly. Try again ${discordRelativeTime(decision.retryAt)}.`,
            { retryAt: decision.retryAt.toISOString() },
          );
        }
      }
      await handler({
        interaction,
        manager: this.deps.manager,
        actor,
        log,
        confirmations: this.deps.confirmations,
        destroyConfirmTimeoutMs: this.deps.destroyConfirmTimeoutMs,
        respond,
      });
    } catch (err) {
      const described = describeError(err, log, { subcommand });
      outcome = described.outcome;
      await respond({ content: described.text }).catch((editErr) => log.warn({ err: editErr }, 'could not send the error reply'));
    }
    this.finish(log, subcommand, outcome, received);
  }

  private finish(log: Logger, subcommand: string, outcome: CommandOutcome, received: number): void {
    const seconds = (performance.now() - received) / 1000;
    this.observer.command(subcommand, outcome, seconds);
    log.info({ outcome, ms: Math.round(seconds * 1000) }, 'command handled');
  }

  private async autocomplete(interaction: AutocompleteInteraction, received: number): Promise<void> {
    let choices: Awaited<ReturnType<typeof sandboxChoices>> = [];
    try {
      choices = await sandboxChoices(interaction, this.deps.manager, this.actorOf(interaction));
    } catch (err) {
      this.log.warn({ err, interactionId: interaction.id }, 'autocomplete failed; answering with no choices');
    }
    await interaction.respond(choices);
    this.observer.ack((performance.now() - received) / 1000);
  }

  private async button(interaction: ButtonInteraction, received: number): Promise<void> {
    if (!this.deps.confirmations.owns(interaction.customId)) {
      await interaction.reply({ content: 'This button is no longer active.', flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
      return;
    }
    await this.deps.confirmations.press(interaction);
    this.observer.ack((performance.now() - received) / 1000);
  }
}
