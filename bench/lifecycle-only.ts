import { performance } from 'node:perf_hooks';
/**
 * `npx tsx bench/lifecycle-only.ts`: only the create/destroy comparison of `npm run bench` (isolation
 * on), for iterating on the lifecycle's overhead. Prints statements per create/destroy and the ratios.
 * Knobs: the BENCH_* variables of bench/config.ts; LC_MODES=seq,conc (or none); LC_TRACE=1 prints each
 * statement of one create and one destroy (times are only meaningful inside transactions: pool.query
 * calls use a callback); LC_TX=1 times Prisma's query and transaction overhead; LC_DDL=1 compares
 * create_sandbox_schema with the template build.
 */
import pg from 'pg';
import { loadBenchConfig } from './config.ts';
import { createBenchDatabase, QueryCounter } from './database.ts';
import { benchManager, fullCreate, fullDestroy } from './operations.ts';
import { runLifecycle, warmUp } from './scenarios/lifecycle.ts';

let T0 = 0;
async function main(): Promise<void> {
  const cfg = loadBenchConfig();
  let drop: (() => Promise<void>) | undefined;
  process.once('SIGINT', () => void (drop?.() ?? Promise.resolve()).finally(() => process.exit(130)));
  const db = await createBenchDatabase(cfg.adminUrl, (d) => (drop = d));
  const floorPool = new pg.Pool({ connectionString: db.url, max: cfg.concurrency + 2 });
  try {
    const isolated = benchManager(db, { isolation: true });
    const counter = new QueryCounter(db.pool);
    await warmUp(isolated, floorPool, cfg.warmup);
    if (process.env.LC_TRACE) {
      db.pool.on('acquire', (client) => {
        const cl = client as pg.PoolClient & { traced?: true };
        if (cl.traced) return;
        cl.traced = true;
        const q = cl.query.bind(cl) as (...a: unknown[]) => unknown;
        (cl as { query: unknown }).query = (...a: unknown[]) => {
          const t = a[0] as string | { text: string };
          const t0 = performance.now();
          const r = q(...a) as Promise<unknown>;
          const text = (typeof t === 'string' ? t : t.text).replace(/\s+/g, ' ').slice(0, 110);
          void Promise.resolve(r).then(() => console.log(`  SQL ${(performance.now() - t0).toFixed(2)} ms @${(performance.now() - T0).toFixed(2)}:`, text), () => undefined);
          return r;
        };
      });
    }
    T0 = performance.now();
    const c = await counter.count(() => fullCreate(isolated));
    console.log(`create ${(performance.now() - T0).toFixed(2)} ms`);
    T0 = performance.now();
    const d = await counter.count(() => fullDestroy(isolated, c.result));
    console.log(`destroy ${(performance.now() - T0).toFixed(2)} ms`);
    console.log(`statements (incl. BEGIN/COMMIT): create ${c.statements}, destroy ${d.statements}`);
    if (process.env.LC_TX) {
      const p50 = async (label: string, fn: () => Promise<unknown>) => {
        const ms: number[] = [];
        for (let i = 0; i < 200; i++) { const t = performance.now(); await fn(); ms.push(performance.now() - t); }
        ms.sort((a, b) => a - b);
        console.log(`${label.padEnd(40)} p50 ${ms[100]!.toFixed(3)} ms  p90 ${ms[180]!.toFixed(3)}`);
      };
      for (let r = 0; r < 2; r++) {
        await p50('pool SELECT 1', () => db.pool.query('SELECT 1'));
        await p50('prisma $queryRaw SELECT 1', () => db.prisma.$queryRaw`SELECT 1`);
        await p50('prisma $transaction(SELECT 1)', () => db.prisma.$transaction(async (tx) => tx.$queryRaw`SELECT 1`));
        await p50('pg client BEGIN;SELECT 1;COMMIT', async () => { const c = await db.pool.connect(); try { await c.query('BEGIN'); await c.query('SELECT 1'); await c.query('COMMIT'); } finally { c.release(); } });
      }
    }
    if (process.env.LC_DDL) {
      const { randomUUID } = await import('node:crypto');
      const { GENERATOR_VERSION } = await import('../src/sandbox/store/template/generator.ts');
      for (let round = 0; round < 3; round++) {
        for (const [label, sql] of [
          ['create_sandbox_schema', 'SELECT create_sandbox_schema($1::uuid)'],
          ['template_instantiate', `SELECT sandbox_template_instantiate(sandbox_schema_name($1::uuid), 'sandbox_template', ${GENERATOR_VERSION}, true)`],
          ['template_instantiate no seed', `SELECT sandbox_template_instantiate(sandbox_schema_name($1::uuid), 'sandbox_template', ${GENERATOR_VERSION}, false)`],
        ] as const) {
          const ms: number[] = [];
          for (let i = 0; i < 15; i++) {
            const id = randomUUID();
            const t = performance.now();
            const r = await floorPool.query(sql, [id]);
            ms.push(performance.now() - t);
            if (i === 0 && round === 0) console.log(label, JSON.stringify(r.rows[0]));
            await floorPool.query('SELECT drop_sandbox_schema($1::uuid)', [id]);
          }
          ms.sort((a, b) => a - b);
          console.log(`${label.padEnd(30)} p50 ${ms[7]!.toFixed(2)} ms`);
        }
      }
    }
    const modes = process.env.LC_MODES ?? 'seq,conc';
    for (const mode of modes.split(',')) {
      const r = mode === 'seq'
        ? await runLifecycle(isolated, floorPool, { mode: 'sequential', total: cfg.iterations, concurrency: 1 })
        : await runLifecycle(isolated, floorPool, { mode: `${cfg.concurrency} concurrent`, total: cfg.concurrentIterations, concurrency: cfg.concurrency });
      const f = (x: number) => x.toFixed(2);
      console.log(`${r.mode.padEnd(13)} create ${f(r.create.full.p50)}/${f(r.create.floor.p50)} ms = ${f(r.create.ratioP50)}x   destroy ${f(r.destroy.full.p50)}/${f(r.destroy.floor.p50)} ms = ${f(r.destroy.ratioP50)}x`);
    }
  } finally {
    await floorPool.end().catch(() => undefined);
    await db.drop();
  }
}
main().then(() => process.exit(0), (err: unknown) => { console.error(err); process.exit(1); });
