import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';

describe('RATE_LIMIT_PER_MINUTE', () => {
  it('defaults to 10 mutating commands a minute, with buckets under a fixed Redis prefix', () => {
    expect(loadConfig({}).rateLimit).toEqual({ perMinute: 10, keyPrefix: 'sandbox-bot:ratelimit:' });
    expect(loadConfig({ RATE_LIMIT_PER_MINUTE: '30', RATE_LIMIT_KEY_PREFIX: 'test-a:' }).rateLimit).toEqual({ perMinute: 30, keyPrefix: 'test-a:' });
  });

  it('refuses a limit that is not a positive whole number', () => {
    for (const bad of ['0', '-1', 'ten', '1.5']) {
      expect(() => loadConfig({ RATE_LIMIT_PER_MINUTE: bad }), bad).toThrow(/RATE_LIMIT_PER_MINUTE must be a whole number from 1/);
    }
  });
});
