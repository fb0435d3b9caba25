import { describe, expect, it } from 'vitest';
import { actorLabel } from '../../src/sandbox/types.ts';
import { parseActorLabel } from '../../src/sandbox/validation.ts';

describe('parseActorLabel', () => {
  it('reads back the three kinds actorLabel writes', () => {
    expect(parseActorLabel('discord:123456789012345678')).toEqual({ kind: 'discord', id: '123456789012345678' });
    expect(parseActorLabel('cli:jane.doe')).toEqual({ kind: 'operator', name: 'jane.doe' });
    expect(parseActorLabel('system:guild-join')).toEqual({ kind: 'system', job: 'guild-join' });
    for (const actor of [
      { kind: 'discord', id: '98765432109876543' },
      { kind: 'operator', name: 'root' },
      { kind: 'system', job: 'sweeper' },
    ] as const) {
      expect(parseActorLabel(actorLabel(actor))).toEqual(actor);
    }
  });

  it('refuses anything else instead of guessing', () => {
    for (const bad of [
      'bogus:x',
      'operator:root',
      'admin',
      '',
      ':',
      'discord:',
      'discord:notanumber',
      'discord:1234',
      'discord:00000000000000000',
      'discord:123456789012345678 ',
      'discord:123456789012345678:x',
      'Discord:123456789012345678',
      '123456789012345678',
      'cli:',
      'cli:Root',
      'cli:-x',
      'cli:a b',
      `cli:${'a'.repeat(33)}`,
      'system:',
      'system:Sweeper',
      'system:job/../x',
    ]) {
      expect(parseActorLabel(bad), bad).toBeNull();
    }
  });
});
