import { Client, GatewayIntentBits } from 'discord.js';
import { NO_MENTIONS } from './replies.ts';

/**
 * The discord.js client. Only the Guilds intent: guild joins/leaves/outages and interactions.
 * `apiUrl` points REST (and, through GET /gateway/bot, the gateway) at any Discord-compatible
 * server, e.g. the test fake.
 */
export function createClient(apiUrl?: string, opts: { waitGuildTimeoutMs?: number | undefined } = {}): Client {
  return new Client({
    intents: [GatewayIntentBits.Guilds],
    // How long READY waits for guilds that are still unavailable (an outage) before firing.
    ...(opts.waitGuildTimeoutMs !== undefined ? { waitGuildTimeout: opts.waitGuildTimeoutMs } : {}),
    allowedMentions: { ...NO_MENTIONS },
    ...(apiUrl ? { rest: { api: apiUrl } } : {}),
  });
}
