/**
 * The schema-name pattern lives twice: SCHEMA_NAME_RE in TypeScript (orphan drop re-check,
 * schemaToId) and is_sandbox_schema_name in SQL (creation, listing, the table's CHECK). This
 * proves they accept and reject exactly the same names, and that the pg_namespace range the
 * orphan lookup scans (sandbox_ ≤ name < sandbox`) contains every accepted name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_NAME_RE } from '../../src/sandbox/validation.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const hex32 = '0123456789abcdef0123456789abcdef';
const candidates = [
  `sandbox_${hex32}`,
  `sandbox_${'f'.repeat(32)}`,
  `sandbox_${'0'.repeat(32)}`,
  `sandbox_${hex32.toUpperCase()}`,
  `sandbox_${hex32.slice(0, 31)}`,
  `sandbox_${hex32}0`,
  `sandboxx${hex32}`,
  `Sandbox_${hex32}`,
  `sandbox-${hex32}`,
  `sandbox_${hex32.slice(0, 31)}g`,
  `sandbox_${hex32}\n`,
  ` sandbox_${hex32}`,
  `sandbox__${hex32.slice(1)}`,
  `sandbox_01234567-89ab-cdef-0123-456789abcdef`,
  'sandbox_',
  'sandbox_abc',
  'sandboxes_archive',
  'public',
  '',
];

describe('the schema-name pattern', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('is the same in TypeScript and in SQL, for accepted and rejected names', async () => {
    const { rows } = await db.pool.query<{ name: string; ok: boolean; in_range: boolean }>(
      `SELECT c AS name, is_sandbox_schema_name(c) AS ok, (c::name >= 'sandbox_'::name AND c::name < 'sandbox\`'::name) AS in_range
       FROM unnest($1::text[]) AS c`,
      [candidates],
    );
    const sql = rows.map((r) => [r.name, r.ok]);
    const ts = candidates.map((c) => [c, SCHEMA_NAME_RE.test(c)]);
    expect(sql).toEqual(ts);
    // Both accept exactly the three well-formed names.
    expect(rows.filter((r) => r.ok).map((r) => r.name)).toEqual([`sandbox_${hex32}`, `sandbox_${'f'.repeat(32)}`, `sandbox_${'0'.repeat(32)}`]);
    // Every accepted name lies inside the index range the orphan lookup scans.
    for (const r of rows) if (r.ok) expect(r.in_range).toBe(true);
  });

  it('matches the name sandbox_schema_name derives from an id', async () => {
    const { rows } = await db.pool.query<{ name: string }>(`SELECT sandbox_schema_name('01234567-89ab-cdef-0123-456789abcdef') AS name`);
    expect(rows[0]!.name).toBe(`sandbox_${hex32}`);
    expect(SCHEMA_NAME_RE.test(rows[0]!.name)).toBe(true);
  });
});
