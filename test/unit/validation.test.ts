import { describe, expect, it } from 'vitest';
import { defaultName, operatorName, validateName, validateRef, validateSnowflake, validateTtlHours } from '../../src/sandbox/validation.ts';
import { TRANSITIONS, canTransition } from '../../src/sandbox/types.ts';

describe('validation', () => {
  it('accepts good names and rejects UUID look-alikes', () => {
    for (const ok of ['abc', 'demo', '9lives', 'a-b-c', 'x'.repeat(64)]) expect(validateName(ok)).toBe(ok);
    expect(() => validateName('123e4567-e89b-12d3-a456-426614174000')).toThrow(/may not look like a UUID/);
    expect(validateRef('123E4567-E89B-12D3-A456-426614174000')).toEqual({ kind: 'id', value: '123e4567-e89b-12d3-a456-426614174000' });
  });

  it('builds default names that are valid whatever the owner', () => {
    for (const owner of ['123456789012345678', 'cli:root', 'cli:' + 'very.long-name'.repeat(3).slice(0, 32), 'cli:_x']) {
      const name = defaultName(owner);
      expect(() => validateName(name)).not.toThrow();
      expect(name).toMatch(/^sandbox-[a-z0-9-]+-[0-9a-z]{6}$/);
    }
    expect(defaultName('cli:root')).toMatch(/^sandbox-root-[0-9a-z]{6}$/);
  });

  it('snowflakes are 17-20 digits and not zero', () => {
    expect(validateSnowflake('12345678901234567')).toBe('12345678901234567');
    for (const bad of ['1234567890123456', '123456789012345678901', '00000000000000000', ' 12345678901234567']) expect(() => validateSnowflake(bad)).toThrow(/Invalid guild id/);
  });

  it('TTL: whole hours, at least one, capped at the maximum', () => {
    expect(validateTtlHours(1, 168)).toEqual({ hours: 1, capped: false });
    expect(validateTtlHours(169, 168)).toEqual({ hours: 168, capped: true });
    expect(() => validateTtlHours(0, 168)).toThrow(/at least 1 hour/);
  });

  it('operator names become valid cli owners', () => {
    expect(operatorName('Root')).toBe('root');
    expect(operatorName('DOMAIN\\Jane Doe')).toBe('domain-jane-doe');
    expect(operatorName('')).toBe('operator');
  });

  it('the state machine matches the decisions', () => {
    expect(TRANSITIONS).toEqual({
      pending: ['creating', 'failed'],
      creating: ['running', 'failed'],
      // decisions.md: a teardown with no external work may go running|expired|failed → destroyed in one transaction.
      running: ['expired', 'destroying', 'destroyed', 'failed'],
      expired: ['running', 'destroying', 'destroyed', 'failed'],
      failed: ['destroying', 'destroyed'],
      destroying: ['destroyed'],
      destroyed: [],
    });
    expect(canTransition('destroying', 'running')).toBe(false);
  });
});
