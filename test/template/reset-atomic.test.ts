// Reset is one transaction: while it is between drop-and-rebuild and its commit, another connection
// reading the sandbox's table waits, then sees the complete new state (the seed), never an empty or
// half-filled table; a reader that cannot wait sees the old rows or a lock timeout, nothing else.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultInjector } from '../../src/sandbox/faults.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import { applyTemplateDir } from '../../src/sandbox/store/template/apply.ts';
import { createTestDatabase, makeManager, type TestDatabase } from '../support/db.ts';

const op = { kind: 'operator', name: 'atomic-test' } as const;
let db: TestDatabase;
let dir: string;
let manager: SandboxManager;
let paused: (() => void) | undefined;
let reached: (() => void) | undefined;

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 6 });
  dir = mkdtempSync(join(tmpdir(), 'sbx-atomic-'));
  writeFileSync(
    join(dir, '001_rows.sql'),
    `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY REFERENCES a (id));
     INSERT INTO a SELECT g FROM generate_series(1, 1000) g; INSERT INTO b SELECT g FROM generate_series(1, 1000) g;\n`,
  );
  await applyTemplateDir(db.pool, dir, { template: 'tpl_atomic' });
  const faults: FaultInjector = {
    hit: (point) =>
      point === 'reset:after-rebuild' && reached
        ? new Promise<void>((resume) => {
            paused = resume;
            reached!();
          })
        : undefined,
  };
  manager = makeManager(db, { template: 'tpl_atomic', faults });
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await db?.drop();
});

describe('reset and concurrent readers', () => {
  it('a reader during a reset sees the old rows or, after the commit, all of the new ones', async () => {
    const { sandbox } = await manager.create({ name: 'atomic', owner: 'cli:atomic' }, op);
    const s = sandbox.schemaName;
    await db.pool.query(`DELETE FROM "${s}".b WHERE id > 10; DELETE FROM "${s}".a WHERE id > 10`);
    const atPause = new Promise<void>((r) => (reached = r));
    const resetting = manager.reset(sandbox.id, op);
    await atPause;

    // A reader that cannot wait: the old state or a lock timeout, never something in between.
    const c = await db.pool.connect();
    let impatient: unknown;
    try {
      await c.query(`BEGIN`);
      await c.query(`SET LOCAL lock_timeout = '50ms'`);
      impatient = await c
        .query(`SELECT (SELECT count(*) FROM "${s}".a)::int AS a, (SELECT count(*) FROM "${s}".b)::int AS b`)
        .then((r) => r.rows[0], (e: { code?: string }) => e.code);
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
    expect([{ a: 10, b: 10 }, '55P03']).toContainEqual(impatient);

    // A reader that waits: blocked until the commit, then the whole seed in both tables.
    const waiting = db.pool.query<{ a: number; b: number }>(`SELECT (SELECT count(*) FROM "${s}".a)::int AS a, (SELECT count(*) FROM "${s}".b)::int AS b`);
    await new Promise((r) => setTimeout(r, 100));
    reached = undefined;
    paused!();
    await resetting;
    expect((await waiting).rows).toEqual([{ a: 1000, b: 1000 }]);
  });
});
