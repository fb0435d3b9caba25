import { DiscordAPIError, HTTPError, RateLimitError } from 'discord.js';
import { ErrorCode, SandboxError, type ErrorCodeValue } from '../sandbox/errors.ts';

interface Meaning {
  code: ErrorCodeValue;
  message: string;
}

/** Discord's JSON error codes we meet, in words a server admin can act on. */
const DISCORD_CODES: Record<number, Meaning> = {
  50013: { code: ErrorCode.Forbidden, message: 'The bot lacks a permission it needs in this server (Discord 50013 Missing Permissions). Ask a server admin to check the bot’s role.' },
  50001: { code: ErrorCode.Forbidden, message: 'The bot cannot see that server or channel (Discord 50001 Missing Access). Check that the bot is in it and may view it.' },
  50007: { code: ErrorCode.Forbidden, message: 'Discord does not let the bot message that user (Discord 50007); they may have DMs from server members turned off.' },
  10003: { code: ErrorCode.NotFound, message: 'Discord does not know that channel (Discord 10003 Unknown Channel).' },
  10004: { code: ErrorCode.NotFound, message: 'Discord does not know that server, or the bot is not in it (Discord 10004 Unknown Guild).' },
  10007: { code: ErrorCode.NotFound, message: 'That user is not a member of the server (Discord 10007 Unknown Member).' },
  10008: { code: ErrorCode.NotFound, message: 'The message is gone (Discord 10008 Unknown Message).' },
  10062: { code: ErrorCode.Unavailable, message: 'Discord no longer accepts answers to this command (Discord 10062 Unknown Interaction). Please run it again.' },
};

/** The first discord.js REST error in `err` or its causes. */
function findDiscordError(err: unknown): DiscordAPIError | HTTPError | RateLimitError | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 6 && e && typeof e === 'object'; depth++) {
    if (e instanceof DiscordAPIError || e instanceof HTTPError || e instanceof RateLimitError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * A Discord REST failure (thrown directly, or as the cause of an internal error) as a SandboxError
 * with words; undefined when `err` holds none. Skyra's flattenError is the model.
 */
export function discordErrorToSandboxError(err: unknown): SandboxError | undefined {
  if (err instanceof SandboxError && err.code !== ErrorCode.Internal) return undefined;
  const found = findDiscordError(err);
  if (!found) return undefined;
  const meaning = describeDiscordError(found);
  return new SandboxError(meaning.code, meaning.message, {}, { cause: err });
}

function describeDiscordError(e: DiscordAPIError | HTTPError | RateLimitError): Meaning {
  if (e instanceof RateLimitError || e.status === 429) {
    return { code: ErrorCode.Unavailable, message: 'Discord is rate limiting the bot right now (HTTP 429). Please try again in a minute.' };
  }
  if (e instanceof DiscordAPIError && typeof e.code === 'number' && Object.hasOwn(DISCORD_CODES, e.code)) return DISCORD_CODES[e.code]!;
  if (e.status >= 500) {
    return { code: ErrorCode.Unavailable, message: `Discord had a problem answering (HTTP ${e.status}). Please try again in a moment.` };
  }
  if (e.status === 403) return { code: ErrorCode.Forbidden, message: `Discord refused the bot (HTTP 403${e instanceof DiscordAPIError ? `, code ${e.code}` : ''}). Check the bot’s permissions in this server.` };
  if (e.status === 404) return { code: ErrorCode.NotFound, message: `Discord does not know what the bot asked for (HTTP 404${e instanceof DiscordAPIError ? `, code ${e.code}` : ''}).` };
  return { code: ErrorCode.Internal, message: `Discord rejected a request (HTTP ${e.status}${e instanceof DiscordAPIError ? `, code ${e.code}` : ''}).` };
}
