/**
 * Templates, reset and clone (issue 11 goals), on its own database:
 *  - create from a 10-table template (cached DDL, one call) against the same DDL run directly (goal ≤ 1.3×)
 *  - reset a sandbox of 10 tables and 10,000 rows (goal ≤ 200 ms) against the floor TRUNCATE + INSERT … SELECT
 *  - clone a sandbox of 100,000 rows (goal ≤ 5 s); clone an empty sandbox against a create (goal ≤ 1.3×)
 * Run: `npx tsx bench/scenarios/template.ts` (TEST_DATABASE_URL/BENCH settings as in bench/config.ts).
 * `npm run bench` runs it too (runTemplateScenario, one line in bench/run.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { applyTemplateDir } from '../../src/sandbox/store/template/apply.ts';
import { pgExecutor, type SqlExecutor } from '../../src/sandbox/store/template/sql.ts';
import { cloneSchema, createSchemaFromTemplate, renderDdl, resetSchemaToTemplate } from '../../src/sandbox/store/template/template.ts';
import { generateSchemaDdl } from '../../src/sandbox/store/template/generator.ts';
import type { Database } from '../../src/db/database.ts';
import { silentLogger } from '../../src/logger.ts';
import { SandboxManager } from '../../src/sandbox/manager.ts';
import { loadBenchConfig } from '../config.ts';
import { createBenchDatabase } from '../database.ts';
import { ms, ratio, summarize, type LatencyStats } from '../stats.ts';

export interface TemplateBenchResult {
  create: { template: LatencyStats; direct: LatencyStats; ratioP50: number };
  reset: { rows: number; tables: number; reset: LatencyStats; floor: LatencyStats; ratioP50: number };
  clone: { rows: number; ms: number; empty: LatencyStats; create: LatencyStats; ratioP50: number };
  /**
   * Through the manager (control-plane rows, audit, locks on both sides): clone of an empty sandbox vs a
   * create from a template of the same tables with no rows (both run the copy statements over empty tables),
   * and vs the stricter create --empty (no copy statements at all); reset at 10,000 rows.
   */
  manager?: { clone: LatencyStats; create: LatencyStats; ratioP50: number; createEmpty: LatencyStats; ratioEmptyP50: number; reset: LatencyStats };
}

const TABLES = 10;
const schemaName = (): string => `sandbox_${randomBytes(16).toString('hex')}`;

/** A 10-table template: enum, identity key, FK to the previous table, check, partial index, comment. */
function templateSql(rowsPerTable: number): string {
  const out = [`CREATE TYPE status AS ENUM ('new', 'active', 'closed');`];
  for (let i = 0; i < TABLES; i++) {
    out.push(`CREATE TABLE t${i} (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      ${i > 0 ? `parent_id bigint REFERENCES t${i - 1} (id),` : ''}
      name text NOT NULL,
      status status NOT NULL DEFAULT 'new',
      amount integer NOT NULL DEFAULT 0 CHECK (amount >= 0),
      created_at timestamptz NOT NULL DEFAULT now());
    CREATE INDEX t${i}_active_name ON t${i} (name) WHERE status = 'active';
    COMMENT ON TABLE t${i} IS 'bench table ${i}';
    INSERT INTO t${i} (${i > 0 ? 'parent_id, ' : ''}name, status, amount)
      SELECT ${i > 0 ? '1 + (g % ' + rowsPerTable + '), ' : ''}'row ' || g, (ARRAY['new','active','closed']::status[])[1 + g % 3], g % 1000
      FROM generate_series(1, ${rowsPerTable}) g;`);
  }
  return out.join('\n');
}

