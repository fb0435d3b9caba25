/** Benchmark knobs, all overridable from the environment. Defaults fit 3–5 minutes on 2 cores. */
export interface BenchConfig {
  /** Server to create the bench database on (any database URL on it; the path is replaced). */
  adminUrl: string;
  /** Sequential creates (and destroys) of each kind: full manager operation and bare DDL floor. */
  iterations: number;
  /** Concurrent creates (and destroys) of each kind. */
  concurrentIterations: number;
  concurrency: number;
  /** Untimed operations of each kind before measuring. */
  warmup: number;
  /** Existing sandboxes at which scale is measured, ascending (default 0, 1,000, 5,000 and 50,000; the gates compare 5,000 with 0). */
  scaleSizes: number[];
  /** Creates (and floor creates) timed at each scale size. */
  scaleCreates: number;
  /** Repetitions of list / sweeper pass / orphan cleanup at each size. */
  scaleReps: number;
  /** Orphan schemas planted before each orphan-cleanup repetition. */
  orphans: number;
  /** Rows per bulk seeding statement. */
  seedBatch: number;
  /** getByGuildId calls per mode (sequential, concurrent), and as many raw SQL lookups. */
  lookups: number;
  /** Interaction commands sent through the fake Discord (0 skips the scenario). */
  interactions: number;
}

function int(name: string, fallback: number, min = 0): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min} (got ${JSON.stringify(raw)})`);
  return n;
}

function sizes(name: string, fallback: number[]): number[] {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isInteger(n) || n < 0)) throw new Error(`${name} must be a comma-separated list of integers (got ${JSON.stringify(raw)})`);
  return [...new Set(list)].sort((a, b) => a - b);
}

export function loadBenchConfig(): BenchConfig {
  return {
    adminUrl: process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    iterations: int('BENCH_ITERATIONS', 100, 1),
    concurrentIterations: int('BENCH_CONCURRENT_ITERATIONS', 160, 1),
    concurrency: int('BENCH_CONCURRENCY', 8, 1),
    warmup: int('BENCH_WARMUP', 5),
    scaleSizes: sizes('BENCH_SCALE_SIZES', [0, 1000, 5000, 50000]),
    scaleCreates: int('BENCH_SCALE_CREATES', 40, 1),
    scaleReps: int('BENCH_SCALE_REPS', 41, 1),
    orphans: int('BENCH_ORPHANS', 5),
    seedBatch: int('BENCH_SEED_BATCH', 1000, 1),
    lookups: int('BENCH_LOOKUPS', 3000, 1),
    interactions: int('BENCH_INTERACTIONS', 50),
  };
}
