import type { PublishOutcome } from './publisher.ts';

interface ShardState {
  sessionId: string;
  /** Sequences received and not yet settled, with how many copies (a resume may deliver one twice). */
  pending: Map<number, number>;
  maxSeen: number;
}

/**
 * Per shard, the last gateway sequence up to which every dispatch is settled: published and acked by JetStream
 * (stored or a duplicate), or dropped for good (too large, no stream, refused, the buffer overflowed). A dispatch
 * dropped because the process is stopping (`shutdown`) never settles, so a later RESUME from the persisted sequence
 * replays it; its message id (`<shard>:<session>:<s>`) makes the stream drop whatever had in fact been stored.
 *
 * This is what the gateway persists as the session's sequence (src/bot/gateway/): never a sequence whose event could
 * still be lost with the process.
 */
export class AckedSequences {
  private readonly shards = new Map<number, ShardState>();

  /** A dispatch entered routing; call the returned function once with what became of it. */
  track(shardId: number, sessionId: string, seq: number): (outcome: PublishOutcome) => void {
    let state = this.shards.get(shardId);
    if (!state || state.sessionId !== sessionId) {
      state = { sessionId, pending: new Map(), maxSeen: 0 };
      this.shards.set(shardId, state);
    }
    const current = state;
    current.pending.set(seq, (current.pending.get(seq) ?? 0) + 1);
    if (seq > current.maxSeen) current.maxSeen = seq;
    let settled = false;
    return (outcome) => {
      if (settled || outcome === 'shutdown') return;
      settled = true;
      const left = (current.pending.get(seq) ?? 1) - 1;
      if (left > 0) current.pending.set(seq, left);
      else current.pending.delete(seq);
    };
  }

  /** A dispatch that is not routed (our own interactions) settles at once. */
  skip(shardId: number, sessionId: string, seq: number): void {
    this.track(shardId, sessionId, seq)('stored');
  }

  /** The last contiguous settled sequence of this session; undefined when nothing of it was received here. */
  ackedThrough(shardId: number, sessionId: string): number | undefined {
    const state = this.shards.get(shardId);
    if (!state || state.sessionId !== sessionId) return undefined;
    let lowest = Number.POSITIVE_INFINITY;
    for (const seq of state.pending.keys()) if (seq < lowest) lowest = seq;
    return lowest === Number.POSITIVE_INFINITY ? state.maxSeen : lowest - 1;
  }
}
