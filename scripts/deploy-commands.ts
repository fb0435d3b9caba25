/**
 * Registers the /sandbox command unconditionally (REST only, no gateway): to DEV_GUILD_ID when it
 * is set (instant, for development), globally otherwise. Stores the definition hash so the bot
 * does not register the same definitions again on its next start.
 */
import { REST, Routes, type RESTGetCurrentApplicationResult } from 'discord.js';
import { registerCommands } from '../src/bot/register-commands.ts';
import { BotStore } from '../src/sandbox/store/bot-store.ts';
import { loadConfig, loadDotEnv } from '../src/config.ts';
import { openDatabase } from '../src/db/database.ts';
import { createLogger } from '../src/logger.ts';
import { SandboxError } from '../src/sandbox/errors.ts';

let config;
try {
  loadDotEnv();
  config = loadConfig(process.env, { requireDiscordToken: true });
} catch (err) {
  process.stderr.write(`${err instanceof SandboxError ? `${err.message} (${err.code})` : String(err)}\n`);
  process.exit(1);
}
const logger = createLogger(config.logLevel);
const rest = new REST(config.discord.apiUrl ? { api: config.discord.apiUrl } : {}).setToken(config.discord.token!);
const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger });
try {
  const application = (await rest.get(Routes.currentApplication())) as RESTGetCurrentApplicationResult;
  const result = await registerCommands({ rest, state: new BotStore(db.prisma), applicationId: application.id, devGuildId: config.discord.devGuildId, force: true, logger });
  console.log(`Registered /sandbox (${result.scope}) for application ${application.id}; definition hash ${result.hash.slice(0, 12)}.`);
} catch (err) {
  process.stderr.write(`Registering commands failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await db.close();
}
