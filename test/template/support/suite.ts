// One suite, run against the real PostgreSQL and against embedded PGlite (see the two test files).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../support/db.ts';
import { applyTemplateDir, upgradeSandboxSchema } from '../../../src/sandbox/store/template/apply.ts';
import { pgExecutor, prismaExecutor, type SqlExecutor } from '../../../src/sandbox/store/template/sql.ts';
import { cloneSandboxSchema, createSandboxSchema, resetSandboxSchema } from '../../../src/sandbox/store/template/sandbox-schema.ts';
import { cloneSchema, createSchemaFromTemplate, refreshTemplateCache, resetSchemaToTemplate } from '../../../src/sandbox/store/template/template.ts';

const TEMPLATE = 'tpl_shop';

const FILE_1 = `
CREATE TYPE mood AS ENUM ('happy', 'sad', 'it''s complicated');
CREATE DOMAIN percent AS integer CONSTRAINT percent_range CHECK (VALUE BETWEEN 0 AND 100);
CREATE SEQUENCE ticket_seq START 1000;
CREATE TABLE teams (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name      text NOT NULL UNIQUE,
  parent_id bigint REFERENCES teams (id) ON DELETE CASCADE,
  mood      mood NOT NULL DEFAULT 'happy',
  score     percent DEFAULT 50,
  CONSTRAINT teams_name_len CHECK (length(name) BETWEEN 1 AND 40)
);
CREATE TABLE members (
  id      serial PRIMARY KEY,
  team_id bigint NOT NULL REFERENCES teams (id),
  ticket  integer NOT NULL DEFAULT nextval('ticket_seq'),
  handle  text NOT NULL,
  active  boolean NOT NULL DEFAULT true,
  note    text DEFAULT '100% sure',
  shout   text GENERATED ALWAYS AS (upper(handle)) STORED
);
CREATE UNIQUE INDEX members_active_handle ON members (handle) WHERE active;
COMMENT ON TABLE teams IS 'Teams, nested';
COMMENT ON COLUMN members.handle IS 'Discord handle';
INSERT INTO teams (name) VALUES ('root');
INSERT INTO teams (name, parent_id, mood) VALUES ('child', 1, 'sad');
INSERT INTO members (team_id, handle) VALUES (1, 'alice'), (2, 'bob');
`;
const FILE_2 = `ALTER TABLE members ADD COLUMN joined_at timestamptz NOT NULL DEFAULT now();\n`;
const sha = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

const newSchema = (): string => `sandbox_${randomBytes(16).toString('hex')}`;

