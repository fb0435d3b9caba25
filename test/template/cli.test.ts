// The operator CLI's template commands, in-process through the real argument parser: create --empty,
// status (template version), reset --yes, clone, upgrade.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let dir: string;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
const count = async (schema: string, table: string): Promise<number> => (await db.pool.query(`SELECT count(*)::int AS n FROM "${schema}".${table}`)).rows[0].n;

beforeAll(async () => {
  db = await createTestDatabase();
  process.env.DATABASE_URL = db.url;
  process.env.SANDBOX_OPERATOR = 'ops';
  process.env.SANDBOX_ISOLATION = 'off';
  process.env.SANDBOX_TEMPLATE_SCHEMA = 'tpl_cli_ops';
  delete process.env.DISCORD_TOKEN;
  dir = mkdtempSync(join(tmpdir(), 'sbx-tpl-cli-'));
  writeFileSync(join(dir, '001_notes.sql'), `CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL);\nINSERT INTO notes (body) VALUES ('hello');\n`);
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await db?.drop();
});

describe('sandbox CLI: templates', () => {
  it('applies the template, creates with and without seed, shows the version, resets, clones and upgrades', async () => {
    expect((await cli('template', 'apply', dir)).code).toBe(0);
    const full = JSON.parse((await cli('create', 'notes-full', '--json')).out);
    expect(full.templateVersion).toMatch(/^001_notes\.sql@[0-9a-f]{64}$/);
    expect(await count(full.schemaName, 'notes')).toBe(1);
    const empty = JSON.parse((await cli('create', 'notes-empty', '--empty', '--json')).out);
    expect(await count(empty.schemaName, 'notes')).toBe(0);
    expect((await cli('status', 'notes-full')).out).toMatch(/^template\s+001_notes\.sql@[0-9a-f]{64}$/m);

    await db.pool.query(`INSERT INTO "${full.schemaName}".notes (body) VALUES ('scratch')`);
    const refused = await cli('reset', 'notes-full');
    expect(refused).toMatchObject({ code: 1, err: 'error SANDBOX_008: Refusing to reset notes-full without --yes.' });
    expect(await count(full.schemaName, 'notes')).toBe(2);
    const reset = await cli('reset', 'notes-full', '--yes');
    expect(reset.code).toBe(0);
    expect(reset.out).toBe(`Reset notes-full to template version ${full.templateVersion}.`);
    expect(await count(full.schemaName, 'notes')).toBe(1);

    await db.pool.query(`INSERT INTO "${full.schemaName}".notes (body) VALUES ('copied')`);
    const copy = JSON.parse((await cli('clone', 'notes-full', 'notes-copy', '--json')).out);
    expect(copy).toMatchObject({ name: 'notes-copy', owner: 'cli:ops', status: 'running', templateVersion: full.templateVersion });
    expect(await count(copy.schemaName, 'notes')).toBe(2);

    expect((await cli('upgrade', 'notes-full')).out).toBe(`notes-full is up to date (${full.templateVersion}).`);
    writeFileSync(join(dir, '002_pinned.sql'), `ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;\n`);
    expect((await cli('template', 'apply', dir)).code).toBe(0);
    const up = await cli('upgrade', 'notes-full');
    expect(up.out).toMatch(/^Upgraded notes-full: 002_pinned\.sql \(now 002_pinned\.sql@[0-9a-f]{64}\)\.$/);
    expect((await db.pool.query(`SELECT body, pinned FROM "${full.schemaName}".notes ORDER BY id`)).rows).toEqual([{ body: 'hello', pinned: false }, { body: 'copied', pinned: false }]);
    const missing = await cli('clone', 'no-such-sandbox');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^error SANDBOX_004: /);
  });
});
