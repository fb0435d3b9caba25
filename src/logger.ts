import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Secrets that can hide inside any logged string (an error's url, a message, a stack):
 * interaction and webhook tokens in REST paths, and Authorization header values.
 */
const SECRET_PATTERNS: [RegExp, string][] = [
  [/(\/webhooks\/\d+\/)[^/?\s"\\]+/g, '$1[redacted]'],
  [/(\/interactions\/\d+\/)[^/?\s"\\]+/g, '$1[redacted]'],
  [/("authorization"\s*:\s*")[^"]*/gi, '$1[redacted]'],
  [/\b(Bot|Bearer) [A-Za-z0-9._-]{20,}/g, '$1 [redacted]'],
];

/** Removes interaction/webhook tokens and Authorization values from a piece of text. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Root logger. Component loggers are children carrying sandboxId/guildId/actor. Tokens are redacted. */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: 'discord-sandboxes' },
      redact: {
        paths: [
          'token',
          '*.token',
          'config.discordToken',
          'discordToken',
          'headers.authorization',
          '*.headers.authorization',
          'headers.Authorization',
          '*.headers.Authorization',
        ],
        censor: '[redacted]',
      },
      serializers: { err: pino.stdSerializers.err },
      // Every line, whatever field carries it (DiscordAPIError.url, a message, a stack), loses its tokens.
      hooks: { streamWrite: redactSecrets },
    },
    destination ?? pino.destination({ dest: 2, sync: false }),
  );
}

/** A logger that discards everything (tests that don't look at logs). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
