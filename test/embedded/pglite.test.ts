// The embedded default: with no DATABASE_URL everything runs on PGlite behind pglite-socket.
// The same migration runs there (PGlite reports a newer PostgreSQL than the server here).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createEmbeddedTestDatabase, makeManager, type TestDatabase } from '../support/db.ts';
import { openDatabase } from '../../src/db/database.ts';
import { silentLogger } from '../../src/logger.ts';
import { PROJECT_ROOT } from '../../src/paths.ts';

const run = promisify(execFile);
const op = { kind: 'operator', name: 'tester' } as const;
let db: TestDatabase & { dataDir: string };

beforeAll(async () => {
  db = await createEmbeddedTestDatabase();
});
afterAll(async () => db?.drop());

/** Runs the real CLI in a child process against the same data directory. */
async function cliChild(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, SANDBOX_DATA_DIR: db.dataDir, LOG_LEVEL: 'error' };
  delete env.DATABASE_URL;
  return run(process.execPath, [resolve(PROJECT_ROOT, 'bin/sandbox.js'), ...args], { env, cwd: '/tmp', timeout: 60_000 });
}

describe('embedded PostgreSQL (PGlite)', () => {
  it('keeps two connections\' extended-protocol sequences apart (one shared session underneath)', async () => {
    // Raw protocol, so the interleaving is certain: A parses its statement, B parses another, then A binds and
    // executes. On one shared session B's Parse replaces A's unnamed statement, unless A's sequence runs alone.
    const url = new URL(db.url);
    // pg's Connection writes protocol messages as told; its typings leave most of that out.
    interface Wire {
      on(event: string, fn: (message: never) => void): void;
      once(event: string, fn: (message: never) => void): void;
      connect(port: number, host: string): void;
      startup(config: Record<string, string>): void;
      parse(query: { text: string; types: unknown[] }): void;
      bind(config: { values: string[] }): void;
      execute(config: object): void;
      flush(): void;
      sync(): void;
      end(): void;
    }
    const open = (): Promise<Wire> =>
      new Promise((resolve, reject) => {
        const con = new pg.Connection() as unknown as Wire;
        con.once('readyForQuery', () => resolve(con));
        con.once('errorMessage', reject);
        con.once('connect', () => con.startup({ user: 'postgres', database: 'postgres' }));
        con.connect(Number(url.port), url.hostname);
      });
    const outcome = (con: Wire): Promise<string> =>
      new Promise((resolve) => {
        let got = 'no row';
        con.on('dataRow', (m: { fields: (string | null)[] }) => (got = m.fields.join(',')));
        con.on('errorMessage', (e: { message: string }) => (got = `error: ${e.message}`));
        con.once('readyForQuery', () => resolve(got));
      });
    const a = await open();
    const b = await open();
    try {
      const aDone = outcome(a);
      const bDone = outcome(b);
      a.parse({ text: 'SELECT ($1::int * 6)::text AS a', types: [] });
      a.flush();
      await new Promise((r) => setTimeout(r, 100));
      b.parse({ text: 'SELECT $1::text || $2::text AS b', types: [] });
      b.flush();
      await new Promise((r) => setTimeout(r, 100));
      a.bind({ values: ['7'] });
      a.execute({});
      a.sync();
      b.bind({ values: ['x', 'y'] });
      b.execute({});
      b.sync();
      expect(await aDone).toBe('42');
      expect(await bDone).toBe('xy');
    } finally {
      a.end();
      b.end();
    }
  });

  it('runs the migration on a newer PostgreSQL and provisions real schemas', async () => {
    const { rows } = await db.pool.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    expect(Number(rows[0]!.v)).toBeGreaterThanOrEqual(150000);
    const m = makeManager(db);
    const { sandbox } = await m.create({ name: 'embedded-demo', owner: '123456789012345678', ttlHours: 2 }, op);
    expect(sandbox.status).toBe('running');
    expect((await m.provisioner.getSchemaStats(sandbox.id)).tables.map((t) => t.tableName)).toEqual(['badges', 'communities', 'profiles']);
    expect((await m.extendTtl('embedded-demo', 1, op)).sandbox.status).toBe('running');
    expect((await m.list({}, op)).map((s) => s.name)).toEqual(['embedded-demo']);
  });

  it('keeps the owner limit under concurrent creates (transactions run one at a time)', async () => {
    const m = makeManager(db);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => m.create({ owner: 'cli:embedded-greedy' }, op)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'SANDBOX_002' });
  });

  it('rolls back a failed interactive transaction', async () => {
    await expect(
      db.prisma.$transaction(async (tx) => {
        await tx.botState.create({ data: { key: 'rollback-probe', value: 1 } });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await db.prisma.botState.findUnique({ where: { key: 'rollback-probe' } })).toBeNull();
  });

  it('serves a second process over its socket instead of letting it open the files', async () => {
    const info = JSON.parse(readFileSync(join(db.dataDir, 'server.json'), 'utf8'));
    expect(info.pid).toBe(process.pid);
    const { stdout } = await cliChild('status', 'embedded-demo', '--json');
    expect(JSON.parse(stdout)).toMatchObject({ name: 'embedded-demo', status: 'running', health: { healthy: true } });
    const destroyed = JSON.parse((await cliChild('destroy', 'embedded-demo', '--yes', '--json')).stdout);
    expect(destroyed.status).toBe('destroyed');
    expect((await makeManager(db).getByName('embedded-demo'))?.status).toBe('destroyed');
  });

  it('persists across a restart and recovers a stale lock left by a dead process', async () => {
    await db.close();
    expect(existsSync(join(db.dataDir, 'server.json'))).toBe(false);
    // A crashed owner leaves its lock behind.
    writeFileSync(join(db.dataDir, 'owner.lock'), '999999');
    const again = await openDatabase({ dataDir: db.dataDir, logger: silentLogger() });
    try {
      expect(again.embedded).toBe(true);
      expect(again.migrations?.applied).toEqual([]);
      const m = makeManager(again);
      expect((await m.getByName('embedded-demo'))?.status).toBe('destroyed');
      expect((await m.list({ owner: 'cli:embedded-greedy' })).length).toBe(5);
    } finally {
      await again.close();
    }
    db.close = async () => undefined;
  });
});

describe('embedded database ownership', () => {
  it('a process connected to another owner takes over when that owner dies', async () => {
    const { spawn } = await import('node:child_process');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dataDir = mkdtempSync(join(tmpdir(), 'sbx-takeover-'));
    const child = spawn(process.execPath, ['--import', 'tsx', resolve(PROJECT_ROOT, 'test/embedded/support/hold-database.ts')], {
      env: { ...process.env, SANDBOX_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((ok, fail) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && ok());
        child.on('exit', (code) => fail(new Error(`holder exited with ${code}`)));
      });
      const second = await openDatabase({ dataDir, logger: silentLogger(), poolSize: 2 });
      try {
        const m = makeManager(second);
        await m.create({ name: 'survives-owner', owner: 'cli:takeover' }, op);
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        // The connections to the dead owner fail ("try again"); new ones reach this process's own server.
        let found: string | undefined;
        for (let i = 0; i < 50 && !found; i++) {
          found = await m.getByName('survives-owner').then((s) => s?.status, () => undefined);
          if (!found) await new Promise((r) => setTimeout(r, 200));
        }
        expect(found).toBe('running');
        expect(JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')).pid).toBe(process.pid);
      } finally {
        await second.close();
      }
    } finally {
      child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