async function inTx<T>(pool: pg.Pool, fn: (sql: SqlExecutor, c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const r = await fn(pgExecutor(c), c);
    await c.query('COMMIT');
    return r;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

const timed = async (fn: () => Promise<unknown>): Promise<number> => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};

export async function runTemplateBench(pool: pg.Pool, opts: { rounds?: number; log?: (line: string) => void; database?: Database } = {}): Promise<TemplateBenchResult> {
  const rounds = opts.rounds ?? 20;
  const log = opts.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), 'sbx-bench-template-'));
  const drops: string[] = [];
  try {
    // Template A: 10 tables × 1,000 rows = 10,000 rows (the reset goal). Template B: 10 × 10,000 (the clone source).
    writeFileSync(join(dir, '001_tables.sql'), templateSql(1000));
    await applyTemplateDir(pool, dir, { template: 'bench_tpl' });
    const none = mkdtempSync(join(tmpdir(), 'sbx-bench-template-'));
    writeFileSync(join(none, '001_tables.sql'), templateSql(0));
    await applyTemplateDir(pool, none, { template: 'bench_none' });
    rmSync(none, { recursive: true, force: true });
    const big = mkdtempSync(join(tmpdir(), 'sbx-bench-template-'));
    writeFileSync(join(big, '001_tables.sql'), templateSql(10_000));
    await applyTemplateDir(pool, big, { template: 'bench_big' });
    rmSync(big, { recursive: true, force: true });

    // 1. create (structure only) from the cached template vs the same statements run directly.
    const ddl = await inTx(pool, (sql) => generateSchemaDdl(sql, 'bench_tpl'));
    const fromTemplate: number[] = [];
    const direct: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const a = schemaName();
      const b = schemaName();
      drops.push(a, b);
      const runTemplate = async () => fromTemplate.push(await timed(() => inTx(pool, (sql) => createSchemaFromTemplate(sql, a, { template: 'bench_tpl', empty: true }))));
      const runDirect = async () =>
        direct.push(await timed(() => inTx(pool, async (_s, c) => c.query([`CREATE SCHEMA "${b}"`, `SET LOCAL search_path = "${b}", pg_catalog`, ...renderDdl(ddl, b, { empty: true })].join(';\n')))));
      if (r % 2 === 0) {
        await runTemplate();
        await runDirect();
      } else {
        await runDirect();
        await runTemplate();
      }
    }
    log(`create: template p50 ${ms(summarize(fromTemplate).p50)} ms, direct p50 ${ms(summarize(direct).p50)} ms`);

    // 2. reset a dirtied 10-table, 10,000-row sandbox vs TRUNCATE + INSERT … SELECT of the same rows.
    const s = schemaName();
    drops.push(s);
    await inTx(pool, (sql) => createSchemaFromTemplate(sql, s, { template: 'bench_tpl' }));
    const seed = ddl.seed.filter((x) => x.startsWith('INSERT')).map((x) => x.replace(/%1\$I/g, `"${s}"`).replace(/%%/g, '%'));
    const resets: number[] = [];
    const floors: number[] = [];
    for (let r = 0; r < rounds; r++) {
      await pool.query(`INSERT INTO "${s}".t0 (name) SELECT 'dirty ' || g FROM generate_series(1, 500) g`);
      const reset = async () => resets.push(await timed(() => inTx(pool, (sql) => resetSchemaToTemplate(sql, s, { template: 'bench_tpl' }))));
      const floor = async () =>
        floors.push(
          await timed(() =>
            inTx(pool, async (_s, c) => {
              await c.query(`SET LOCAL search_path = "${s}", pg_catalog`);
              await c.query(`TRUNCATE ${Array.from({ length: TABLES }, (_, i) => `"${s}".t${i}`).join(', ')}`);
              for (const q of seed) await c.query(q);
            }),
          ),
        );
      if (r % 2 === 0) {
        await reset();
        await floor();
      } else {
        await floor();
        await reset();
      }
    }
    log(`reset: p50 ${ms(summarize(resets).p50)} ms, floor p50 ${ms(summarize(floors).p50)} ms`);

    // 3. clone 100,000 rows; clone an empty sandbox vs a create.
    const src = schemaName();
    const dst = schemaName();
    drops.push(src, dst);
    await inTx(pool, (sql) => createSchemaFromTemplate(sql, src, { template: 'bench_big' }));
    const cloneMs = await timed(() => inTx(pool, (sql) => cloneSchema(sql, src, dst)));
    log(`clone 100,000 rows: ${ms(cloneMs)} ms`);
    const emptySrc = schemaName();
    drops.push(emptySrc);
    await inTx(pool, (sql) => createSchemaFromTemplate(sql, emptySrc, { template: 'bench_tpl', empty: true }));
    const clones: number[] = [];
    const creates: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const a = schemaName();
      const b = schemaName();
      drops.push(a, b);
      clones.push(await timed(() => inTx(pool, (sql) => cloneSchema(sql, emptySrc, a))));
      creates.push(await timed(() => inTx(pool, (sql) => createSchemaFromTemplate(sql, b, { template: 'bench_tpl', empty: true }))));
    }
    log(`clone empty: p50 ${ms(summarize(clones).p50)} ms, create p50 ${ms(summarize(creates).p50)} ms`);

    // 4. The same through the manager, so both sides carry the control plane: clone of an empty sandbox
    //    vs a create from the same tables with no rows (fresh owner each, destroyed untimed), and vs
    //    create --empty; and reset at 10,000 rows.
    let managerResult: TemplateBenchResult['manager'];
    if (opts.database) {
      // The database already holds the scale points' seeded sandboxes: lift the installation-wide cap.
      const deps = { prisma: opts.database.prisma, logger: silentLogger(), limits: { maxPerOwner: 1000, maxTotal: 10_000_000 } };
      const manager = new SandboxManager({ ...deps, template: 'bench_tpl' });
      const noRows = new SandboxManager({ ...deps, template: 'bench_none' });
      const actor = { kind: 'operator', name: 'bench-template' } as const;
      const source = (await noRows.create({ owner: 'cli:bench-template-src' }, actor)).sandbox;
      const seeded = (await manager.create({ owner: 'cli:bench-template-src' }, actor)).sandbox;
      const mClones: number[] = [];
      const mCreates: number[] = [];
      const mEmpties: number[] = [];
      const mResets: number[] = [];
      const time = async (fn: () => Promise<string>, made: string[]): Promise<number> => {
        const t = performance.now();
        made.push(await fn());
        return performance.now() - t;
      };
      for (let r = 0; r < rounds + 2; r++) {
        const made: string[] = [];
        const steps = [
          () => time(async () => (await noRows.clone(source.id, undefined, actor)).sandbox.id, made),
          () => time(async () => (await noRows.create({ owner: 'cli:bench-template-new' }, actor)).sandbox.id, made),
          () => time(async () => (await manager.create({ owner: 'cli:bench-template-new', empty: true }, actor)).sandbox.id, made),
        ];
        // Rotate which runs first, so none always meets a warmer cache.
        const took: number[] = [];
        for (let k = 0; k < steps.length; k++) {
          const i = (k + r) % steps.length;
          took[i] = await steps[i]!();
        }
        await pool.query(`INSERT INTO "${seeded.schemaName}".t0 (name) SELECT 'dirty ' || g FROM generate_series(1, 500) g`);
        const rt = performance.now();
        await manager.reset(seeded.id, actor);
        const resetMs = performance.now() - rt;
        if (r >= 2) {
          mClones.push(took[0]!);
          mCreates.push(took[1]!);
          mEmpties.push(took[2]!);
          mResets.push(resetMs);
        }
        for (const id of made) await manager.destroy(id, actor);
      }
      await manager.destroy(source.id, actor);
      await manager.destroy(seeded.id, actor);
      const mc = summarize(mClones);
      const mk = summarize(mCreates);
      const me = summarize(mEmpties);
      managerResult = { clone: mc, create: mk, ratioP50: ratio(mc.p50, mk.p50), createEmpty: me, ratioEmptyP50: ratio(mc.p50, me.p50), reset: summarize(mResets) };
      log(`manager: clone empty p50 ${ms(mc.p50)} ms, create p50 ${ms(mk.p50)} ms, create --empty p50 ${ms(me.p50)} ms, reset p50 ${ms(managerResult.reset.p50)} ms`);
    }

    const t = summarize(fromTemplate);
    const d = summarize(direct);
    const rs = summarize(resets);
    const fl = summarize(floors);
    const cl = summarize(clones);
    const cr = summarize(creates);
    return {
      create: { template: t, direct: d, ratioP50: ratio(t.p50, d.p50) },
      reset: { rows: 10_000, tables: TABLES, reset: rs, floor: fl, ratioP50: ratio(rs.p50, fl.p50) },
      clone: { rows: 100_000, ms: Math.round(cloneMs), empty: cl, create: cr, ratioP50: ratio(cl.p50, cr.p50) },
      ...(managerResult ? { manager: managerResult } : {}),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    for (const s of drops) await pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`).catch(() => undefined);
  }
}

export function renderTemplateBench(r: TemplateBenchResult): string {
  const line = (label: string, value: string, goal: string): string => `${label.padEnd(48)} ${value.padStart(16)}   ${goal ? `goal ${goal}` : ''}`.trimEnd();
  const out = [
    'Templates, reset and clone (10-table template)',
    line('create from template / same DDL direct (p50)', `${r.create.ratioP50}×`, '≤ 1.3×'),
    line(`  template p50 / direct p50`, `${ms(r.create.template.p50)} / ${ms(r.create.direct.p50)} ms`, ''),
    line(`reset 10 tables, 10,000 rows (p50 / p95)`, `${ms(r.reset.reset.p50)} / ${ms(r.reset.reset.p95)} ms`, '≤ 200 ms'),
    line(`  floor TRUNCATE + INSERT (p50)`, `${ms(r.reset.floor.p50)} ms`, ''),
    line('clone 100,000 rows', `${r.clone.ms} ms`, '≤ 5000 ms'),
    line('clone empty / create, schema only (p50)', `${r.clone.ratioP50}×`, ''),
  ];
  if (r.manager) {
    out.push(line('manager clone of an empty sandbox / manager create (p50)', `${r.manager.ratioP50}×`, '≤ 1.3×'));
    out.push(line('  clone p50 / create p50', `${ms(r.manager.clone.p50)} / ${ms(r.manager.create.p50)} ms`, ''));
    out.push(line('  clone / create --empty (no copy statements) (p50)', `${r.manager.ratioEmptyP50}× (${ms(r.manager.createEmpty.p50)} ms)`, ''));
    out.push(line('manager reset, 10,000 rows (p50 / p95)', `${ms(r.manager.reset.p50)} / ${ms(r.manager.reset.p95)} ms`, '≤ 200 ms'));
  }
  return out.join('\n');
}

/** For bench/run.ts: runs on the bench database (manager included) and returns the printed section. */
export async function runTemplateScenario(db: Database, progress: (line: string) => void, rounds = 20): Promise<TemplateBenchResult> {
  progress(`templates: create, reset at 10,000 rows, clone at 100,000 rows, ${rounds} rounds`);
  return runTemplateBench(db.pool, { rounds, database: db, log: (l) => progress(`templates: ${l}`) });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const cfg = loadBenchConfig();
  let drop: (() => Promise<void>) | undefined;
  const db = await createBenchDatabase(cfg.adminUrl, (d) => (drop = d), 4);
  try {
    const r = await runTemplateBench(db.pool, { database: db, rounds: Number(process.env.BENCH_TEMPLATE_ROUNDS ?? 20), log: (l) => process.stderr.write(`[template bench] ${l}\n`) });
    console.log(renderTemplateBench(r));
    console.log(JSON.stringify(r));
  } finally {
    await drop?.();
  }
}
