/**
 * Bot footprint: the COMPILED bot (`node dist/main.js`, built first by scripts/build.mjs) against the
 * fake Discord with N guilds, idle after READY. The RSS of the bot's whole process tree (the node
 * process and any children; no npm or tsx launcher) is summed from /proc and reported against the
 * 150 MB target, with DATABASE_URL set and NATS/Redis unset. The same with the embedded database
 * (PGlite in-process, no DATABASE_URL) is reported separately and not gated.
 *
 * Standalone: `tsx bench/scenarios/rss.ts` (BENCH_DATABASE_URL, BENCH_RSS_GUILDS, BENCH_RSS_IDLE_MS).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../../src/paths.ts';
import { FakeDiscord } from '../../test/fake-discord/index.ts';
import { createBenchDatabase } from '../database.ts';

export const RSS_TARGET_MB = 150;

export interface RssSample {
  /** Sum of VmRSS over the process tree, MB. */
  treeMb: number;
  processes: number;
  /** Main process heap as reported by /proc (RssAnon, MB): JS heap + native allocations. */
  anonMb: number;
}

export interface RssRun {
  database: 'postgresql' | 'embedded';
  guilds: number;
  /** Gateway READY → command registration settled, ms. */
  readyMs: number;
  /** Peak and final tree RSS over the idle window. */
  peak: RssSample;
  idle: RssSample;
}

export interface RssResult {
  targetMb: number;
  guilds: number;
  idleMs: number;
  runs: RssRun[];
  /** True when the PostgreSQL run's idle tree RSS is within the target. */
  withinTarget: boolean;
}

const snowflake = (): string => `${1 + randomInt(9)}${Array.from({ length: 17 }, () => randomInt(10)).join('')}`;

function status(pid: number): Record<string, string> | undefined {
  try {
    const out: Record<string, string> = {};
    for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
    }
    return out;
  } catch {
    return undefined; // exited meanwhile
  }
}

const kb = (v: string | undefined): number => Number.parseInt(v ?? '0', 10) || 0;

/** `pid` and every descendant, from the PPid field of each /proc/<pid>/status. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const ppid = kb(status(Number(name))?.PPid);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

export function treeRss(root: number): RssSample {
  const pids = processTree(root);
  const rssKb = pids.reduce((sum, pid) => sum + kb(status(pid)?.VmRSS), 0);
  return { treeMb: round(rssKb / 1024), processes: pids.length, anonMb: round(kb(status(root)?.RssAnon) / 1024) };
}

const round = (n: number): number => Math.round(n * 10) / 10;

/** Resolves when a JSON log line (stderr) of the child matches `test`; rejects when it exits first or on timeout. */
function waitForLog(child: ChildProcess, test: (msg: string) => boolean, timeoutMs: number, output: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`bot not ready after ${timeoutMs} ms; last output:\n${output.slice(-10).join('\n')}`)), timeoutMs);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`bot exited (${code}) before ready; last output:\n${output.slice(-10).join('\n')}`));
    };
    child.once('exit', onExit);
    child.stderr!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        output.push(line);
        if (output.length > 50) output.shift();
        let msg = '';
        try {
          msg = String((JSON.parse(line) as { msg?: unknown }).msg ?? '');
        } catch {
          continue;
        }
        if (test(msg)) {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve();
        }
      }
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const forced = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(forced);
}

/**
 * The node flags `npm start` runs the bot with (from package.json's start script), so the bench measures
 * exactly what users run. BENCH_RSS_NODE_FLAGS overrides them for experiments.
 */
export function startFlags(): string[] {
  if (process.env.BENCH_RSS_NODE_FLAGS !== undefined) return process.env.BENCH_RSS_NODE_FLAGS.split(/\s+/).filter(Boolean);
  const scripts = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const match = /\bnode((?:\s+--\S+)*)\s+dist\/main\.js\b/.exec(scripts.start ?? '');
  if (!match) throw new Error('package.json start script does not run node … dist/main.js');
  return match[1]!.trim().split(/\s+/).filter(Boolean);
}

/** Builds dist/ when a source changed (a no-op when it is fresh). */
export function ensureBuilt(): void {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'scripts/build.mjs')], { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error('npm run build failed');
}

