/**
 * Hardening (#8) races at the manager level, on a real PostgreSQL server: the global sandbox cap
 * and the per-user claim cap under concurrency, register-guild racing the bot's join (item 9),
 * and a user destroy against the sweeper's retry step (item 10, two-phase path).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sweeper } from '../../src/jobs/sweeper.ts';
import { silentLogger } from '../../src/logger.ts';
import { GuildRegistry } from '../../src/sandbox/guild-registry.ts';
import type { GuildDirectory } from '../../src/sandbox/guild-directory.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import { countRows, createTestDatabase, makeManager, snowflake, type TestDatabase } from '../support/db.ts';
import { TableResource } from '../support/table-resource.ts';

const op = { kind: 'operator', name: 'tester' } as const;
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const codeOf = (r: PromiseSettledResult<unknown>): string => (r.status === 'fulfilled' ? 'ok' : String((r.reason as { code?: string }).code));

describe('SANDBOX_MAX_TOTAL', () => {
  it('holds under 12 concurrent creates by 12 different owners', async () => {
    const capped = makeManager(db, { limits: { maxTotal: 5, maxPerOwner: 100 } });
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => capped.create({ name: `total-${i}`, owner: `cli:owner-${i}` }, op)));
    const codes = results.map(codeOf);
    expect(codes.filter((c) => c === 'ok')).toHaveLength(5);
    expect(codes.filter((c) => c === 'SANDBOX_002')).toHaveLength(7);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(String(refused.reason.message)).toContain('SANDBOX_MAX_TOTAL');
    expect(await countRows(db, 'sandboxes', "name LIKE 'total-%' AND status <> 'destroyed'")).toBe(5);
    // Cleanup for the other tests in this file.
    for (const r of results) if (r.status === 'fulfilled') await capped.destroy((r.value as { sandbox: { id: string } }).sandbox.id, op);
  });
});

describe('MAX_CLAIMS_PER_USER', () => {
  it('allows 10 live claims per user under 15 concurrent register-guild calls', async () => {
    const user = { kind: 'discord', id: snowflake() } as const;
    const manager = makeManager(db);
    const { sandbox } = await manager.create({ name: 'claims-cap' }, user);
    const results = await Promise.allSettled(Array.from({ length: 15 }, () => manager.registerGuild(sandbox.id, snowflake(), user)));
    const codes = results.map(codeOf);
    expect(codes.filter((c) => c === 'ok')).toHaveLength(10);
    expect(codes.filter((c) => c === 'SANDBOX_002')).toHaveLength(5);
    expect(await countRows(db, 'sandbox_guild_claims', 'claimed_by = $1', [`discord:${user.id}`])).toBe(10);
    await manager.destroy(sandbox.id, user);
    expect(await countRows(db, 'sandbox_guild_claims', 'claimed_by = $1', [`discord:${user.id}`])).toBe(0);
  });
});

describe('register-guild racing the bot’s join (item 9)', () => {
  it('maps when the join lands between the presence check and the transaction', async () => {
    const user = { kind: 'discord', id: snowflake() } as const;
    const guildId = snowflake();
    let registry!: GuildRegistry;
    let joined = false;
    const directory: GuildDirectory = {
      // The bot's cache does not list the guild yet; the join is handled right after this answer.
      async isBotInGuild() {
        if (!joined) {
          joined = true;
          await registry.onGuildJoin(guildId, null, async () => true);
        }
        return false;
      },
      async canManageGuild() {
        return true;
      },
    };
    const manager: SandboxManager = makeManager(db, { guilds: directory });
    registry = new GuildRegistry(manager, silentLogger());
    const { sandbox } = await manager.create({ name: 'race-join' }, user);
    const { outcome } = await manager.registerGuild(sandbox.id, guildId, user);
    expect(outcome).toBe('mapped');
    expect((await manager.getByGuildId(guildId))?.name).toBe('race-join');
    expect(await countRows(db, 'sandbox_guild_claims', 'guild_id = $1', [guildId])).toBe(0);
  });
});

describe('user destroy against the sweeper’s retry (item 10)', () => {
  it('a destroy in progress holds a lease: the sweeper neither finishes it nor takes the credit', async () => {
    let startedRemove!: () => void;
    const removing = new Promise<void>((resolve) => (startedRemove = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const held = new (class extends TableResource {
      override async remove(id: string): Promise<void> {
        startedRemove();
        await gate;
        await super.remove(id);
      }
    })(db.pool, 'lease_ext', 'lease-ext');
    await held.install();
    const plain = await new TableResource(db.pool, 'lease_ext', 'lease-ext').install();
    let finishes = 0;
    const userManager = makeManager(db, { resources: [held], observer: { destroyed: (o) => void (o === 'success' && finishes++) } });
    const sweeperManager = makeManager(db, { resources: [plain] });
    const alice = { kind: 'discord', id: snowflake() } as const;
    const { sandbox } = await userManager.create({ name: 'lease-me' }, alice);

    const destroying = userManager.destroy(sandbox.id, alice);
    await removing;
    expect((await db.pool.query('SELECT status::text AS s FROM sandboxes WHERE id = $1', [sandbox.id])).rows[0].s).toBe('destroying');
    let sweeperFinishes = 0;
    const summary = await new Sweeper({ manager: sweeperManager, logger: silentLogger(), observer: { destroyed: () => void sweeperFinishes++ } }).runPass();
    expect(summary.counts.destroy_retried).toBe(0);
    expect(sweeperFinishes).toBe(0);
    release();
    expect((await destroying).status).toBe('destroyed');
    expect(finishes).toBe(1);
    const { rows } = await db.pool.query<{ actor: string }>("SELECT actor FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'destroyed'", [sandbox.id]);
    expect(rows).toEqual([{ actor: `discord:${alice.id}` }]);
  });
});

describe('deferred claim checks (item 4)', () => {
  it('are retried at most 5 times; then the claim is left to lapse with its TTL', async () => {
    const user = { kind: 'discord', id: snowflake() } as const;
    const guildId = snowflake();
    const manager = makeManager(db, { guilds: { isBotInGuild: async () => false, canManageGuild: async () => true } });
    const registry = new GuildRegistry(manager, silentLogger());
    const { sandbox } = await manager.create({ name: 'flaky-discord' }, user);
    await manager.registerGuild(sandbox.id, guildId, user);
    const outage = async (): Promise<boolean> => {
      throw new Error('503 Service Unavailable');
    };
    for (let i = 1; i <= 5; i++) expect(await registry.onGuildJoin(guildId, null, outage)).toMatchObject({ outcome: 'claim-deferred', attempts: i });
    // The sixth join no longer asks Discord about it and no longer retries it on guildAvailable.
    let asked = 0;
    const counting = async (): Promise<boolean> => {
      asked++;
      return true;
    };
    expect(await registry.onGuildJoin(guildId, null, counting)).toMatchObject({ outcome: 'unmapped' });
    expect(await registry.onGuildSeen({ id: guildId, ownerId: null }, counting)).toBeNull();
    expect(asked).toBe(0);
    expect(await countRows(db, 'sandbox_guild_claims', 'guild_id = $1', [guildId])).toBe(1);
    expect(await countRows(db, 'sandbox_audit_log', "event_type = 'guild_claim_check_deferred' AND details->>'guildId' = $1", [guildId])).toBe(5);
  });
});
