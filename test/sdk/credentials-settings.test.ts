// Derived credentials and the SDK's reading of `sandbox env` variables (no servers needed).
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { SandboxCredentials, Secret, derivePassword } from '../../src/sandbox/credentials.ts';
import { resolveSettings } from '../../src/sdk/settings.ts';

const SECRET = 'unit-test-secret-0123456789abcdef0123456789';
const ID = '11111111-2222-3333-4444-555555555555';

describe('derived credentials', () => {
  it('are hex HMAC-SHA256(secret, "<purpose>:<id>"), one per purpose, the same for any spelling of the id', () => {
    // Expected values computed with: echo -n "postgres:<id>" | openssl dgst -sha256 -hmac "<secret>"
    expect(derivePassword(SECRET, 'postgres', ID)).toBe('d8f829abede1d9b2c3ad859188a7e97a2823eecd72c5e975b7d7326d9a7e2792');
    expect(derivePassword(SECRET, 'redis', ID)).toBe('6b2647548d99b1b0704b33175d493cdefb06d66a78e7d45a424bb9d1a4da127a');
    expect(derivePassword(new Secret(SECRET), 'postgres', ID.toUpperCase())).toBe('d8f829abede1d9b2c3ad859188a7e97a2823eecd72c5e975b7d7326d9a7e2792');
    expect(() => derivePassword(SECRET, 'postgres', 'not-a-uuid')).toThrow();
  });

  it('build the URLs `sandbox env` prints, with the sandbox_<32 hex> user', () => {
    const c = new SandboxCredentials(new Secret(SECRET));
    expect(c.databaseUrl('postgresql://postgres@db.example:5432/control?schema=public&sslmode=require', ID)).toBe(
      'postgresql://sandbox_11111111222233334444555555555555:d8f829abede1d9b2c3ad859188a7e97a2823eecd72c5e975b7d7326d9a7e2792@db.example:5432/control?sslmode=require',
    );
    expect(c.redisUrl('redis://127.0.0.1:6379/0', ID)).toBe(
      'redis://sandbox_11111111222233334444555555555555:6b2647548d99b1b0704b33175d493cdefb06d66a78e7d45a424bb9d1a4da127a@127.0.0.1:6379/0',
    );
  });

  it('never show the secret in JSON, strings or inspection', () => {
    const s = new Secret(SECRET);
    const shown = [JSON.stringify({ s }), String(s), `${s}`, inspect(s), inspect({ s }), JSON.stringify(new SandboxCredentials(s))];
    for (const out of shown) expect(out).not.toContain(SECRET);
  });
});

describe('SDK settings', () => {
  it('read SANDBOX_* and derive the names from the id', () => {
    const s = resolveSettings({ env: { SANDBOX_ID: ID, SANDBOX_DATABASE_URL: 'postgresql://u@h/db', SANDBOX_NATS_URL: 'nats://h:4222' } });
    expect(s).toMatchObject({
      mode: 'sandbox',
      schema: 'sandbox_11111111222233334444555555555555',
      redisPrefix: 'sandbox:11111111-2222-3333-4444-555555555555:',
      stream: 'SANDBOX_11111111222233334444555555555555',
      subject: 'sandbox.11111111-2222-3333-4444-555555555555.events.>',
      consumer: 'worker',
      deliver: 'new',
      controlSchema: 'public',
    });
  });

  it('without SANDBOX_ID read production variables', () => {
    const s = resolveSettings({ env: { PRODUCTION_DATABASE_URL: 'postgresql://u@h/db', REDIS_URL: 'redis://h', NATS_URL: 'nats://h' } });
    expect(s).toMatchObject({ mode: 'production', schema: 'public', redisPrefix: '', stream: 'DISCORD_EVENTS', subject: 'events.>' });
    expect(resolveSettings({ env: { EVENTS_SUBJECT_PREFIX: 'prod' } }).subject).toBe('prod.>');
  });

  it('refuse what could reach another sandbox or production, without echoing URLs', () => {
    expect(() => resolveSettings({ env: { SANDBOX_ID: ID, SANDBOX_SCHEMA: 'public' } })).toThrow(/this sandbox's schema is sandbox_1111/);
    expect(() => resolveSettings({ env: { SANDBOX_ID: ID, SANDBOX_NATS_SUBJECT: 'events.>' } })).toThrow(/must be under sandbox\.11111111/);
    expect(() => resolveSettings({ env: { SANDBOX_ID: 'abc' } })).toThrow(/not a sandbox id/);
    expect(() => resolveSettings({ env: { PRODUCTION_SCHEMA: 'public; DROP TABLE x' } })).toThrow(/lowercase identifier/);
    try {
      resolveSettings({ env: { SANDBOX_ID: ID, SANDBOX_DATABASE_URL: 'mysql://u:hunter2@h/db' } });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toContain('database URL');
      expect((e as Error).message).not.toContain('hunter2');
    }
  });
});
