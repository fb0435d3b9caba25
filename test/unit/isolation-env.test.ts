// What `sandbox env` and `/sandbox connect` add for a sandbox, from the configuration alone.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { wireIsolation } from '../../src/isolation.ts';
import { StreamAccess } from '../../src/routing/stream-probe.ts';
import type { Sandbox } from '../../src/sandbox/types.ts';

const SECRET = 'unit-isolation-secret-0123456789abcdef012345';
const sandbox = { id: '0b288d6d-b466-4c49-8975-4342f86d628a' } as Sandbox;

describe('the connection variables', () => {
  it('with isolation on: the sandbox role and ACL user logins and the NATS consumer; the NATS servers come without the bot login', async () => {
    const config = loadConfig({
      DATABASE_URL: 'postgresql://control:control-pw@db.internal:5432/sandboxes?schema=ctl&sslmode=require',
      SANDBOX_CREDENTIAL_SECRET: SECRET,
      REDIS_URL: 'redis://:admin-pw@redis.internal:6379/0',
      NATS_URL: 'nats://bot:nats-pw@n1:4222, n2:4222',
    });
    const w = wireIsolation(config, silentLogger());
    const env = w.connectionEnv(sandbox);
    await w.close();
    // SANDBOX_NATS_URL is the events probe's (the manager adds it): set in one place only.
    expect(Object.keys(env).sort()).toEqual(['SANDBOX_CONTROL_SCHEMA', 'SANDBOX_DATABASE_URL', 'SANDBOX_NATS_CONSUMER', 'SANDBOX_REDIS_URL']);
    const db = new URL(env.SANDBOX_DATABASE_URL!);
    expect([db.username, db.host, db.pathname, db.searchParams.get('sslmode'), db.searchParams.get('schema')]).toEqual([
      'sandbox_0b288d6db4664c4989754342f86d628a', 'db.internal:5432', '/sandboxes', 'require', null,
    ]);
    expect(db.password).toMatch(/^[0-9a-f]{64}$/);
    const redis = new URL(env.SANDBOX_REDIS_URL!);
    expect([redis.username, redis.host]).toEqual(['sandbox_0b288d6db4664c4989754342f86d628a', 'redis.internal:6379']);
    expect(redis.password).not.toBe(db.password);
    // The CLI's events probe: what `sandbox env` prints as SANDBOX_NATS_URL.
    const streams = new StreamAccess(config.routing, silentLogger());
    expect(streams.natsUrl).toBe('nats://n1:4222,n2:4222');
    await streams.close();
    expect(env.SANDBOX_NATS_CONSUMER).toBe('worker');
    expect(env.SANDBOX_CONTROL_SCHEMA).toBe('ctl');
    const all = JSON.stringify({ ...env, SANDBOX_NATS_URL: streams.natsUrl });
    for (const secret of [SECRET, 'control-pw', 'admin-pw', 'nats-pw']) expect(all).not.toContain(secret);
  });

  it('with isolation off: no logins, and nothing at all without NATS', async () => {
    const w = wireIsolation(loadConfig({ DATABASE_URL: 'postgresql://h/db', SANDBOX_ISOLATION: 'off', REDIS_URL: 'redis://h:6379' }), silentLogger());
    expect(w.connectionEnv(sandbox)).toEqual({});
    expect(w.postgresResources).toEqual([]);
    expect(w.resources.map((r) => r.kind)).toEqual(['redis-keys']);
    await w.close();
  });
});