export function templateSuite(label: string, open: () => Promise<TestDatabase>): void {
  describe(`templates (${label})`, () => {
    let db: TestDatabase;
    let dir: string;

    beforeAll(async () => {
      db = await open();
      dir = mkdtempSync(join(tmpdir(), 'sbx-template-'));
      writeFileSync(join(dir, '001_init.sql'), FILE_1);
    });
    afterAll(async () => {
      rmSync(dir, { recursive: true, force: true });
      await db?.drop();
    });

    /** Runs fn in one transaction on one connection. */
    async function tx<T>(fn: (sql: SqlExecutor) => Promise<T>): Promise<T> {
      const c = await db.pool.connect();
      try {
        await c.query('BEGIN');
        const r = await fn(pgExecutor(c));
        await c.query('COMMIT');
        return r;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        c.release();
      }
    }
    const q = async (text: string, params: unknown[] = []): Promise<Record<string, unknown>[]> => (await db.pool.query(text, params)).rows;
    const rejects = async (text: string, code: string): Promise<void> => {
      await expect(db.pool.query(text)).rejects.toMatchObject({ code });
    };

    /** Everything in `schema` that refers to an object in another schema (pg_catalog aside). */
    async function outsideReferences(schema: string): Promise<string[]> {
      const rows = await q(
        `WITH s AS (SELECT oid FROM pg_namespace WHERE nspname = $1),
         objs AS (
           SELECT 'pg_class'::regclass AS classid, c.oid AS objid FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM s)
           UNION ALL SELECT 'pg_type'::regclass, t.oid FROM pg_type t WHERE t.typnamespace = (SELECT oid FROM s)
           UNION ALL SELECT 'pg_constraint'::regclass, c.oid FROM pg_constraint c WHERE c.connamespace = (SELECT oid FROM s)
           UNION ALL SELECT 'pg_attrdef'::regclass, d.oid FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid WHERE c.relnamespace = (SELECT oid FROM s)
         ),
         refs AS (
           SELECT d.refclassid::regclass::text AS kind, d.refobjid,
                  CASE d.refclassid
                    WHEN 'pg_class'::regclass THEN (SELECT relnamespace FROM pg_class WHERE oid = d.refobjid)
                    WHEN 'pg_type'::regclass THEN (SELECT typnamespace FROM pg_type WHERE oid = d.refobjid)
                    WHEN 'pg_constraint'::regclass THEN (SELECT connamespace FROM pg_constraint WHERE oid = d.refobjid)
                    WHEN 'pg_proc'::regclass THEN (SELECT pronamespace FROM pg_proc WHERE oid = d.refobjid)
                    WHEN 'pg_namespace'::regclass THEN d.refobjid
                    WHEN 'pg_collation'::regclass THEN (SELECT collnamespace FROM pg_collation WHERE oid = d.refobjid)
                  END AS ns
             FROM pg_depend d JOIN objs o ON o.classid = d.classid AND o.objid = d.objid
         )
         SELECT kind || ' ' || refobjid::text || ' in ' || coalesce((SELECT nspname FROM pg_namespace WHERE oid = ns), '?') AS r FROM refs
          WHERE ns IS DISTINCT FROM (SELECT oid FROM s) AND ns IS DISTINCT FROM 'pg_catalog'::regnamespace
         UNION ALL
         SELECT 'foreign key ' || c.conname FROM pg_constraint c JOIN pg_class f ON f.oid = c.confrelid
          WHERE c.connamespace = (SELECT oid FROM s) AND c.contype = 'f' AND f.relnamespace <> (SELECT oid FROM s)
         UNION ALL
         SELECT 'column type ' || a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
          WHERE c.relnamespace = (SELECT oid FROM s) AND a.attnum > 0 AND t.typnamespace NOT IN ((SELECT oid FROM s), 'pg_catalog'::regnamespace)`,
        [schema],
      );
      return rows.map((r) => String(r.r));
    }

    /** The behaviour a team relies on, checked by using the tables. */
    async function expectTemplateBehaviour(s: string): Promise<void> {
      // enum
      await rejects(`INSERT INTO ${s}.teams (name, mood) VALUES ('x1', 'bogus')`, '22P02');
      // check constraint, and the domain's check
      await rejects(`INSERT INTO ${s}.teams (name) VALUES ('')`, '23514');
      await rejects(`INSERT INTO ${s}.teams (name, score) VALUES ('x2', 101)`, '23514');
      // self-referencing and cross-table foreign keys
      await rejects(`INSERT INTO ${s}.teams (name, parent_id) VALUES ('x3', 999999)`, '23503');
      await rejects(`INSERT INTO ${s}.members (team_id, handle) VALUES (999999, 'x')`, '23503');
      // identity: ALWAYS refuses an explicit id
      await rejects(`INSERT INTO ${s}.teams (id, name) VALUES (77, 'x4')`, '428C9');
      // partial unique index: only active handles must be unique
      const [team] = await q(`INSERT INTO ${s}.teams (name) VALUES ($1) RETURNING id`, [`t-${randomBytes(3).toString('hex')}`]);
      const handle = `h-${randomBytes(3).toString('hex')}`;
      await q(`INSERT INTO ${s}.members (team_id, handle, active) VALUES ($1, $2, false), ($1, $2, false), ($1, $2, true)`, [team!.id, handle]);
      await expect(q(`INSERT INTO ${s}.members (team_id, handle) VALUES ($1, $2)`, [team!.id, handle])).rejects.toMatchObject({ code: '23505' });
      await q(`DELETE FROM ${s}.members WHERE handle = $1`, [handle]);
      await q(`DELETE FROM ${s}.teams WHERE id = $1`, [team!.id]);
      // comments came along
      const [c] = await q(`SELECT obj_description($1::regclass, 'pg_class') AS t, col_description($2::regclass, 6) AS h`, [`${s}.teams`, `${s}.members`]);
      expect(c).toEqual({ t: 'Teams, nested', h: null });
      const [h] = await q(
        `SELECT col_description(a.attrelid, a.attnum) AS d FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = 'handle'`,
        [`${s}.members`],
      );
      expect(h!.d).toBe('Discord handle');
      expect(await outsideReferences(s)).toEqual([]);
    }

    it('template apply applies the files once, records them, and refuses a changed file', async () => {
      const first = await applyTemplateDir(db.pool, dir, { template: TEMPLATE });
      expect(first.applied).toEqual(['001_init.sql']);
      expect(first.version).toBe(`001_init.sql@${sha(FILE_1)}`);
      const again = await applyTemplateDir(db.pool, dir, { template: TEMPLATE });
      expect(again).toMatchObject({ applied: [], skipped: ['001_init.sql'], version: first.version });
      expect(await q(`SELECT name, checksum FROM sandbox_template_migrations WHERE template = $1`, [TEMPLATE])).toEqual([
        { name: '001_init.sql', checksum: sha(FILE_1) },
      ]);
      // The DDL is cached under sha256("<generator>\n<template>\n<version>").
      const key = sha(`1\n${TEMPLATE}\n${first.version}`);
      expect(await q(`SELECT version FROM sandbox_template_cache WHERE cache_key = $1`, [key])).toEqual([{ version: first.version }]);
      expect((await tx((sql) => refreshTemplateCache(sql, TEMPLATE))).generated).toBe(false);

      const changed = mkdtempSync(join(tmpdir(), 'sbx-template-'));
      try {
        writeFileSync(join(changed, '001_init.sql'), `${FILE_1}-- edited\n`);
        await expect(applyTemplateDir(db.pool, changed, { template: TEMPLATE })).rejects.toMatchObject({ code: 'SANDBOX_010', message: expect.stringContaining('001_init.sql was changed') });
      } finally {
        rmSync(changed, { recursive: true, force: true });
      }
    });

    it('refuses a template file that adds an object kind a sandbox cannot copy, and keeps nothing of it', async () => {
      const bad = mkdtempSync(join(tmpdir(), 'sbx-template-'));
      try {
        writeFileSync(join(bad, '001_init.sql'), FILE_1);
        writeFileSync(join(bad, '005_view.sql'), 'CREATE VIEW happy_teams AS SELECT * FROM teams WHERE mood = \'happy\';\n');
        await expect(applyTemplateDir(db.pool, bad, { template: TEMPLATE })).rejects.toMatchObject({
          code: 'SANDBOX_008',
          message: expect.stringContaining('view happy_teams'),
        });
      } finally {
        rmSync(bad, { recursive: true, force: true });
      }
      expect(await q(`SELECT 1 FROM pg_class WHERE relname = 'happy_teams'`)).toEqual([]);
      expect(await q(`SELECT name FROM sandbox_template_migrations WHERE template = $1`, [TEMPLATE])).toEqual([{ name: '001_init.sql' }]);
    });

    let s1: string;
    it('creates a sandbox schema from the template with its seed, sequences past the copied ids', async () => {
      s1 = newSchema();
      const version = await tx((sql) => createSchemaFromTemplate(sql, s1, { template: TEMPLATE }));
      expect(version).toBe(`001_init.sql@${sha(FILE_1)}`);
      expect(await q(`SELECT id::int, name, parent_id::int, mood::text, score FROM ${s1}.teams ORDER BY id`)).toEqual([
        { id: 1, name: 'root', parent_id: null, mood: 'happy', score: 50 },
        { id: 2, name: 'child', parent_id: 1, mood: 'sad', score: 50 },
      ]);
      expect(await q(`SELECT id, team_id::int, ticket, handle, note FROM ${s1}.members ORDER BY id`)).toEqual([
        { id: 1, team_id: 1, ticket: 1000, handle: 'alice', note: '100% sure' },
        { id: 2, team_id: 2, ticket: 1001, handle: 'bob', note: '100% sure' },
      ]);
      const [t] = await q(`INSERT INTO ${s1}.teams (name) VALUES ('third') RETURNING id::int AS id`);
      expect(t).toEqual({ id: 3 });
      const [m] = await q(`INSERT INTO ${s1}.members (team_id, handle) VALUES (3, 'carol') RETURNING id, ticket`);
      expect(m).toEqual({ id: 3, ticket: 1002 });
      // The sandbox's own sequence moved; the template's did not.
      expect(await q(`SELECT last_value::int AS v FROM ${TEMPLATE}.ticket_seq`)).toEqual([{ v: 1001 }]);
      await expectTemplateBehaviour(s1);
    });

    it('creates an empty sandbox with --empty: same structure, no rows, fresh sequences', async () => {
      const s = newSchema();
      await tx((sql) => createSchemaFromTemplate(sql, s, { template: TEMPLATE, empty: true }));
      expect(await q(`SELECT count(*)::int AS n FROM ${s}.teams`)).toEqual([{ n: 0 }]);
      const [t] = await q(`INSERT INTO ${s}.teams (name) VALUES ('first') RETURNING id::int AS id`);
      expect(t).toEqual({ id: 1 });
      await expectTemplateBehaviour(s);
    });

    it('resets a sandbox to the template in one transaction; a failed reset leaves the old state', async () => {
      await q(`INSERT INTO ${s1}.teams (name) SELECT 'bulk-' || g FROM generate_series(1, 500) g`);
      await q(`DROP TABLE ${s1}.members`);
      // A reset whose transaction does not commit changes nothing.
      await expect(
        tx(async (sql) => {
          await resetSchemaToTemplate(sql, s1, { template: TEMPLATE });
          throw new Error('crash after reset, before commit');
        }),
      ).rejects.toThrow('crash after reset');
      expect(await q(`SELECT count(*)::int AS n FROM ${s1}.teams`)).toEqual([{ n: 503 }]);
      expect(await q(`SELECT to_regclass($1) IS NULL AS gone`, [`${s1}.members`])).toEqual([{ gone: true }]);

      await tx((sql) => resetSchemaToTemplate(sql, s1, { template: TEMPLATE }));
      expect(await q(`SELECT name FROM ${s1}.teams ORDER BY id`)).toEqual([{ name: 'root' }, { name: 'child' }]);
      expect(await q(`SELECT handle FROM ${s1}.members ORDER BY id`)).toEqual([{ handle: 'alice' }, { handle: 'bob' }]);
      const [t] = await q(`INSERT INTO ${s1}.teams (name) VALUES ('after-reset') RETURNING id::int AS id`);
      expect(t).toEqual({ id: 3 });
      await expectTemplateBehaviour(s1);
    });

    it('clones a sandbox: structure, rows and sequence states, and the clone stands alone', async () => {
      await q(`INSERT INTO ${s1}.members (team_id, handle) VALUES (3, 'dave')`);
      const s = newSchema();
      await tx((sql) => cloneSchema(sql, s1, s));
      for (const table of ['teams', 'members']) {
        const a = await q(`SELECT * FROM ${s1}.${table} ORDER BY id`);
        const b = await q(`SELECT * FROM ${s}.${table} ORDER BY id`);
        expect(b).toEqual(a);
      }
      // Every sequence is where the source's is (failed inserts above moved the source's past its rows).
      const seqs = async (schema: string): Promise<unknown> =>
        q(
          `SELECT 'teams' AS t, pg_sequence_last_value(pg_get_serial_sequence($1 || '.teams', 'id')::regclass)::int AS v
           UNION ALL SELECT 'members', pg_sequence_last_value(pg_get_serial_sequence($1 || '.members', 'id')::regclass)::int
           UNION ALL SELECT 'ticket', pg_sequence_last_value(($1 || '.ticket_seq')::regclass)::int`,
          [schema],
        );
      const before = (await seqs(s1)) as { v: number }[];
      expect(await seqs(s)).toEqual(before);
      expect(before[1]!.v).toBeGreaterThanOrEqual(4);
      const [t] = await q(`INSERT INTO ${s}.teams (name) VALUES ('clone-own') RETURNING id::int AS id`);
      expect(t).toEqual({ id: before[0]!.v + 1 });
      const [m] = await q(`INSERT INTO ${s}.members (team_id, handle) VALUES ($1, 'erin') RETURNING id, ticket`, [t!.id]);
      expect(m).toEqual({ id: before[1]!.v + 1, ticket: before[2]!.v + 1 });
      await expectTemplateBehaviour(s);
      // Dropping the source (and the template's DDL source) leaves the clone whole.
      await q(`DROP SCHEMA ${s1} CASCADE`);
      expect(await q(`SELECT count(*)::int AS n FROM ${s}.teams`)).toEqual([{ n: 4 }]);
      await expectTemplateBehaviour(s);
    });

    it('a clone that does not commit leaves nothing; a sandbox with objects a clone cannot copy is refused by name', async () => {
      const src = newSchema();
      await tx((sql) => createSchemaFromTemplate(sql, src, { template: TEMPLATE }));
      expect(await q(`SELECT shout FROM ${src}.members ORDER BY id`)).toEqual([{ shout: 'ALICE' }, { shout: 'BOB' }]);
      const target = newSchema();
      await expect(
        tx(async (sql) => {
          await cloneSchema(sql, src, target);
          throw new Error('crash mid-clone');
        }),
      ).rejects.toThrow('crash mid-clone');
      expect(await q(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [target])).toEqual([]);

      await q(`CREATE SEQUENCE public.outside_seq`);
      await q(`ALTER TABLE ${src}.teams ADD COLUMN ext integer DEFAULT nextval('public.outside_seq')`);
      await expect(tx((sql) => cloneSchema(sql, src, target))).rejects.toMatchObject({
        message: expect.stringContaining('column default using a sequence outside the schema teams.ext'),
      });
      await q(`ALTER TABLE ${src}.teams DROP COLUMN ext`);
      await q(`DROP SEQUENCE public.outside_seq`);
      await q(`CREATE FUNCTION ${src}.team_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM ${src}.teams'`);
      await q(`CREATE VIEW ${src}.busy AS SELECT * FROM ${src}.teams`);
      await expect(tx((sql) => cloneSchema(sql, src, target))).rejects.toMatchObject({
        code: 'SANDBOX_008',
        message: expect.stringMatching(/function team_count.*view busy|view busy.*function team_count/),
      });
      expect(await q(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [target])).toEqual([]);
    });

    it('upgrades a sandbox that is behind with the template files it is missing; new sandboxes get the new version', async () => {
      const s = newSchema();
      const v1 = await tx((sql) => createSchemaFromTemplate(sql, s, { template: TEMPLATE }));
      writeFileSync(join(dir, '002_joined_at.sql'), FILE_2);
      const r = await applyTemplateDir(db.pool, dir, { template: TEMPLATE });
      expect(r).toMatchObject({ applied: ['002_joined_at.sql'], skipped: ['001_init.sql'], version: `002_joined_at.sql@${sha(FILE_2)}` });

      const up = await tx((sql) => upgradeSandboxSchema(sql, s, v1, { template: TEMPLATE }));
      expect(up).toEqual({ version: `002_joined_at.sql@${sha(FILE_2)}`, applied: ['002_joined_at.sql'] });
      expect(await q(`SELECT count(*)::int AS n FROM ${s}.members WHERE joined_at IS NOT NULL`)).toEqual([{ n: 2 }]);
      // The template itself was not touched by the upgrade (the column came from apply, once).
      expect(await q(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'joined_at'`, [TEMPLATE])).toEqual([{ n: 1 }]);
      const none = await tx((sql) => upgradeSandboxSchema(sql, s, up.version, { template: TEMPLATE }));
      expect(none.applied).toEqual([]);
      await expect(tx((sql) => upgradeSandboxSchema(sql, s, '001_init.sql@deadbeef', { template: TEMPLATE }))).rejects.toMatchObject({ code: 'SANDBOX_010' });
      // A sandbox whose schema is gone is an error, never a file run against whatever search_path finds.
      await expect(tx((sql) => upgradeSandboxSchema(sql, newSchema(), v1, { template: TEMPLATE }))).rejects.toMatchObject({
        code: 'SANDBOX_005',
        message: expect.stringContaining('does not exist'),
      });

      const fresh = newSchema();
      expect(await tx((sql) => createSchemaFromTemplate(sql, fresh, { template: TEMPLATE }))).toBe(up.version);
      expect(await q(`SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'members' AND column_name = 'joined_at'`, [fresh])).toHaveLength(1);
      await expectTemplateBehaviour(fresh);
    });

    it('the default template builds the same three tables create_sandbox_schema builds', async () => {
      const id = '0f0e0d0c-0b0a-4908-8706-050403020100';
      const old = 'sandbox_0f0e0d0c0b0a49088706050403020100';
      await q(`SELECT create_sandbox_schema($1::uuid)`, [id]);
      const s = newSchema();
      expect(await tx((sql) => createSchemaFromTemplate(sql, s))).toBe('initial');
      const shape = async (schema: string): Promise<unknown> => ({
        columns: await q(
          `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns WHERE table_schema = $1 ORDER BY 1, 2`,
          [schema],
        ),
        constraints: await q(
          `SELECT r.relname AS t, c.conname, c.contype::text, replace(pg_get_constraintdef(c.oid), $1::text, 'S') AS d FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
            WHERE r.relnamespace = $1::text::regnamespace AND c.contype <> 'n' ORDER BY 1, 2`,
          [schema],
        ),
        indexes: await q(`SELECT tablename, indexname, replace(indexdef, $1, 'S') AS d FROM pg_indexes WHERE schemaname = $1 ORDER BY 1, 2`, [schema]),
      });
      expect(await shape(s)).toEqual(await shape(old));
      expect(await outsideReferences(s)).toEqual([]);
      await q(`DROP SCHEMA ${old} CASCADE`);
    });

    it('runs inside a Prisma interactive transaction too, as the manager will call it', async () => {
      const s = newSchema();
      const c = newSchema();
      await db.prisma.$transaction(async (t) => {
        const sql = prismaExecutor(t);
        await createSchemaFromTemplate(sql, s, { template: TEMPLATE });
        await resetSchemaToTemplate(sql, s, { template: TEMPLATE });
        await cloneSchema(sql, s, c);
      });
      expect(await q(`SELECT count(*)::int AS n FROM ${c}.teams`)).toEqual([{ n: 2 }]);
      await expectTemplateBehaviour(c);
    });

    it('builds, resets and clones by sandbox id, with the name from sandbox_schema_name(); an existing schema is a collision', async () => {
      const a = 'a1b2c3d4-e5f6-4789-8abc-def012345678';
      const b = 'b1b2c3d4-e5f6-4789-8abc-def012345678';
      const made = await tx((sql) => createSandboxSchema(sql, a, { template: TEMPLATE }));
      expect(made.schemaName).toBe('sandbox_a1b2c3d4e5f647898abcdef012345678');
      expect(made.templateVersion).toMatch(/^002_joined_at\.sql@[0-9a-f]{64}$/);
      await expect(tx((sql) => createSandboxSchema(sql, a, { template: TEMPLATE }))).rejects.toMatchObject({ code: 'SANDBOX_005', details: { collision: true } });
      await q(`DELETE FROM ${made.schemaName}.members`);
      expect((await tx((sql) => resetSandboxSchema(sql, a, { template: TEMPLATE }))).templateVersion).toBe(made.templateVersion);
      expect(await q(`SELECT count(*)::int AS n FROM ${made.schemaName}.members`)).toEqual([{ n: 2 }]);
      const c = await tx((sql) => cloneSandboxSchema(sql, a, b));
      expect(c.schemaName).toBe('sandbox_b1b2c3d4e5f647898abcdef012345678');
      expect(await q(`SELECT handle FROM ${c.schemaName}.members ORDER BY id`)).toEqual([{ handle: 'alice' }, { handle: 'bob' }]);
      await expect(tx((sql) => createSandboxSchema(sql, 'not-a-uuid'))).rejects.toMatchObject({ code: 'SANDBOX_008' });
    });

    it('refuses names that are not sandbox schemas', async () => {
      await expect(tx((sql) => createSchemaFromTemplate(sql, 'public', { template: TEMPLATE }))).rejects.toMatchObject({ code: 'SANDBOX_008' });
      await expect(tx((sql) => resetSchemaToTemplate(sql, 'sandbox_x"; DROP SCHEMA public; --', { template: TEMPLATE }))).rejects.toMatchObject({ code: 'SANDBOX_008' });
      await expect(tx((sql) => createSchemaFromTemplate(sql, newSchema(), { template: 'public' }))).rejects.toMatchObject({ code: 'SANDBOX_008' });
    });
  });
}
