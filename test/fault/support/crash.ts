import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { CrashSpec } from './crash-child.ts';

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

export interface CrashOutcome {
  signal: NodeJS.Signals | null;
  code: number | null;
  /** The sandbox id the child reported at the fault point. */
  sandboxId: string | undefined;
  stdout: string;
  stderr: string;
}

/** The application_name the child's connections carry, so the parent can see them in pg_stat_activity. */
export const CHILD_APP = 'sbx-crash-child';

/**
 * Runs crash-child.ts in a fresh Node process (tsx loader), waits until it has died, and then
 * until PostgreSQL has noticed: none of the child's backends is left (its open transaction
 * rolled back, its locks released). That is the state a later sweep meets in production.
 */
export async function crashChild(spec: CrashSpec, pool: pg.Pool): Promise<CrashOutcome> {
  const url = new URL(spec.url);
  url.searchParams.set('application_name', CHILD_APP);
  const outcome = await runChild({ ...spec, url: url.toString() });
  for (;;) {
    const { rows } = await pool.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`, [CHILD_APP]);
    if (rows.length === 0) return outcome;
    await new Promise((r) => setTimeout(r, 20));
  }
}

function runChild(spec: CrashSpec): Promise<CrashOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(spec)], {
      cwd: fileURLToPath(new URL('../../..', import.meta.url)),
      env: { ...process.env, LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const m = /^FAULT (\S+) (\S+)$/m.exec(stdout);
      resolve({ code, signal, sandboxId: m?.[2], stdout, stderr });
    });
  });
}
