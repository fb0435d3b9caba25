/**
 * Placement (#10): the create ratio on two servers against one, side by side in one run. "One" is
 * the manager as it runs with no SANDBOX_DATABASE_SERVERS (every schema on the control database);
 * "two" has a second server, a private cluster this scenario starts on the same machine (the
 * tests' test/support/second-cluster.ts, with fsync on like the shared server) and removes. Both use the same control database and
 * isolation (role + grants), in rounds that alternate which side goes first. A two-server create
 * also probes the second server (placement skips servers that are down) and, for sandboxes placed
 * there, commits two transactions on two servers instead of one.
 */
import type { Database } from '../../src/db/database.ts';
import { openServerHandle } from '../../src/db/servers.ts';
import { silentLogger } from '../../src/logger.ts';
import { SandboxServers } from '../../src/sandbox/servers.ts';
import type { Sandbox } from '../../src/sandbox/types.ts';
import { startSecondCluster } from '../../test/support/second-cluster.ts';
import { Recorder, range, runBatch } from '../measure.ts';
import { benchManager, fullCreate, fullDestroy } from '../operations.ts';
import { ms, num, ratio, summarize, table, times } from '../stats.ts';

export interface PlacementRow {
  mode: string;
  concurrency: number;
  one: { p50: number; p95: number; opsPerSec: number };
  two: { p50: number; p95: number; opsPerSec: number };
  /** two / one create latency at p50 (below 1: faster on two servers). */
  ratioP50: number;
  /** two / one create throughput (above 1: more creates per second on two servers). */
  throughputRatio: number;
  destroyRatioP50: number;
  /** Where the two-server manager placed its creates. */
  split: Record<string, number>;
}

export type PlacementBench = { rows: PlacementRow[] } | { skipped: string };

export async function runPlacementScenario(db: Database, opts: { total: number; concurrency: number; warmup: number }, progress: (line: string) => void): Promise<PlacementBench> {
  let cluster;
  try {
    cluster = await startSecondCluster({ durable: true });
  } catch (err) {
    return { skipped: `no private cluster: ${(err as Error).message.split('\n')[0]}` };
  }
  const servers = new SandboxServers(SandboxServers.controlOnly(db.prisma, db.url, db.pool).handle('default'), [
    openServerHandle({ name: 's2', url: await cluster.createDatabase('sbx_bench_placement') }, silentLogger()),
  ]);
  try {
    const one = benchManager(db, { isolation: true });
    const two = benchManager(db, { isolation: true, servers });
    progress(`placement: second cluster on port ${cluster.port}; warm-up`);
    for (let i = 0; i < opts.warmup; i++) {
      await fullDestroy(one, await fullCreate(one));
      // Two at a time, so both servers of the two-server manager are warm.
      for (const s of await Promise.all([fullCreate(two), fullCreate(two)])) await fullDestroy(two, s);
    }
    const rows: PlacementRow[] = [];
    for (const concurrency of [1, opts.concurrency]) {
      const mode = concurrency === 1 ? 'sequential' : `${concurrency} concurrent`;
      progress(`placement: ${opts.total} creates ${mode}, one server and two`);
      const rec = { one: new Recorder(), two: new Recorder(), oneDestroy: new Recorder(), twoDestroy: new Recorder() };
      const split: Record<string, number> = {};
      const roundSize = Math.max(10, concurrency * 2);
      for (let done = 0, round = 0; done < opts.total; done += roundSize, round++) {
        const n = range(Math.min(roundSize, opts.total - done));
        // Each side creates its batch and destroys it before the other goes (alternating who is first), so
        // the one-server side's sandboxes never count as live on `default` when the two-server side places.
        const side = async (manager: typeof one, create: Recorder, destroy: Recorder): Promise<Sandbox[]> => {
          const made = await runBatch(n, concurrency, () => fullCreate(manager), create);
          await runBatch(made, concurrency, (s) => fullDestroy(manager, s), destroy);
          return made;
        };
        const sides = [() => side(one, rec.one, rec.oneDestroy), () => side(two, rec.two, rec.twoDestroy).then((made) => made.forEach((s) => (split[s.server] = (split[s.server] ?? 0) + 1)))];
        for (const run of round % 2 === 0 ? sides : sides.reverse()) await run();
      }
      const stat = (r: Recorder) => ({ ...pick(summarize(r.latencies)), opsPerSec: r.throughput });
      const a = stat(rec.one);
      const b = stat(rec.two);
      rows.push({
        mode,
        concurrency,
        one: a,
        two: b,
        ratioP50: ratio(b.p50, a.p50),
        throughputRatio: ratio(b.opsPerSec, a.opsPerSec),
        destroyRatioP50: ratio(summarize(rec.twoDestroy.latencies).p50, summarize(rec.oneDestroy.latencies).p50),
        split,
      });
    }
    return { rows };
  } finally {
    await servers.close();
    await cluster.destroy();
  }
}

const pick = (s: { p50: number; p95: number }) => ({ p50: s.p50, p95: s.p95 });

export function renderPlacementBench(r: PlacementBench): string {
  if ('skipped' in r) return `Placement (two servers vs one): SKIPPED (${r.skipped})`;
  return table(
    'Placement: full create on two servers (control + a private cluster on this machine) vs one, same control database, interleaved',
    ['mode', 'one server p50/p95 ms', 'ops/s', 'two servers p50/p95 ms', 'ops/s', 'two/one create p50', 'two/one ops/s', 'two/one destroy p50', 'two-server split'],
    r.rows.map((x) => [
      x.mode,
      `${ms(x.one.p50)} / ${ms(x.one.p95)}`,
      num(x.one.opsPerSec),
      `${ms(x.two.p50)} / ${ms(x.two.p95)}`,
      num(x.two.opsPerSec),
      times(x.ratioP50),
      times(x.throughputRatio),
      times(x.destroyRatioP50),
      Object.entries(x.split).map(([k, v]) => `${k} ${v}`).join(', '),
    ]),
  );
}
