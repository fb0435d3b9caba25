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

// Handled from the start: a SIGTERM while the bot is still starting stops it cleanly once it has started; if
// starting takes more than 15 s longer (the gateway unreachable), or a second signal comes, it exits at once.
let stopRequested: NodeJS.Signals | undefined;
let stopNow: ((signal: NodeJS.Signals) => void) | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopRequested) {
      if (!stopNow) process.exit(1);
      return;
    }
    stopRequested = signal;
    if (stopNow) return stopNow(signal);
    logger.info({ signal }, 'stop requested while starting; stopping once started');
    setTimeout(() => {
      logger.warn('still starting 15 s after the stop request; exiting');
      logger.flush();
      process.exit(1);
    }, 15_000).unref();
  });
}

try {
  const app = await startApp({ config, logger });
  stopNow = (signal) => {
    logger.info({ signal }, 'shutting down');
    app.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  if (stopRequested) stopNow(stopRequested);
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
