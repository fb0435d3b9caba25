import { describe, expect, it } from 'vitest';
import { assertUsable } from '../../src/sandbox/lifecycle/context.ts';

const thrown = (fn: () => void): unknown => {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
};

describe('assertUsable', () => {
  it('lets a running or expired row through', () => {
    expect(thrown(() => assertUsable({ status: 'running' }, 'demo', 'reset'))).toBeUndefined();
    expect(thrown(() => assertUsable({ status: 'expired' }, 'demo', 'reset'))).toBeUndefined();
  });

  it('refuses every other status, and a row that is gone, with SANDBOX_007 and words', () => {
    for (const status of ['pending', 'creating', 'destroying', 'destroyed', 'failed'] as const) {
      expect(thrown(() => assertUsable({ status }, 'demo', 'upgraded'))).toMatchObject({
        code: 'SANDBOX_007',
        message: `demo is ${status}; only running or expired sandboxes can be upgraded.`,
        details: { status },
      });
    }
    expect(thrown(() => assertUsable(null, 'demo', 'extended'))).toMatchObject({
      code: 'SANDBOX_007',
      message: 'demo is gone; only running or expired sandboxes can be extended.',
      details: { status: undefined },
    });
  });
});
