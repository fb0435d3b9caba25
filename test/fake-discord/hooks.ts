import type { RestResult } from './http.ts';

/** Matched against `"METHOD /path"`, e.g. `"POST /interactions/123/tok/callback"`; a string matches as a substring. */
export type RoutePattern = RegExp | string;

interface Failure {
  pattern: RoutePattern;
  result: RestResult;
  remaining: number;
}

interface Hold {
  pattern: RoutePattern;
  released: Promise<void>;
  release: () => void;
}

export interface FailOptions {
  /** How many matching requests fail (default 1). discord.js retries 5xx up to 3 times. */
  times?: number;
  body?: unknown;
}

function matches(pattern: RoutePattern, key: string): boolean {
  if (typeof pattern === 'string') return key.includes(pattern);
  pattern.lastIndex = 0;
  return pattern.test(key);
}

/** Test controls that slow down, hold or fail REST routes. */
export class RouteHooks {
  private readonly latencies = new Map<RoutePattern, number>();
  private readonly holds = new Set<Hold>();
  private readonly failures: Failure[] = [];
  private readonly timers = new Set<{ timer: NodeJS.Timeout; done: () => void }>();

  /** Delays matching requests by `ms`; returns a function that removes the delay. */
  setLatency(pattern: RoutePattern, ms: number): () => void {
    this.latencies.set(pattern, ms);
    return () => this.latencies.delete(pattern);
  }

  /** Matching requests wait until the returned function is called. */
  holdRoute(pattern: RoutePattern): () => void {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const hold: Hold = { pattern, released, release };
    this.holds.add(hold);
    return () => {
      this.holds.delete(hold);
      release();
    };
  }

  failNext(pattern: RoutePattern, status: number, options: FailOptions = {}): void {
    const headers: Record<string, string> = status === 429 ? { 'retry-after': '0.05' } : {};
    const body =
      options.body ??
      (status === 429
        ? { message: 'You are being rate limited.', retry_after: 0.05, global: false, code: 0 }
        : { message: `${status}: Fake failure`, code: 0 });
    this.failures.push({ pattern, result: { status, body, headers }, remaining: options.times ?? 1 });
  }

  /** Applies latency and holds, then returns a scripted failure if one matches. */
  async apply(key: string): Promise<RestResult | null> {
    let delay = 0;
    for (const [pattern, ms] of this.latencies) if (matches(pattern, key)) delay = Math.max(delay, ms);
    if (delay > 0) await this.sleep(delay);
    for (const hold of [...this.holds]) if (matches(hold.pattern, key)) await hold.released;
    const failure = this.failures.find((f) => matches(f.pattern, key));
    if (!failure) return null;
    if (--failure.remaining <= 0) this.failures.splice(this.failures.indexOf(failure), 1);
    return failure.result;
  }

  /** Lets every waiting request through (used on stop). */
  releaseAll(): void {
    for (const hold of this.holds) hold.release();
    this.holds.clear();
    for (const entry of this.timers) {
      clearTimeout(entry.timer);
      entry.done();
    }
    this.timers.clear();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.timers.delete(entry);
          resolve();
        }, ms),
        done: resolve,
      };
      this.timers.add(entry);
    });
  }
}
