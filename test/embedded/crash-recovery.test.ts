// Issue 8 item 1: the embedded database must come back after its owner dies by kill -9, even when
// the next process gets the dead owner's PID (as PID 1 does in a fresh container) and finds its
// own PID in owner.lock, with server.json pointing at an address nobody serves.
import { afterEach, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PROJECT_ROOT } from '../../src/paths.ts';

const CLI = resolve(PROJECT_ROOT, 'bin/sandbox.js');
const dirs: string[] = [];
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sbx-crash-'));
  dirs.push(d);
  return d;
}

function envFor(dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SANDBOX_DATA_DIR: dir, LOG_LEVEL: 'error', SANDBOX_OPERATOR: 'crash' };
  delete env.DATABASE_URL;
  return env;
}

/** Runs a command to the end (or kills it at the timeout) and reports how it went. */
function runTo(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((done) => {
    execFile(cmd, args, { env, cwd: '/tmp', timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      done({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('embedded database after a crash', () => {
  it('a lock holding our own PID and a dead address does not block `sandbox list`', async () => {
    const dir = dataDir();
    // What a crashed owner with our PID leaves behind.
    writeFileSync(join(dir, 'owner.lock'), String(process.pid));
    writeFileSync(join(dir, 'server.json'), JSON.stringify({ pid: process.pid, host: '127.0.0.1', port: await deadPort(), token: 'from-a-dead-owner' }));
    const r = await runTo(process.execPath, [CLI, 'list', '--json'], envFor(dir), 45_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
    expect(r.ms).toBeLessThan(30_000);
  }, 60_000);

  it('recovers after kill -9 of the owner when the next process gets the same PID (new PID namespace)', async () => {
    const dir = dataDir();
    const holder = spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '--import', 'tsx', resolve(PROJECT_ROOT, 'test/embedded/support/hold-database.ts')], {
      env: envFor(dir),
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(holder);
    await new Promise<void>((ok, fail) => {
      holder.stdout!.on('data', (d: Buffer) => d.toString().includes('ready true') && ok());
      holder.on('exit', (code) => fail(new Error(`holder exited with ${code}`)));
    });
    // The owner is PID 1 in its namespace, and says so in server.json.
    expect(JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')).pid).toBe(1);

    // Another process uses it as a client while the owner lives.
    const created = await runTo(process.execPath, [CLI, 'create', 'crash-survivor', '--json'], envFor(dir), 60_000);
    expect(created.stderr).toBe('');
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'crash-survivor', status: 'running' });

    // kill -9 the owner (unshare's child, PID 1 inside).
    const ownerPid = Number(readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    expect(ownerPid).toBeGreaterThan(1);
    const exited = new Promise((r) => holder.once('exit', r));
    process.kill(ownerPid, 'SIGKILL');
    await exited;

    // The next start is PID 1 again: it finds "its own" PID in the files and must still recover.
    const r = await runTo('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, CLI, 'list', '--json'], envFor(dir), 45_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).map((s: { name: string; status: string }) => `${s.name}:${s.status}`)).toEqual(['crash-survivor:running']);
    expect(r.ms).toBeLessThan(30_000);
  }, 120_000);
});
