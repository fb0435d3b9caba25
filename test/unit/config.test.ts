import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';

describe('configuration', () => {
  it('has a working default for everything but the bot token', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      databaseUrl: undefined,
      redisUrl: undefined,
      limits: { maxPerOwner: 5, defaultTtlHours: 24, maxTtlHours: 168, maxTotal: 500, claimTtlHours: 72, maxClaimsPerUser: 10 },
      http: { port: 8080, host: '127.0.0.1' },
      sweeper: { intervalMs: 60_000, graceMs: 3_600_000, warnBeforeMs: 3_600_000, stuckAfterMs: 600_000 },
    });
    expect(c.dataDir).toMatch(/\/\.data$/);
  });

  it('the bot requires DISCORD_TOKEN and says what to set and where', () => {
    expect(() => loadConfig({}, { requireDiscordToken: true })).toThrow(/DISCORD_TOKEN is not set: put DISCORD_TOKEN=<your bot token> in \.env/);
    expect(loadConfig({ DISCORD_TOKEN: 't' }, { requireDiscordToken: true }).discord.token).toBe('t');
  });

  it('reports every invalid value at once, before touching any state', () => {
    let message = '';
    try {
      loadConfig({ HTTP_PORT: 'eighty', BOT_ADMIN_IDS: '123,abc', DATABASE_URL: 'mysql://x', SANDBOX_MAX_PER_OWNER: '0', LOG_LEVEL: 'loud' });
    } catch (e) {
      message = (e as Error).message;
      expect(e).toMatchObject({ code: 'SANDBOX_013' });
    }
    for (const part of ['HTTP_PORT', 'BOT_ADMIN_IDS contains "123"', 'BOT_ADMIN_IDS contains "abc"', 'DATABASE_URL must use', 'SANDBOX_MAX_PER_OWNER', 'LOG_LEVEL']) {
      expect(message).toContain(part);
    }
  });
});

describe('gateway session configuration', () => {
  it('defaults to a clean stop that ends the sessions, under the default key prefix; both are settable', () => {
    expect(loadConfig({}).gateway).toEqual({ keyPrefix: 'sandbox-bot:gateway:', resumeAfterStop: false, identifyWindowMs: 5000 });
    expect(loadConfig({ GATEWAY_KEY_PREFIX: 'team-a:gw:', GATEWAY_RESUME_AFTER_STOP: 'on', GATEWAY_IDENTIFY_WINDOW_MS: '500' }).gateway).toEqual({
      keyPrefix: 'team-a:gw:',
      resumeAfterStop: true,
      identifyWindowMs: 500,
    });
    expect(() => loadConfig({ GATEWAY_RESUME_AFTER_STOP: 'maybe' })).toThrow(/GATEWAY_RESUME_AFTER_STOP must be on or off/);
  });
});

describe('isolation configuration', () => {
  const secret = 'a-credential-secret-of-enough-length-0123456789';

  it('is on with DATABASE_URL and then requires the secret, naming the variable but never echoing a value', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgresql://h/db' })).toThrow(/SANDBOX_CREDENTIAL_SECRET is required/);
    const c = loadConfig({ DATABASE_URL: 'postgresql://h/db', SANDBOX_CREDENTIAL_SECRET: secret });
    expect(c.isolation.enabled).toBe(true);
    expect(c.isolation.credentialSecret?.reveal()).toBe(secret);
    expect(JSON.stringify(c)).not.toContain(secret);
    expect(String(c.isolation.credentialSecret)).not.toContain(secret);
    try {
      loadConfig({ DATABASE_URL: 'postgresql://h/db', SANDBOX_CREDENTIAL_SECRET: 'short-secret-value' });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toContain('at least 32 characters');
      expect((e as Error).message).not.toContain('short-secret-value');
    }
  });

  it('is off on the embedded database, and can be switched off explicitly', () => {
    expect(loadConfig({}).isolation).toEqual({ enabled: false, credentialSecret: undefined });
    expect(loadConfig({ DATABASE_URL: 'postgresql://h/db', SANDBOX_ISOLATION: 'off' }).isolation.enabled).toBe(false);
    expect(() => loadConfig({ SANDBOX_ISOLATION: 'on', SANDBOX_CREDENTIAL_SECRET: secret })).toThrow(/needs DATABASE_URL/);
    expect(() => loadConfig({ SANDBOX_ISOLATION: 'maybe' })).toThrow(/SANDBOX_ISOLATION must be on or off/);
  });
});
