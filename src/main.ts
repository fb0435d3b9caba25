import { setFlagsFromString } from 'node:v8';
import { startApp } from './app.ts';
import { loadConfig, loadDotEnv, type Config } from './config.ts';
import { createLogger } from './logger.ts';
import { SandboxError } from './sandbox/errors.ts';

// WASM (Prisma's query compiler, PGlite) on the baseline compiler only, however the bot is started: TurboFan
// tier-up compiles on background threads whose ~100 MB of malloc arenas glibc never gives back. Both
// modules compile their WASM after this line (on the first query / dynamic import). `npm start` also
// passes it on the command line.
setFlagsFromString('--liftoff-only');

let config: Config;
try {
  loadDotEnv();
  config = loadConfig(process.env, { requireDiscordToken: true });
} catch (err) {
  // One line saying what to set and where; no stack.
  process.stderr.write(`${err instanceof SandboxError ? `${err.message} (${err.code})` : String((err as Error)?.message ?? err)}\n`);
  process.exit(1);
}

// discord.js's Client also reads SHARD_COUNT and SHARDS from the environment (its ShardingManager's convention) when
// its options are left at their defaults, and would take SHARD_COUNT=auto for NaN. config.shards holds what we parsed.
delete process.env.SHARD_COUNT;
delete process.env.SHARDS;

const logger = createLogger(config.logLevel);
process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));
process.on('uncaughtException', (err) => logger.fatal({ err }, 'uncaught exception'));

try {
  const app = await startApp({ config, logger });
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      app.stop().then(
        () => process.exit(0),
        (err) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
} catch (err) {
  // A configuration problem found at startup (a busy HTTP_PORT, a wrong DATABASE_URL) is one line, no stack.
  if (err instanceof SandboxError && err.isUserError) {
    logger.flush();
    process.stderr.write(`${err.message} (${err.code})\n`);
    process.exit(1);
  }
  logger.fatal({ err }, 'startup failed');
  logger.flush();
  setTimeout(() => process.exit(1), 100);
}
