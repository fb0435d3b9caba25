/**
 * Crashes in reset and clone: a child process runs `manager.reset` / `manager.clone` against a
 * template and is SIGKILLed at a named fault point.
 * - Reset, killed after the drop-and-rebuild but before its commit: the sandbox keeps its old
 *   tables and rows, its template version, and no `reset` audit row.
 * - Clone, killed after the `creating` commit (before the copy) or inside the copy transaction:
 *   the next sweep leaves nothing behind (the row destroyed, no schema, the owner's slot free),
 *   and the source is untouched.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultPoint } from '../../src/sandbox/faults.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import { applyTemplateDir } from '../../src/sandbox/store/template/apply.ts';
import type { Actor } from '../../src/sandbox/types.ts';
import { createTestDatabase, makeManager, schemaExists, type TestDatabase } from '../support/db.ts';
import { crashChild } from './support/crash.ts';
import { checkInvariants, schemasHaveLiveRows } from './support/invariants.ts';
import { sweepAt } from './support/sweep.ts';

const operator: Actor = { kind: 'operator', name: 'crash-test' };
const TEMPLATE = 'tpl_crash';
const LIMIT = 3;

describe('a process killed in the middle of reset or clone', () => {
  let db: TestDatabase;
  let manager: SandboxManager;
  let dir: string;

  beforeAll(async () => {
    db = await createTestDatabase({ poolSize: 6 });
    dir = mkdtempSync(join(tmpdir(), 'sbx-crash-tpl-'));
    writeFileSync(
      join(dir, '001_notes.sql'),
      `CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL CHECK (body <> ''));
       INSERT INTO notes (body) VALUES ('seed one'), ('seed two');\n`,
    );
    await applyTemplateDir(db.pool, dir, { template: TEMPLATE });
    manager = makeManager(db, { template: TEMPLATE, limits: { maxPerOwner: LIMIT } });
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await db?.drop();
  });

  const bodies = async (schema: string): Promise<string[]> => (await db.pool.query<{ body: string }>(`SELECT body FROM "${schema}".notes ORDER BY id`)).rows.map((r) => r.body);

  it('reset killed before its commit leaves the old tables, rows and version', async () => {
    const { sandbox } = await manager.create({ name: 'crash-reset', owner: 'cli:crash-reset' }, operator);
    await db.pool.query(`INSERT INTO "${sandbox.schemaName}".notes (body) VALUES ('written by a test')`);
    await db.pool.query(`CREATE TABLE "${sandbox.schemaName}".extra (x int)`);
    const crash = await crashChild({ url: db.url, point: 'reset:after-rebuild', op: 'reset', actor: operator, name: 'crash-reset', template: TEMPLATE }, db.pool);
    expect(crash.signal, crash.stderr || crash.stdout).toBe('SIGKILL');
    expect(crash.sandboxId).toBe(sandbox.id);
    expect(await bodies(sandbox.schemaName)).toEqual(['seed one', 'seed two', 'written by a test']);
    expect((await db.pool.query(`SELECT 1 FROM pg_class WHERE relname = 'extra' AND relnamespace = $1::regnamespace`, [sandbox.schemaName])).rowCount).toBe(1);
    expect((await manager.getById(sandbox.id))!).toMatchObject({ status: 'running', templateVersion: sandbox.templateVersion });
    expect((await db.pool.query(`SELECT 1 FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'reset'`, [sandbox.id])).rowCount).toBe(0);
    // The sandbox still resets normally afterwards.
    await manager.reset(sandbox.id, operator);
    expect(await bodies(sandbox.schemaName)).toEqual(['seed one', 'seed two']);
  });

  const points: FaultPoint[] = ['create:after-creating', 'clone:after-schema', 'create:before-running'];

  it.each(points)('clone killed at %s leaves nothing behind after a sweep', async (point) => {
    const tag = point.replace(/[^a-z]/g, '');
    const { sandbox: source } = await manager.create({ name: `src-${tag}`.slice(0, 60), owner: 'cli:crash-test' }, operator);
    await db.pool.query(`INSERT INTO "${source.schemaName}".notes (body) VALUES ('source row')`);
    const crash = await crashChild({ url: db.url, point, op: 'clone', actor: operator, name: `copy-${tag}`.slice(0, 60), source: source.name, template: TEMPLATE, maxPerOwner: LIMIT }, db.pool);
    expect(crash.signal, crash.stderr || crash.stdout).toBe('SIGKILL');
    const id = crash.sandboxId!;
    expect(id).not.toBe(source.id);
    const { rows: before } = await db.pool.query<{ status: string; schema_name: string }>(`SELECT status::text AS status, schema_name FROM sandboxes WHERE id = $1`, [id]);
    expect(before[0]!.status).toBe('creating');
    expect(await schemaExists(db, before[0]!.schema_name)).toBe(false);

    const summary = await sweepAt({ prisma: db.prisma, limits: { maxPerOwner: LIMIT } });
    expect(summary.failures).toEqual([]);
    expect(summary.counts.stuck_reconciled).toBe(1);
    const { rows: after } = await db.pool.query<{ status: string }>(`SELECT status::text AS status FROM sandboxes WHERE id = $1`, [id]);
    expect(after[0]!.status).toBe('destroyed');
    expect(await schemaExists(db, before[0]!.schema_name)).toBe(false);
    expect(await schemasHaveLiveRows(db)).toEqual([]);
    expect(await bodies(source.schemaName)).toEqual(['seed one', 'seed two', 'source row']);
    // The slot is free again: the same clone now succeeds, then both go away.
    const retry = await manager.clone(source.id, `copy-${tag}`.slice(0, 60), operator);
    expect(await bodies(retry.sandbox.schemaName)).toEqual(['seed one', 'seed two', 'source row']);
    expect(await checkInvariants(db, { maxPerOwner: LIMIT })).toEqual([]);
    await manager.destroy(retry.sandbox.id, operator);
    await manager.destroy(source.id, operator);
  });
});
