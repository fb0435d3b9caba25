// Lesson 5: check-then-act races. Limits and uniqueness hold when many callers act at once,
// each on its own connection pool, exactly as separate processes would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { botJoined, countRows, createTestDatabase, makeManager, snowflake, type TestDatabase } from '../support/db.ts';
import { createPool, createPrisma } from '../../src/db/database.ts';
import { silentLogger } from '../../src/logger.ts';
import { SandboxManager } from '../../src/sandbox/manager.ts';

const op = { kind: 'operator', name: 'tester' } as const;
let db: TestDatabase;
const extra: { end(): Promise<void> }[] = [];

/** A manager on its own pool, like another process. */
function separateManager(): SandboxManager {
  const pool = createPool(db.url, silentLogger(), 4);
  extra.push(pool);
  return new SandboxManager({ prisma: createPrisma(pool, silentLogger()), logger: silentLogger() });
}

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  for (const p of extra) await p.end();
  await db?.drop();
});

const outcomes = (results: PromiseSettledResult<unknown>[]) => ({
  ok: results.filter((r) => r.status === 'fulfilled').length,
  codes: results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as { code?: string }).code),
});

describe('concurrency', () => {
  it('twenty concurrent creates by one owner yield exactly the limit of five', async () => {
    const managers = Array.from({ length: 4 }, separateManager);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => managers[i % 4]!.create({ owner: 'cli:greedy' }, op)),
    );
    const { ok, codes } = outcomes(results);
    expect(ok).toBe(5);
    expect(codes).toEqual(Array(15).fill('SANDBOX_002'));
    expect(await countRows(db, 'sandboxes', `owner = 'cli:greedy' AND status = 'running'`)).toBe(5);
    expect(await countRows(db, 'sandboxes', `owner = 'cli:greedy'`)).toBe(5);
  });

  it('failed and destroyed sandboxes do not count against the limit', async () => {
    const m = makeManager(db);
    const made = [];
    for (let i = 0; i < 5; i++) made.push((await m.create({ owner: 'cli:recycler' }, op)).sandbox);
    await expect(m.create({ owner: 'cli:recycler' }, op)).rejects.toMatchObject({ code: 'SANDBOX_002' });
    await m.destroy(made[0]!.id, op);
    await m.transition(made[1]!.id, 'running', 'failed', op);
    await expect(m.create({ owner: 'cli:recycler' }, op)).resolves.toBeTruthy();
    await expect(m.create({ owner: 'cli:recycler' }, op)).resolves.toBeTruthy();
    await expect(m.create({ owner: 'cli:recycler' }, op)).rejects.toMatchObject({ code: 'SANDBOX_002' });
  });

  it('two concurrent registrations of one guild: exactly one wins, the other gets SANDBOX_003', async () => {
    const m = makeManager(db);
    const guild = snowflake();
    await botJoined(db, guild);
    const a = (await m.create({ name: 'guild-racer-a', owner: 'cli:racer' }, op)).sandbox;
    const b = (await m.create({ name: 'guild-racer-b', owner: 'cli:racer' }, op)).sandbox;
    const [ma, mb] = [separateManager(), separateManager()];
    const results = await Promise.allSettled([ma.registerGuild(a.id, guild, op), mb.registerGuild(b.id, guild, op)]);
    const { ok, codes } = outcomes(results);
    expect(ok).toBe(1);
    expect(codes).toEqual(['SANDBOX_003']);
    expect(await countRows(db, 'sandbox_guild_mapping', 'guild_id = $1', [guild])).toBe(1);
    expect(await countRows(db, 'sandbox_audit_log', `event_type = 'guild_registered' AND details->>'guildId' = $1`, [guild])).toBe(1);
  });

  it('concurrent creates with one name: one wins, the rest get SANDBOX_001', async () => {
    const managers = Array.from({ length: 3 }, separateManager);
    const results = await Promise.allSettled(managers.map((m, i) => m.create({ name: 'same-name', owner: `cli:namer-${i}` }, op)));
    const { ok, codes } = outcomes(results);
    expect(ok).toBe(1);
    expect(codes).toEqual(['SANDBOX_001', 'SANDBOX_001']);
    expect(await countRows(db, 'sandboxes', `name = 'same-name'`)).toBe(1);
  });

  it('a register racing a destroy never leaves a mapping on a destroyed sandbox', async () => {
    const m = makeManager(db);
    for (let i = 0; i < 5; i++) {
      const guild = snowflake();
      await botJoined(db, guild);
      const s = (await m.create({ name: `reg-vs-destroy-${i}`, owner: `cli:rvd-${i}` }, op)).sandbox;
      await Promise.allSettled([separateManager().registerGuild(s.id, guild, op), separateManager().destroy(s.id, op)]);
      expect(await countRows(db, 'sandbox_guild_mapping', `sandbox_id = $1`, [s.id])).toBe(0);
    }
  });

  it('an extend racing a destroy never revives the sandbox', async () => {
    const m = makeManager(db);
    for (let i = 0; i < 5; i++) {
      const s = (await m.create({ name: `ext-vs-destroy-${i}`, owner: `cli:evd-${i}` }, op)).sandbox;
      await Promise.allSettled([separateManager().extendTtl(s.id, 5, op), separateManager().destroy(s.id, op)]);
      expect((await m.getById(s.id))?.status).toBe('destroyed');
    }
  });
});
