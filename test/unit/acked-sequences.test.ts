// The sequence a restarted process resumes from is the last contiguous one whose dispatches are all settled, however
// the acks arrive; events dropped by a stopping process never count as settled.
import { describe, expect, it } from 'vitest';
import { AckedSequences } from '../../src/routing/acked-sequences.ts';

describe('AckedSequences', () => {
  it('advances only through contiguous settled sequences when acks arrive out of order', () => {
    const acks = new AckedSequences();
    expect(acks.ackedThrough(0, 'a')).toBeUndefined();
    const done = [1, 2, 3, 4, 5].map((s) => acks.track(0, 'a', s));
    expect(acks.ackedThrough(0, 'a')).toBe(0);
    done[2]!('stored');
    done[4]!('stored');
    expect(acks.ackedThrough(0, 'a')).toBe(0);
    done[0]!('duplicate');
    expect(acks.ackedThrough(0, 'a')).toBe(1);
    done[1]!('stored');
    expect(acks.ackedThrough(0, 'a')).toBe(3);
    done[3]!('no_stream');
    expect(acks.ackedThrough(0, 'a')).toBe(5);
  });

  it('never settles an event dropped at shutdown, and counts a settle once', () => {
    const acks = new AckedSequences();
    const first = acks.track(0, 'a', 10);
    const second = acks.track(0, 'a', 11);
    second('stored');
    second('stored');
    first('shutdown');
    expect(acks.ackedThrough(0, 'a')).toBe(9);
  });

  it('keeps shards apart, starts again with a new session, and settles skipped (own) interactions at once', () => {
    const acks = new AckedSequences();
    acks.track(0, 'a', 7);
    acks.skip(1, 'b', 3);
    expect(acks.ackedThrough(0, 'a')).toBe(6);
    expect(acks.ackedThrough(1, 'b')).toBe(3);
    acks.track(0, 'c', 1)('stored');
    expect(acks.ackedThrough(0, 'a')).toBeUndefined();
    expect(acks.ackedThrough(0, 'c')).toBe(1);
  });

  it('holds back for a replayed sequence received twice until both copies settle', () => {
    const acks = new AckedSequences();
    acks.track(0, 'a', 4)('stored');
    const again = acks.track(0, 'a', 5);
    const replayed = acks.track(0, 'a', 5);
    again('stored');
    expect(acks.ackedThrough(0, 'a')).toBe(4);
    replayed('duplicate');
    expect(acks.ackedThrough(0, 'a')).toBe(5);
  });
});
