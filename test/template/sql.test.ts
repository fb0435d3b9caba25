// Generated statements carry the new schema's name only as %1$I / %1$L; everything else is literal text.
import { describe, expect, it } from 'vitest';
import { SCHEMA, SCHEMA_LITERAL, fragment, render, stmt } from '../../src/sandbox/store/template/sql.ts';

describe('generated statement strings', () => {
  it('substitutes only the schema name, quoted, and keeps every % of the template text', () => {
    const s = stmt`ALTER TABLE ${SCHEMA}.${'"t"'} ALTER COLUMN "note" SET DEFAULT ${"'100% sure, %1$I stays'"}`;
    expect(render(s, 'sandbox_abc')).toBe(`ALTER TABLE "sandbox_abc"."t" ALTER COLUMN "note" SET DEFAULT '100% sure, %1$I stays'`);
  });

  it('escapes a nested fragment once', () => {
    const inner = fragment`pg_catalog.format('%I.%I', ${SCHEMA_LITERAL}, ${"'seq'"})::regclass`;
    expect(render(stmt`SELECT pg_catalog.setval(${inner}, 5)`, 'sandbox_abc')).toBe(`SELECT pg_catalog.setval(pg_catalog.format('%I.%I', 'sandbox_abc', 'seq')::regclass, 5)`);
  });

  it('refuses a schema name outside the strict pattern', () => {
    expect(() => render(stmt`CREATE TABLE ${SCHEMA}.x ()`, 'Sandbox"; DROP')).toThrow('invalid schema name');
  });
});
