/**
 * `npx tsx bench/placement-only.ts`: only the placement comparison of `npm run bench` (creates on two
 * servers against one; the second is a private cluster started here). Knobs: BENCH_PLACEMENT_CREATES
 * (default 60 per mode), and BENCH_CONCURRENCY / BENCH_WARMUP of bench/config.ts.
 */
import { loadBenchConfig } from './config.ts';
import { createBenchDatabase } from './database.ts';
import { renderPlacementBench, runPlacementScenario } from './scenarios/placement.ts';

async function main(): Promise<void> {
  const cfg = loadBenchConfig();
  let drop: (() => Promise<void>) | undefined;
  process.once('SIGINT', () => void (drop?.() ?? Promise.resolve()).finally(() => process.exit(130)));
  const db = await createBenchDatabase(cfg.adminUrl, (d) => (drop = d));
  try {
    const r = await runPlacementScenario(db, { total: Number(process.env.BENCH_PLACEMENT_CREATES ?? 60), concurrency: cfg.concurrency, warmup: cfg.warmup }, (l) => process.stderr.write(`${l}\n`));
    console.log(renderPlacementBench(r));
  } finally {
    await db.drop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('bench failed:', err);
    process.exit(1);
  },
);
