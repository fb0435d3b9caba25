import type { Sandbox } from '../sandbox/types.ts';
import type { ExpiryNotifier } from './sweeper.ts';

/** The part of a discord.js Client the DM needs (`client.users.send`); keeps jobs free of discord.js. */
export interface DmSender {
  users: { send(userId: string, options: { content: string; allowedMentions: { parse: [] } }): Promise<unknown> };
}

/** The expiry warning an owner receives. It says when, and exactly how to extend. */
export function expiryMessage(sandbox: Sandbox, graceMs: number): string {
  const at = Math.floor(sandbox.expiresAt.getTime() / 1000);
  const grace = graceMs >= 3_600_000 ? `${Math.round(graceMs / 3_600_000)} h` : `${Math.round(graceMs / 60_000)} min`;
  return [
    `Your sandbox **${sandbox.name}** expires <t:${at}:R> (<t:${at}:f>).`,
    `To keep it, run \`/sandbox extend sandbox:${sandbox.name} hours:24\` (any whole number of hours up to the maximum).`,
    graceMs > 0
      ? `After it expires you can still extend it for ${grace}; then it is destroyed with its schema.`
      : 'Once it expires it is destroyed with its schema.',
  ].join('\n');
}

/** Sends the expiry warning by DM. Mentions are disabled; failures propagate to the sweeper. */
export function createDmNotifier(client: DmSender, graceMs: number): ExpiryNotifier {
  return {
    async notifyExpiring(sandbox) {
      await client.users.send(sandbox.owner, { content: expiryMessage(sandbox, graceMs), allowedMentions: { parse: [] } });
    },
  };
}
