// Lessons 1, 2 and 7: the recorded schema is the one that exists; orphan cleanup never touches
// live or look-alike schemas; names carry the whole id.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createTestDatabase, makeManager, schemaExists, tablesIn, type TestDatabase } from '../support/db.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import { schemaToId } from '../../src/sandbox/store/schemas.ts';

const op = { kind: 'operator', name: 'tester' } as const;
let db: TestDatabase;
let manager: SandboxManager;

beforeAll(async () => {
  db = await createTestDatabase();
  manager = makeManager(db);
});
afterAll(async () => db?.drop());

/** A sandbox-named schema built from the template by the provisioner (in its own transaction), outside any sandbox row. */
const buildSchema = (id: string): Promise<string> => db.prisma.$transaction((tx) => manager.provisioner.buildSchema(id, tx)).then((r) => r.schemaName);

describe('schema provisioning', () => {
  it('records exactly the schema that exists, holding communities, profiles and badges', async () => {
    const { sandbox } = await manager.create({ name: 'recorded-schema', owner: 'cli:alice' }, op);
    expect(sandbox.schemaName).toBe(`sandbox_${sandbox.id.replaceAll('-', '')}`);
    expect(await schemaExists(db, sandbox.schemaName)).toBe(true);
    expect(await tablesIn(db, sandbox.schemaName)).toEqual(['badges', 'communities', 'profiles']);
    const { rows } = await db.pool.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname ~ '^sandbox_[0-9a-f]{32}$' AND nspname NOT IN (SELECT schema_name FROM sandboxes)`,
    );
    expect(rows).toEqual([]);
  });

  it('creates usable tables with their constraints inside the sandbox schema', async () => {
    const { sandbox } = await manager.create({ name: 'usable-tables', owner: 'cli:alice' }, op);
    const s = sandbox.schemaName;
    const c = await db.pool.query(`INSERT INTO ${s}.communities (name, discord_guild_id) VALUES ('c', '1') RETURNING id`);
    const p = await db.pool.query(`INSERT INTO ${s}.profiles (community_id, discord_id) VALUES ($1, 'u1') RETURNING id`, [c.rows[0].id]);
    await db.pool.query(`INSERT INTO ${s}.badges (profile_id, badge_type) VALUES ($1, 'early')`, [p.rows[0].id]);
    await expect(db.pool.query(`INSERT INTO ${s}.badges (profile_id, badge_type) VALUES ($1, 'early')`, [p.rows[0].id])).rejects.toThrow(/unique/);
    const stats = await manager.provisioner.getSchemaStats(sandbox.id);
    expect(stats).toEqual({
      exists: true,
      tables: [
        { tableName: 'badges', rowCount: 1 },
        { tableName: 'communities', rowCount: 1 },
        { tableName: 'profiles', rowCount: 1 },
      ],
      totalRows: 3,
    });
    // Nothing leaked into public.
    const pub = await db.pool.query(`SELECT to_regclass('public.communities') AS t`);
    expect(pub.rows[0].t).toBeNull();
  });

  it('refuses to adopt an existing schema and drops idempotently', async () => {
    const id = randomUUID();
    const name = await buildSchema(id);
    await db.pool.query(`INSERT INTO ${name}.communities (name) VALUES ('keep me')`);
    await expect(buildSchema(id)).rejects.toMatchObject({ code: 'SANDBOX_005', details: { collision: true } });
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM ${name}.communities`)).rows[0].n).toBe(1);
    expect(await manager.provisioner.dropSchema(id)).toBe(true);
    expect(await manager.provisioner.dropSchema(id)).toBe(false);
    expect(await manager.provisioner.schemaExists(id)).toBe(false);
    expect(await manager.provisioner.getSchemaStats(id)).toEqual({ exists: false, tables: [], totalRows: 0 });
  });

  it('round-trips schema names and ids', () => {
    const id = randomUUID();
    expect(schemaToId(`sandbox_${id.replaceAll('-', '')}`)).toBe(id);
    expect(() => schemaToId('sandboxes_archive')).toThrow(/Not a sandbox schema/);
  });

  it('orphan cleanup keeps live schemas, drops a true orphan and ignores look-alike names', async () => {
    const live = (await manager.create({ name: 'live-one', owner: 'cli:bob' }, op)).sandbox;
    const orphanId = randomUUID();
    const orphan = await buildSchema(orphanId);
    const lookAlikes = ['sandboxes_archive', 'sandbox_abc', `sandboxx${'a'.repeat(32)}`, `sandbox_${'A'.repeat(32)}`, `sandbox_${'a'.repeat(33)}`];
    for (const s of lookAlikes) await db.pool.query(`CREATE SCHEMA "${s}"`);

    const listed = await manager.provisioner.listSchemas();
    expect(listed).toContain(live.schemaName);
    expect(listed).toContain(orphan);
    for (const s of lookAlikes) expect(listed).not.toContain(s);
    expect(await manager.provisioner.findOrphanedSchemas()).toEqual([orphan]);
    const result = await manager.provisioner.cleanupOrphanedSchemas();
    expect(result).toEqual({ dropped: [orphan], failed: [], next: null });

    expect(await schemaExists(db, orphan)).toBe(false);
    expect(await schemaExists(db, live.schemaName)).toBe(true);
    for (const s of lookAlikes) expect(await schemaExists(db, s)).toBe(true);
    expect(await manager.provisioner.cleanupOrphanedSchemas()).toEqual({ dropped: [], failed: [], next: null });
  });

  it('walks the schemas a slice at a time: every orphan is dropped once, live schemas stay, and the walk ends', async () => {
    const { sandbox: live } = await manager.create({ name: 'walk-live', owner: 'cli:bob' }, op);
    const orphans: string[] = [];
    for (let i = 0; i < 7; i++) {
      const name = `sandbox_${randomUUID().replaceAll('-', '')}`;
      await db.pool.query(`CREATE SCHEMA ${name}`);
      orphans.push(name);
    }
    const dropped: string[] = [];
    let after: string | null = null;
    let slices = 0;
    do {
      const r = await manager.provisioner.cleanupOrphanedSchemas({ after, limit: 3 });
      expect(r.failed).toEqual([]);
      dropped.push(...r.dropped);
      after = r.next;
      slices++;
    } while (after !== null && slices < 20);
    expect(after).toBeNull();
    expect(slices).toBeGreaterThanOrEqual(3); // 8 sandbox-pattern schemas at least, 3 per slice
    expect([...dropped].sort()).toEqual([...orphans].sort());
    expect(await schemaExists(db, live.schemaName)).toBe(true);
  });

  it('treats the schema of a destroyed sandbox as an orphan if it ever reappears', async () => {
    const { sandbox } = await manager.create({ name: 'comes-back', owner: 'cli:bob' }, op);
    await manager.destroy(sandbox.id, op);
    await buildSchema(sandbox.id);
    expect(await manager.provisioner.findOrphanedSchemas()).toEqual([sandbox.schemaName]);
    await manager.provisioner.cleanupOrphanedSchemas();
    expect(await schemaExists(db, sandbox.schemaName)).toBe(false);
  });
});
