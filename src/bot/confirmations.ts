import { randomUUID } from 'node:crypto';
import { MessageFlags, type ButtonInteraction } from 'discord.js';
import { NO_MENTIONS } from './replies.ts';

export type ConfirmationResult =
  | { choice: 'confirm' | 'cancel'; interaction: ButtonInteraction }
  | { choice: 'timeout' }
  | { choice: 'shutdown' };

interface Pending {
  invokerId: string;
  resolve: (result: ConfirmationResult) => void;
  timer: NodeJS.Timeout;
}

const PREFIX = 'sandbox-confirm';

/**
 * Yes/no prompts answered with buttons. Only the user who asked may press them; anyone else gets
 * an ephemeral refusal. A prompt resolves as `timeout` after its time limit.
 */
export class Confirmations {
  private readonly pending = new Map<string, Pending>();

  /** Opens a prompt; returns the custom ids for its buttons and the eventual answer. */
  open(invokerId: string, timeoutMs: number): { confirmId: string; cancelId: string; result: Promise<ConfirmationResult> } {
    const id = randomUUID();
    const result = new Promise<ConfirmationResult>((resolve) => {
      const timer = setTimeout(() => this.settle(id, { choice: 'timeout' }), timeoutMs);
      this.pending.set(id, { invokerId, resolve, timer });
    });
    return { confirmId: `${PREFIX}:${id}:confirm`, cancelId: `${PREFIX}:${id}:cancel`, result };
  }

  owns(customId: string): boolean {
    return customId.startsWith(`${PREFIX}:`);
  }

  /** Handles a button press. Acknowledges it before anything else happens. */
  async press(interaction: ButtonInteraction): Promise<void> {
    const [, id = '', choice] = interaction.customId.split(':');
    const pending = this.pending.get(id);
    if (!pending) {
      await interaction.reply({ content: 'This prompt has expired. Run the command again.', flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
      return;
    }
    if (interaction.user.id !== pending.invokerId) {
      await interaction.reply({ content: 'Only the person who ran this command can answer this prompt.', flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
      return;
    }
    await interaction.deferUpdate();
    this.settle(id, { choice: choice === 'confirm' ? 'confirm' : 'cancel', interaction });
  }

  /** Ends every open prompt (the bot is stopping). */
  closeAll(): void {
    for (const id of [...this.pending.keys()]) this.settle(id, { choice: 'shutdown' });
  }

  get size(): number {
    return this.pending.size;
  }

  private settle(id: string, result: ConfirmationResult): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(result);
  }
}
