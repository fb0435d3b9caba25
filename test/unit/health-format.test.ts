import { describe, expect, it } from 'vitest';
import { healthText } from '../../src/cli/format.ts';
import { healthEmbed } from '../../src/bot/replies.ts';
import type { Sandbox, SandboxHealth } from '../../src/sandbox/types.ts';

const base: SandboxHealth = {
  sandboxId: '00000000-0000-4000-8000-000000000000',
  status: 'running',
  healthy: true,
  schema: { exists: true, tables: [], totalRows: 0, state: 'ok' },
  guildCount: 0,
  ttlRemainingMs: 3_600_000,
  redis: { state: 'disabled' },
  events: { state: 'disabled' },
  checkedAt: new Date(0),
};

describe('CLI status: the events line', () => {
  it('shows the stream’s message count and size, or its state', () => {
    expect(healthText({ ...base, events: { state: 'ok', messages: 12, bytes: 4608 } })).toMatch(/^events {5}ok \(12 messages, 4\.5 KiB\)$/m);
    expect(healthText({ ...base, events: { state: 'ok', messages: 0, bytes: 0 } })).toMatch(/^events {5}ok \(0 messages, 0 B\)$/m);
    expect(healthText({ ...base, healthy: false, events: { state: 'missing' } })).toMatch(/^events {5}missing$/m);
    expect(healthText(base)).toMatch(/^events {5}disabled$/m);
  });
});

describe('bot status: the Events field', () => {
  const sandbox: Sandbox = {
    id: base.sandboxId,
    name: 'demo',
    owner: 'cli:tester',
    status: 'running',
    schemaName: 'sandbox_00000000000040008000000000000000',
    guildIds: [],
    createdAt: new Date(0),
    expiresAt: new Date(3_600_000),
    destroyedAt: null,
    lastActivityAt: new Date(0),
    metadata: {},
    server: 'default',
  };
  const eventsField = (events: SandboxHealth['events']): string | undefined =>
    healthEmbed(sandbox, { ...base, events }).toJSON().fields?.find((f) => f.name === 'Events')?.value;

  it('shows the same sizes as the CLI', () => {
    expect(eventsField({ state: 'ok', messages: 12, bytes: 4608 })).toBe('ok: 12 messages, 4.5 KiB');
    expect(eventsField({ state: 'ok', messages: 1, bytes: 1023 })).toBe('ok: 1 messages, 1023 B');
    expect(eventsField({ state: 'ok', messages: 3, bytes: 3 * 1024 * 1024 })).toBe('ok: 3 messages, 3.0 MiB');
    expect(healthText({ ...base, events: { state: 'ok', messages: 3, bytes: 3 * 1024 * 1024 } })).toMatch(/^events {5}ok \(3 messages, 3\.0 MiB\)$/m);
    expect(eventsField({ state: 'missing' })).toBe('missing');
  });
});
