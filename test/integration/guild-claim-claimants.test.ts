/**
 * Who a pending guild claim is honoured for, decided from its stored `claimed_by` label on a real
 * PostgreSQL server. The label is parsed strictly: a row this code would never write (an unknown
 * prefix, `discord:` without a snowflake) is refused and audited on the bot's join, never taken
 * for an operator's claim and never sent to Discord as a member check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { GuildRegistry } from '../../src/sandbox/guild-registry.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import { countRows, createTestDatabase, makeManager, snowflake, type TestDatabase } from '../support/db.ts';

const op = { kind: 'operator', name: 'tester' } as const;
let db: TestDatabase;
let manager: SandboxManager;
let registry: GuildRegistry;

beforeAll(async () => {
  db = await createTestDatabase();
  manager = makeManager(db, { limits: { maxPerOwner: 100 }, guilds: { isBotInGuild: async () => false, canManageGuild: async () => true } });
  registry = new GuildRegistry(manager, silentLogger());
});
afterAll(async () => {
  await db?.drop();
});

/** Writes a claim row as a hostile or corrupted writer could, bypassing registerGuild. */
async function plantClaim(guildId: string, sandboxId: string, claimedBy: string, ageSeconds = 0): Promise<void> {
  await db.pool.query(
    `INSERT INTO sandbox_guild_claims (guild_id, sandbox_id, claimed_by, created_at, expires_at)
     VALUES ($1, $2, $3, now() - make_interval(secs => $4::int), now() + interval '1 hour')`,
    [guildId, sandboxId, claimedBy, ageSeconds],
  );
}

/** A claimant check that would say yes to anyone, and counts how often it was asked. */
function permissive(): { asked: string[]; verify: (userId: string) => Promise<boolean> } {
  const asked: string[] = [];
  return { asked, verify: async (userId) => (asked.push(userId), true) };
}

async function refusals(guildId: string): Promise<{ sandbox_id: string; claimed_by: string; reason: string }[]> {
  const { rows } = await db.pool.query(
    `SELECT sandbox_id::text, details->>'claimedBy' AS claimed_by, details->>'reason' AS reason
       FROM sandbox_audit_log WHERE event_type = 'guild_claim_refused' AND details->>'guildId' = $1 ORDER BY id`,
    [guildId],
  );
  return rows;
}

describe('claims with an unrecognised claimant', () => {
  for (const claimedBy of ['bogus:x', 'discord:notanumber']) {
    it(`'${claimedBy}' does not map the guild; the claim is deleted and the refusal audited`, async () => {
      const { sandbox } = await manager.create({}, op);
      const guildId = snowflake();
      await plantClaim(guildId, sandbox.id, claimedBy);
      const check = permissive();

      const outcome = await registry.onGuildJoin(guildId, null, check.verify);

      expect(outcome.outcome).toBe('unmapped');
      expect(await manager.getByGuildId(guildId)).toBeNull();
      expect(await countRows(db, 'sandbox_guild_mapping', 'guild_id = $1', [guildId])).toBe(0);
      expect(check.asked).toEqual([]);
      expect(await countRows(db, 'sandbox_guild_claims', 'guild_id = $1', [guildId])).toBe(0);
      expect(await refusals(guildId)).toEqual([{ sandbox_id: sandbox.id, claimed_by: claimedBy, reason: 'unrecognised_claimant' }]);
    });
  }

  it('is refused without blocking a younger valid claim on the same guild', async () => {
    const bogus = await manager.create({}, op);
    const member = { kind: 'discord', id: snowflake() } as const;
    const valid = await manager.create({}, member);
    const guildId = snowflake();
    await plantClaim(guildId, bogus.sandbox.id, 'bogus:x', 60);
    await plantClaim(guildId, valid.sandbox.id, `discord:${member.id}`, 0);
    const check = permissive();

    const outcome = await registry.onGuildJoin(guildId, null, check.verify);

    expect(outcome).toMatchObject({ outcome: 'mapped', sandboxId: valid.sandbox.id, via: 'claim' });
    expect(check.asked).toEqual([member.id]);
    expect((await manager.getByGuildId(guildId))?.id).toBe(valid.sandbox.id);
    expect(await refusals(guildId)).toEqual([{ sandbox_id: bogus.sandbox.id, claimed_by: 'bogus:x', reason: 'unrecognised_claimant' }]);
  });
});

describe('claims with a recognised claimant', () => {
  it("an operator's claim (cli:<name>) maps the guild without a member check", async () => {
    const { sandbox } = await manager.create({}, op);
    const guildId = snowflake();
    await plantClaim(guildId, sandbox.id, 'cli:tester');
    const check = permissive();

    expect(await registry.onGuildJoin(guildId, null, check.verify)).toMatchObject({ outcome: 'mapped', sandboxId: sandbox.id, via: 'claim' });
    expect(check.asked).toEqual([]);
  });

  it("a Discord user's claim is checked in the guild, and refused when the user lacks Manage Server", async () => {
    const member = { kind: 'discord', id: snowflake() } as const;
    const { sandbox } = await manager.create({}, member);
    const guildId = snowflake();
    await plantClaim(guildId, sandbox.id, `discord:${member.id}`);
    const asked: string[] = [];

    const outcome = await registry.onGuildJoin(guildId, null, async (userId) => (asked.push(userId), false));

    expect(outcome.outcome).toBe('unmapped');
    expect(asked).toEqual([member.id]);
    expect(await refusals(guildId)).toEqual([{ sandbox_id: sandbox.id, claimed_by: `discord:${member.id}`, reason: 'claimant_lacks_manage_server' }]);
  });

  it("a bot admin's claim maps without a member check", async () => {
    const adminId = snowflake();
    const withAdmin = makeManager(db, { limits: { maxPerOwner: 100 }, adminIds: [adminId], guilds: { isBotInGuild: async () => false, canManageGuild: async () => true } });
    const adminRegistry = new GuildRegistry(withAdmin, silentLogger());
    const { sandbox } = await withAdmin.create({}, op);
    const guildId = snowflake();
    await plantClaim(guildId, sandbox.id, `discord:${adminId}`);
    const check = permissive();

    expect(await adminRegistry.onGuildJoin(guildId, null, check.verify)).toMatchObject({ outcome: 'mapped', sandboxId: sandbox.id });
    expect(check.asked).toEqual([]);
  });
});
