// Lesson 6: hostile input is rejected at the edge with a clear error and nothing is written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, makeManager, type TestDatabase } from '../support/db.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';

const op = { kind: 'operator', name: 'tester' } as const;
let db: TestDatabase;
let manager: SandboxManager;

const HOSTILE = [
  "a'; DROP TABLE sandboxes; --",
  'x$(touch /tmp/pwned)',
  'x`id`',
  'semi;colon',
  'name with spaces',
  'ünïcödé-name',
  'ＦＵＬＬＷＩＤＴＨ',
  'UPPER-case',
  '-leading-dash',
  'ab',
  'a'.repeat(65),
  'x'.repeat(10_000),
  'line\nbreak',
  'nul\u0000byte',
  '"quoted"',
  '',
  '123e4567-e89b-12d3-a456-426614174000',
];
const HOSTILE_GUILDS = ["1'; DROP TABLE sandboxes; --", '$(reboot)', '123', '1'.repeat(21), '１２３４５６７８９０１２３４５６７８', '12345678901234567\n8', '0'.repeat(18), ''];

async function totals(): Promise<string> {
  const { rows } = await db.pool.query(`SELECT
    (SELECT count(*) FROM sandboxes) AS s, (SELECT count(*) FROM sandbox_audit_log) AS a,
    (SELECT count(*) FROM sandbox_guild_mapping) AS m, (SELECT count(*) FROM sandbox_guild_claims) AS c,
    (SELECT count(*) FROM pg_namespace) AS n`);
  return JSON.stringify(rows[0]);
}

beforeAll(async () => {
  db = await createTestDatabase();
  manager = makeManager(db);
  await manager.create({ name: 'target', owner: 'cli:victim' }, op);
});
afterAll(async () => db?.drop());

describe('hostile input', () => {
  it('rejects hostile names everywhere a name is accepted, writing nothing', async () => {
    const before = await totals();
    for (const name of HOSTILE) {
      for (const attempt of [
        () => manager.create({ name, owner: 'cli:attacker' }, op),
        () => manager.destroy(name, op),
        () => manager.extendTtl(name, 1, op),
        () => manager.registerGuild(name, '123456789012345678', op),
        () => manager.getConnectionDetails(name, op),
      ]) {
        const err = await attempt().then(() => undefined, (e: unknown) => e);
        expect(err, JSON.stringify(name.slice(0, 30))).toMatchObject({ code: expect.stringMatching(/^SANDBOX_00[48]$/) });
        expect((err as Error).message.length).toBeLessThan(300);
        expect((err as Error).message).toMatch(/^(Invalid sandbox name|A sandbox name may not look like a UUID|No sandbox named)/);
        expect((err as Error).message).not.toMatch(/syntax error|relation "|violates|constraint/i);
      }
    }
    expect(await totals()).toBe(before);
  });

  it('rejects hostile guild ids, owners, TTLs and metadata, writing nothing', async () => {
    const before = await totals();
    for (const guild of HOSTILE_GUILDS) {
      await expect(manager.create({ name: 'fine-name', owner: 'cli:attacker', guildIds: [guild] }, op)).rejects.toMatchObject({ code: 'SANDBOX_008' });
      await expect(manager.registerGuild('target', guild, op)).rejects.toMatchObject({ code: 'SANDBOX_008' });
      await expect(manager.getByGuildId(guild)).rejects.toMatchObject({ code: 'SANDBOX_008' });
    }
    for (const owner of ["cli:x'; --", 'cli:$(id)', 'someone', '12', 'cli:' + 'a'.repeat(40), 'CLI:ROOT']) {
      await expect(manager.create({ name: 'fine-name', owner }, op)).rejects.toMatchObject({ code: 'SANDBOX_008' });
    }
    for (const ttlHours of [0, -5, 1.25, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
      await expect(manager.create({ name: 'fine-name', owner: 'cli:attacker', ttlHours }, op)).rejects.toMatchObject({ code: 'SANDBOX_008' });
    }
    await expect(manager.create({ name: 'fine-name', owner: 'cli:attacker', metadata: { blob: 'x'.repeat(20_000) } }, op)).rejects.toMatchObject({ code: 'SANDBOX_008' });
    await expect(manager.create({ name: 'fine-name', owner: 'cli:attacker', metadata: [] as unknown as Record<string, unknown> }, op)).rejects.toMatchObject({ code: 'SANDBOX_008' });
    expect(await totals()).toBe(before);
  });

  it('the database itself refuses malformed names and guild ids (defence in depth)', async () => {
    await expect(
      db.pool.query(`INSERT INTO sandboxes (name, owner, schema_name, expires_at) VALUES ('Bad Name', 'x', sandbox_schema_name(gen_random_uuid()), now())`),
    ).rejects.toThrow(/sandboxes_name_format/);
    await expect(db.pool.query(`INSERT INTO sandboxes (name, owner, schema_name, expires_at) VALUES ('ok-name', 'x', 'public', now())`)).rejects.toThrow(
      /sandboxes_schema_name_format/,
    );
  });
});
