import { pino, type Logger } from 'pino';

export type { Logger };

/** Root logger. Component loggers are children carrying sandboxId/guildId/actor. Tokens are redacted. */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: 'discord-sandboxes' },
      redact: {
        paths: ['token', '*.token', 'config.discordToken', 'discordToken', 'headers.authorization', '*.headers.authorization'],
        censor: '[redacted]',
      },
      serializers: { err: pino.stdSerializers.err },
    },
    destination ?? pino.destination({ dest: 2, sync: false }),
  );
}

/** A logger that discards everything (tests that don't look at logs). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
