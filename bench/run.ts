/**
 * `npm run bench`: the performance baseline. Creates its own database, measures every scenario
 * side by side in one run, prints a table, writes bench/results/<timestamp>.json, and drops the
 * database again (also on failure and on SIGINT/SIGTERM).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { loadBenchConfig } from './config.ts';
import { createBenchDatabase, QueryCounter } from './database.ts';
import { describeMachine, machineInfo } from './machine.ts';
import { benchManager } from './operations.ts';
import { render, type BenchResults } from './report.ts';
import { runGuildLookup } from './scenarios/guild-lookup.ts';
import { runInteractionAck } from './scenarios/interaction-ack.ts';
import { runLifecycle, warmUp } from './scenarios/lifecycle.ts';
import { runScale } from './scenarios/scale.ts';
import { renderRss, runRss } from './scenarios/rss.ts';
import { renderEmbeddedCli, runEmbeddedCli } from './scenarios/embedded-cli.ts';
import { runSdkBench } from './sdk.ts';
import { renderTemplateBench, runTemplateScenario } from './scenarios/template.ts';
import { renderPlacementBench, runPlacementScenario } from './scenarios/placement.ts';

const PASSES = ['list', 'sweep', 'findOrphans', 'cleanupOrphans'] as const;
const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');
let interrupted = false;
const progress = (line: string): void => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

async function main(): Promise<void> {
  const started = performance.now();
  const cfg = loadBenchConfig();
  let drop: (() => Promise<void>) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted = true;
    progress(`${signal}: dropping the bench database`);
    void (drop?.() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const db = await createBenchDatabase(cfg.adminUrl, (d) => (drop = d));
  const floorPool = new pg.Pool({ connectionString: db.url, max: cfg.concurrency + 2 });
  try {
    const machine = await machineInfo(db.pool);
    console.log(describeMachine(machine));
    progress(`database ${db.name} created and migrated`);
    const notes: string[] = [
      'Seeded sandboxes are bulk-inserted rows (running, one guild mapping and five audit rows each) with an EMPTY schema each (CREATE SCHEMA, no tables), so drift checks see them as healthy and pg_namespace has its real size.',
      'list() is the manager default (all owners, not destroyed, newest first, at most 1000 rows).',
      'Orphans are empty sandbox-pattern schemas planted before each cleanup; the sweeper pass is idle (nothing due) and has no DM notifier.',
    ];

    // First, on the empty database: the bot's startup reconciliation would unmap every seeded
    // guild, since the fake's gateway session does not list them.
    let interactionAck: BenchResults['interactionAck'];
    if (cfg.interactions > 0) {
      progress(`interaction acknowledgement: ${cfg.interactions} commands through the fake Discord`);
      try {
        interactionAck = await runInteractionAck(db.url, { commands: cfg.interactions, warmup: 4 });
      } catch (err) {
        interactionAck = { skipped: `startApp was not usable: ${(err as Error).message}` };
        progress(`interaction acknowledgement skipped: ${(err as Error).message}`);
      }
    } else {
      interactionAck = { skipped: 'BENCH_INTERACTIONS=0' };
    }

    const manager = benchManager(db);
    // Create/destroy as production runs them on a PostgreSQL server: isolation on (role + grants), the floor with the same DDL.
    const isolated = benchManager(db, { isolation: true });
    const counter = new QueryCounter(db.pool);
    progress(`warm-up: ${cfg.warmup} of each`);
    await warmUp(isolated, floorPool, cfg.warmup);
    progress(`create/destroy: ${cfg.iterations} sequential, ${cfg.concurrentIterations} with ${cfg.concurrency} concurrent`);
    const lifecycle = [
      await runLifecycle(isolated, floorPool, { mode: 'sequential', total: cfg.iterations, concurrency: 1 }),
      await runLifecycle(isolated, floorPool, { mode: `${cfg.concurrency} concurrent`, total: cfg.concurrentIterations, concurrency: cfg.concurrency }),
    ];
    notes.push(
      isolated.postgresResources.length
        ? 'Create/destroy run with isolation on (as with DATABASE_URL in production): the role and its grants are made in the provisioning transaction and dropped in the teardown one; the floor runs the same role DDL (and computes the same SCRAM verifier). The scale sizes run with isolation off: seeded rows have no roles, and 50,000 cluster-wide roles would be shared with every other database on the server.'
        : 'BENCH_ISOLATION=off: create/destroy without roles.',
    );

    progress(`scale: ${cfg.scaleSizes.join(', ')} existing sandboxes`);
    const scale = await runScale(manager, counter, db.pool, floorPool, {
      sizes: cfg.scaleSizes,
      creates: cfg.scaleCreates,
      reps: cfg.scaleReps,
      orphans: cfg.orphans,
      seedBatch: cfg.seedBatch,
    }, progress);

    const mappings = cfg.scaleSizes.at(-1) ?? 0;
    const guildLookup = [];
    if (mappings > 0) {
      progress(`guild lookup: ${cfg.lookups} per mode over ${mappings} mappings`);
      guildLookup.push(await runGuildLookup(manager, counter, floorPool, { mode: 'sequential', lookups: cfg.lookups, concurrency: 1, mappings }));
      guildLookup.push(await runGuildLookup(manager, counter, floorPool, { mode: `${cfg.concurrency} concurrent`, lookups: cfg.lookups, concurrency: cfg.concurrency, mappings }));
    } else {
      notes.push('Guild lookup skipped: no seeded mappings (the largest scale size is 0).');
    }

    const growing = PASSES.filter((k) => new Set(scale.map((p) => p[k].statements)).size > 1);
    notes.push(
      growing.length
        ? `Statements per pass CHANGE with size for: ${growing.map((k) => `${k} (${scale.map((p) => p[k].statements).join(' → ')})`).join(', ')}.`
        : 'Statements per pass are the same at every size for list, the sweeper pass and orphan find/cleanup: one query per step, not one per sandbox.',
    );
    const last = scale.at(-1);
    if (last && cfg.orphans > 0) {
      notes.push(`cleanupOrphanedSchemas sends ${last.cleanupOrphans.statements} statements for ${cfg.orphans} orphans: 1 query to find them, then ${(last.cleanupOrphans.statements - 1) / cfg.orphans} per orphan (its own locked, re-checked drop transaction), independent of the number of sandboxes.`);
    }

    const results: BenchResults = {
      startedAt: new Date(Date.now() - (performance.now() - started)).toISOString(),
      durationMs: 0,
      machine,
      config: { ...cfg, adminUrl: undefined },
      headline: {
        createOverheadP50: lifecycle[0]!.create.ratioP50,
        createOverheadP50Concurrent: lifecycle[1]!.create.ratioP50,
        createP50At: Object.fromEntries(scale.map((p) => [String(p.existing), p.create.full.p50])),
      },
      lifecycle,
      scale,
      guildLookup,
      interactionAck,
      notes,
    };
    results.durationMs = Math.round(performance.now() - started);
    notes.push(`Load average ${machine.loadAvgAtStart} at start, ${loadavg()[0]!.toFixed(2)} at the end (2 cores; other work on the machine shows here, and is why only side-by-side ratios are meaningful).`);
    console.log(render(results));
    console.log(`\n${renderTemplateBench(Object.assign(results, { templates: await runTemplateScenario(db, progress) }).templates)}`);
    // Placement: creates on two servers (a private cluster started here) against one. BENCH_PLACEMENT=0 skips it.
    if (process.env.BENCH_PLACEMENT !== '0') {
      const placement = await runPlacementScenario(db, { total: Number(process.env.BENCH_PLACEMENT_CREATES ?? 60), concurrency: cfg.concurrency, warmup: cfg.warmup }, progress);
      console.log(`\n${renderPlacementBench(Object.assign(results, { placement }).placement)}`);
    }

    // Footprint, last so its child processes do not disturb the ratios above. BENCH_FOOTPRINT=0 skips it.
    const footprint: Record<string, unknown> = {};
    if (process.env.BENCH_FOOTPRINT !== '0') {
      const rss = await runRss(cfg.adminUrl, {
        guilds: Number(process.env.BENCH_RSS_GUILDS ?? 100),
        idleMs: Number(process.env.BENCH_RSS_IDLE_MS ?? 10_000),
        embedded: process.env.BENCH_RSS_EMBEDDED !== '0',
      }, progress);
      const cli = runEmbeddedCli({ runs: Number(process.env.BENCH_CLI_RUNS ?? 5) }, progress);
      console.log(`\n${renderRss(rss)}\n\n${renderEmbeddedCli(cli)}`);
      Object.assign(footprint, { rss, embeddedCli: cli });
      results.durationMs = Math.round(performance.now() - started);
    }

    if (process.env.BENCH_SDK !== '0') footprint.sdk = await runSdkBench(progress).then(({ text, ...r }) => (console.log(`\n${text}`), r));
    // Event routing (needs NATS): BENCH_ROUTING=1 adds its section (bench/routing.ts).
    if (process.env.BENCH_ROUTING === '1') footprint.routing = await import('./routing.ts').then(async ({ runRoutingBench }) => { progress('event routing'); const r = await runRoutingBench(cfg.adminUrl); console.log(`\n${r.text}`); return r.figures; });

    mkdirSync(RESULTS_DIR, { recursive: true });
    const file = join(RESULTS_DIR, `${results.startedAt.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify({ ...results, ...footprint }, null, 2)}\n`);
    console.log(`\nTotal ${(results.durationMs / 1000).toFixed(1)} s. Results: ${relative(process.cwd(), file)}`);
  } finally {
    await floorPool.end().catch(() => undefined);
    await db.drop();
    progress(`database ${db.name} dropped`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    if (interrupted) return; // the signal handler exits once the database is dropped
    console.error('bench failed:', err);
    process.exit(1);
  },
);
