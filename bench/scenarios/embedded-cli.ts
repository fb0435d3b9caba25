/**
 * The operator CLI on the embedded database (PGlite, no DATABASE_URL) with no bot running: a fresh
 * temporary SANDBOX_DATA_DIR, one `migrate`, then `list` timed wall-clock from process start to exit.
 * Variants run interleaved so machine load hits them alike:
 *   - `node bin/sandbox.js list`: what `npx sandbox` runs (the compiled CLI when dist/ is fresh);
 *   - `node --import tsx src/cli/main.ts list`: the TypeScript source through tsx, as before the build existed;
 *   - `npx sandbox list`: the same as the first plus npx's own start-up.
 * The goal (list under 1 s) is reported, not gated.
 *
 * Standalone: `tsx bench/scenarios/embedded-cli.ts` (BENCH_CLI_RUNS).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from '../../src/paths.ts';
import { summarize, type LatencyStats } from '../stats.ts';
import { ensureBuilt } from './rss.ts';

export const CLI_LIST_GOAL_MS = 1000;

export interface CliVariant {
  name: string;
  command: string;
  ms: LatencyStats & { min: number; max: number };
}

export interface EmbeddedCliResult {
  runs: number;
  migrateMs: number;
  variants: CliVariant[];
}

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  const started = performance.now();
  const r = spawnSync(cmd, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return ms;
}

export function runEmbeddedCli(opts: { runs: number }, progress: (line: string) => void = () => undefined): EmbeddedCliResult {
  ensureBuilt();
  const dataDir = mkdtempSync(join(tmpdir(), 'sbx-bench-cli-'));
  const env: NodeJS.ProcessEnv = { ...process.env, SANDBOX_DATA_DIR: dataDir, LOG_LEVEL: 'silent' };
  // Empty, not deleted: the config reads empty as unset, and a variable that is set is never filled in
  // from a developer's .env, so a DATABASE_URL there cannot turn this into a PostgreSQL run.
  for (const name of ['DATABASE_URL', 'NATS_URL', 'REDIS_URL']) env[name] = '';
  try {
    const bin = join(PROJECT_ROOT, 'bin/sandbox.js');
    const migrateMs = timed(process.execPath, [bin, 'migrate'], env);
    progress(`embedded CLI: migrated a fresh data directory in ${Math.round(migrateMs)} ms; timing list ${opts.runs}× per variant`);
    const variants = [
      { name: 'npx sandbox (compiled)', command: 'node bin/sandbox.js list', cmd: process.execPath, args: [bin, 'list'] },
      { name: 'TypeScript source via tsx', command: 'node --import tsx src/cli/main.ts list', cmd: process.execPath, args: ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli/main.ts'), 'list'] },
      { name: 'npx launcher + compiled', command: 'npx sandbox list', cmd: 'npx', args: ['--no-install', 'sandbox', 'list'] },
    ];
    const samples = variants.map(() => [] as number[]);
    for (let i = 0; i < opts.runs; i++) variants.forEach((v, j) => samples[j]!.push(timed(v.cmd, v.args, env)));
    return { runs: opts.runs, migrateMs: Math.round(migrateMs), variants: variants.map((v, j) => ({ name: v.name, command: v.command, ms: { ...summarize(samples[j]!), min: Math.min(...samples[j]!), max: Math.max(...samples[j]!) } })) };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function renderEmbeddedCli(r: EmbeddedCliResult): string {
  const lines = [`Embedded CLI (PGlite, no bot running, fresh data dir; first migrate ${r.migrateMs} ms), list p50 of ${r.runs}, goal < ${CLI_LIST_GOAL_MS} ms:`];
  for (const v of r.variants) {
    lines.push(`  ${v.command.padEnd(40)} p50 ${Math.round(v.ms.p50)} ms (min ${Math.round(v.ms.min)}, max ${Math.round(v.ms.max)})${v.ms.p50 < CLI_LIST_GOAL_MS ? '  under 1 s' : ''}`);
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = runEmbeddedCli({ runs: Number(process.env.BENCH_CLI_RUNS ?? 5) }, (line) => process.stderr.write(`${line}\n`));
  console.log(renderEmbeddedCli(result));
}
