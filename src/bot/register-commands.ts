import { createHash } from 'node:crypto';
import { Routes, type REST } from 'discord.js';
import type { BotStore } from '../sandbox/store/bot-store.ts';
import type { Logger } from '../logger.ts';
import { commandDefinitions } from './commands/definition.ts';

export interface RegisterOptions {
  rest: REST;
  state: Pick<BotStore, 'readState' | 'writeState'>;
  applicationId: string;
  /** Register to this guild (instant, for development); globally when absent. */
  devGuildId?: string | undefined;
  /** Register even when the stored hash matches (the deploy-commands script). */
  force?: boolean;
  logger: Logger;
}

export interface RegisterResult {
  scope: string;
  hash: string;
  registered: boolean;
}

export const definitionHash = (definitions: unknown = commandDefinitions): string =>
  createHash('sha256').update(JSON.stringify(definitions)).digest('hex');

export const stateKey = (applicationId: string, scope: string): string => `commands:${applicationId}:${scope}`;

/**
 * Registers the command definitions only when they changed since the last registration for this
 * application and scope, so restarts do not spend Discord's daily command-creation budget. The
 * application is shared with the team's bot: each of our commands is created on its own (POST, an
 * upsert by name), never by a bulk overwrite, which would delete the team's commands.
 */
export async function registerCommands(opts: RegisterOptions): Promise<RegisterResult> {
  const scope = opts.devGuildId ? `guild:${opts.devGuildId}` : 'global';
  const key = stateKey(opts.applicationId, scope);
  const hash = definitionHash();
  const log = opts.logger.child({ component: 'register-commands', scope });
  const stored = await opts.state.readState(key);
  const storedHash = (stored as { hash?: unknown } | null)?.hash;
  if (!opts.force && storedHash === hash) {
    log.info({ hash }, 'command definitions unchanged; not registering');
    return { scope, hash, registered: false };
  }
  const route = opts.devGuildId ? Routes.applicationGuildCommands(opts.applicationId, opts.devGuildId) : Routes.applicationCommands(opts.applicationId);
  // The application is shared with the team's own bot: upsert our command by name (POST) and
  // never overwrite the list (PUT), which would delete every command that is not ours.
  for (const body of commandDefinitions) await opts.rest.post(route, { body });
  const value = { hash, registeredAt: new Date().toISOString() };
  await opts.state.writeState(key, value);
  log.info({ hash, commands: commandDefinitions.length }, 'commands registered');
  return { scope, hash, registered: true };
}
