import { performance } from 'node:perf_hooks';

/** Latencies and wall time accumulated over one or more batches of the same operation. */
export class Recorder {
  readonly latencies: number[] = [];
  wallMs = 0;

  get ops(): number {
    return this.latencies.length;
  }

  /** Operations per second over the wall time of the batches (not the sum of latencies). */
  get throughput(): number {
    return this.wallMs > 0 ? (this.ops * 1000) / this.wallMs : NaN;
  }
}

/**
 * Runs `fn` over every item with `concurrency` workers pulling from one queue. Each call's
 * latency and the batch's wall time go into `rec`. Results keep the items' order.
 */
export async function runBatch<T, R>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<R>, rec?: Recorder): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      const t = performance.now();
      results[i] = await fn(items[i]!);
      rec?.latencies.push(performance.now() - t);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (rec) rec.wallMs += performance.now() - started;
  return results;
}

/** Times one call. */
export async function timeOnce<R>(fn: () => Promise<R>): Promise<{ result: R; ms: number }> {
  const t = performance.now();
  const result = await fn();
  return { result, ms: performance.now() - t };
}

/** [0, 1, ..., n-1]. */
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
