import { describe, expect, it } from 'vitest';
import { healthText } from '../../src/cli/format.ts';
import type { SandboxHealth } from '../../src/sandbox/types.ts';

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