async function measureOnce(
  database: RssRun['database'],
  opts: { guilds: number; idleMs: number; databaseUrl?: string },
  progress: (line: string) => void,
): Promise<RssRun> {
  const fake = await FakeDiscord.start();
  for (let i = 0; i < opts.guilds; i++) fake.addGuild({ ownerId: snowflake() });
  const dataDir = mkdtempSync(join(tmpdir(), 'sbx-bench-rss-'));
  // A clean environment: only what the bot needs, so no NATS/Redis and no developer .env values leak in
  // (the real environment wins over .env, and these are all set).
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    DISCORD_TOKEN: fake.token,
    DISCORD_API_URL: fake.apiBase,
    HTTP_PORT: '0',
    LOG_LEVEL: 'info',
    SANDBOX_DATA_DIR: dataDir,
    // Isolation is on with DATABASE_URL (as in production), which needs the secret.
    ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl, SANDBOX_CREDENTIAL_SECRET: 'bench-rss-credential-secret-0123456789abcdef' } : {}),
  };
  const output: string[] = [];
  // The bot logs JSON lines to stderr; stdout is not used.
  const child = spawn(process.execPath, [...startFlags(), join(PROJECT_ROOT, 'dist/main.js')], { cwd: dataDir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const started = performance.now();
    await waitForLog(child, (msg) => msg === 'commands registered' || msg.startsWith('command definitions unchanged'), 120_000, output);
    const readyMs = Math.round(performance.now() - started);
    progress(`rss (${database}): ready after ${readyMs} ms with ${opts.guilds} guilds; idling ${opts.idleMs} ms`);
    let peak = treeRss(child.pid!);
    let idle = peak;
    const until = performance.now() + opts.idleMs;
    while (performance.now() < until) {
      await sleep(250);
      idle = treeRss(child.pid!);
      if (idle.treeMb > peak.treeMb) peak = idle;
    }
    return { database, guilds: opts.guilds, readyMs, peak, idle };
  } finally {
    await stopChild(child);
    await fake.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function runRss(
  adminUrl: string,
  opts: { guilds: number; idleMs: number; embedded: boolean },
  progress: (line: string) => void = () => undefined,
): Promise<RssResult> {
  ensureBuilt();
  const runs: RssRun[] = [];
  let drop: (() => Promise<void>) | undefined;
  const db = await createBenchDatabase(adminUrl, (d) => (drop = d), 2);
  try {
    // The bot migrates by itself; the bench's pool is closed first so the bot's is the only one.
    await db.close();
    runs.push(await measureOnce('postgresql', { ...opts, databaseUrl: db.url }, progress));
  } finally {
    await drop?.();
  }
  if (opts.embedded) runs.push(await measureOnce('embedded', opts, progress));
  const pg = runs[0]!;
  return { targetMb: RSS_TARGET_MB, guilds: opts.guilds, idleMs: opts.idleMs, runs, withinTarget: pg.idle.treeMb <= RSS_TARGET_MB };
}

export function renderRss(r: RssResult): string {
  const lines = [`Bot RSS, compiled (node dist/main.js), idle ${r.idleMs / 1000} s after READY with ${r.guilds} guilds in the fake Discord, NATS/Redis unset:`];
  for (const run of r.runs) {
    const gate = run.database === 'postgresql' ? `  target ≤ ${r.targetMb} MB: ${run.idle.treeMb <= r.targetMb ? 'MET' : 'MISSED'}` : '  (reported, not gated)';
    lines.push(
      `  ${run.database === 'postgresql' ? 'DATABASE_URL (PostgreSQL)' : 'embedded (PGlite in-process)'}: ` +
        `${run.idle.treeMb} MB idle (peak ${run.peak.treeMb} MB, ${run.idle.processes} process${run.idle.processes === 1 ? '' : 'es'}, anon ${run.idle.anonMb} MB), ready in ${run.readyMs} ms${gate}`,
    );
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const int = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
  const result = await runRss(
    process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    { guilds: int('BENCH_RSS_GUILDS', 100), idleMs: int('BENCH_RSS_IDLE_MS', 10_000), embedded: process.env.BENCH_RSS_EMBEDDED !== '0' },
    (line) => process.stderr.write(`${line}\n`),
  );
  console.log(renderRss(result));
}
