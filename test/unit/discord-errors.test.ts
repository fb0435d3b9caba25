import { DiscordAPIError } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { discordErrorToSandboxError } from '../../src/bot/discord-errors.ts';
import { describeError } from '../../src/bot/dispatcher.ts';
import { SandboxError } from '../../src/sandbox/errors.ts';
import { silentLogger } from '../../src/logger.ts';

const apiError = (code: number, status: number, message = 'x') =>
  new DiscordAPIError({ code, message }, code, status, 'PATCH', 'https://discord.com/api/v10/webhooks/1/tok', { body: undefined, files: undefined });

describe('Discord API errors in words', () => {
  it('turns 50013 into a permission message, not "Something went wrong"', () => {
    const wrapped = new SandboxError('SANDBOX_012', 'An internal error occurred.', {}, { cause: apiError(50013, 403, 'Missing Permissions') });
    const { text, outcome } = describeError(wrapped, silentLogger(), {});
    expect(text).toContain('SANDBOX_009');
    expect(text).toContain('Missing Permissions');
    expect(text).not.toContain('Something went wrong');
    expect(outcome).toBe('user_error');
  });

  it.each([
    [50001, 403, 'SANDBOX_009', 'Missing Access'],
    [50007, 403, 'SANDBOX_009', '50007'],
    [10003, 404, 'SANDBOX_004', 'Unknown Channel'],
    [10004, 404, 'SANDBOX_004', 'Unknown Guild'],
    [10007, 404, 'SANDBOX_004', 'Unknown Member'],
    [10008, 404, 'SANDBOX_004', 'Unknown Message'],
    [10062, 404, 'SANDBOX_011', 'Unknown Interaction'],
    [0, 429, 'SANDBOX_011', 'rate limiting'],
    [0, 502, 'SANDBOX_011', 'HTTP 502'],
  ])('maps code %i (HTTP %i) to %s', (code, status, expected, words) => {
    const mapped = discordErrorToSandboxError(apiError(code, status))!;
    expect(mapped.code).toBe(expected);
    expect(mapped.message).toContain(words);
  });

  it('leaves errors without a Discord cause alone', () => {
    expect(discordErrorToSandboxError(new Error('boom'))).toBeUndefined();
    expect(discordErrorToSandboxError(new SandboxError('SANDBOX_004', 'nope'))).toBeUndefined();
  });
});
