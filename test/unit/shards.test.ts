import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { shardOptions } from '../../src/bot/client.ts';
import { ownsGuild, shardOf } from '../../src/shards.ts';

const problemsOf = (env: Record<string, string>): string => {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toMatchObject({ code: 'SANDBOX_013' });
    return (e as Error).message;
  }
  throw new Error(`no problem reported for ${JSON.stringify(env)}`);
};

describe('SHARD_COUNT and SHARD_IDS', () => {
  it('neither set: every shard in this process, discord.js defaults', () => {
    const { shards } = loadConfig({});
    expect(shards).toEqual({ count: undefined, ids: undefined });
    expect(shardOptions(shards)).toEqual({});
  });

  it('SHARD_COUNT alone runs all of them here; auto asks GET /gateway/bot', () => {
    expect(loadConfig({ SHARD_COUNT: '4' }).shards).toEqual({ count: 4, ids: undefined });
    expect(shardOptions(loadConfig({ SHARD_COUNT: '4' }).shards)).toEqual({ shards: [0, 1, 2, 3], shardCount: 4 });
    expect(loadConfig({ SHARD_COUNT: 'auto' }).shards).toEqual({ count: 'auto', ids: undefined });
    expect(shardOptions(loadConfig({ SHARD_COUNT: 'auto' }).shards)).toEqual({ shards: 'auto' });
  });

  it('SHARD_IDS takes ids and ranges, sorted', () => {
    expect(loadConfig({ SHARD_COUNT: '16', SHARD_IDS: '8,0-3' }).shards).toEqual({ count: 16, ids: [0, 1, 2, 3, 8] });
    expect(loadConfig({ SHARD_COUNT: '2', SHARD_IDS: '1' }).shards).toEqual({ count: 2, ids: [1] });
    expect(loadConfig({ SHARD_COUNT: '10', SHARD_IDS: ' 4 - 5 , 9 ' }).shards).toEqual({ count: 10, ids: [4, 5, 9] });
    expect(shardOptions(loadConfig({ SHARD_COUNT: '16', SHARD_IDS: '3-4' }).shards)).toEqual({ shards: [3, 4], shardCount: 16 });
  });

  it.each([
    [{ SHARD_COUNT: '0' }, 'SHARD_COUNT must be auto or a whole number from 1'],
    [{ SHARD_COUNT: '-2' }, 'SHARD_COUNT must be auto or a whole number from 1'],
    [{ SHARD_COUNT: '2.5' }, 'SHARD_COUNT must be auto or a whole number from 1'],
    [{ SHARD_COUNT: 'many' }, 'SHARD_COUNT must be auto or a whole number from 1'],
    [{ SHARD_COUNT: '1e3' }, 'SHARD_COUNT must be auto or a whole number from 1'],
    [{ SHARD_IDS: '0' }, 'SHARD_IDS needs SHARD_COUNT'],
    [{ SHARD_COUNT: 'auto', SHARD_IDS: '0' }, 'SHARD_IDS cannot be used with SHARD_COUNT=auto'],
    [{ SHARD_COUNT: '4', SHARD_IDS: '4' }, 'SHARD_IDS has 4, but shard ids must be below SHARD_COUNT (4)'],
    [{ SHARD_COUNT: '4', SHARD_IDS: '0-4' }, 'SHARD_IDS has 4, but shard ids must be below SHARD_COUNT (4)'],
    [{ SHARD_COUNT: '4', SHARD_IDS: '3-1' }, 'SHARD_IDS has the range 3-1, which runs backwards'],
    [{ SHARD_COUNT: '4', SHARD_IDS: '0,,1' }, 'SHARD_IDS has an empty entry'],
    [{ SHARD_COUNT: '4', SHARD_IDS: '0-2,2' }, 'SHARD_IDS lists shard 2 twice'],
    [{ SHARD_COUNT: '4', SHARD_IDS: 'one' }, 'SHARD_IDS has "one", which is neither an id nor a range'],
    [{ SHARD_COUNT: '4', SHARD_IDS: '-1' }, 'SHARD_IDS has "-1", which is neither an id nor a range'],
  ])('%j is refused: %s', (env, problem) => {
    expect(problemsOf(env)).toContain(problem);
  });

  it('reports shard problems together with the others', () => {
    const message = problemsOf({ SHARD_COUNT: 'x', LOG_LEVEL: 'loud' });
    expect(message).toContain('SHARD_COUNT');
    expect(message).toContain('LOG_LEVEL');
  });
});

describe('shardOf', () => {
  // 41771983423143937 >> 22 = 9959216934; 41771983427338241 >> 22 = 9959216935; 175928847299117063 >> 22 = 41944705796.
  it('is (guild_id >> 22) % count for literal ids', () => {
    expect(shardOf('41771983423143937', 1)).toBe(0);
    expect(shardOf('41771983423143937', 2)).toBe(0);
    expect(shardOf('41771983423143937', 3)).toBe(0);
    expect(shardOf('41771983423143937', 5)).toBe(4);
    expect(shardOf('41771983427338241', 2)).toBe(1);
    expect(shardOf('175928847299117063', 16)).toBe(4);
    expect(shardOf('175928847299117063', 7)).toBe(0);
  });

  it('ownsGuild checks the guild’s shard against the held ids', () => {
    expect(ownsGuild({ ids: [1], count: 2 }, '41771983427338241')).toBe(true);
    expect(ownsGuild({ ids: [0], count: 2 }, '41771983427338241')).toBe(false);
    expect(ownsGuild({ ids: [0], count: 1 }, '41771983427338241')).toBe(true);
  });
});
