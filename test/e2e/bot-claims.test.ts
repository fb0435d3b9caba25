/**
 * Hardening (#8), end to end through the real discord.js client and the fake Discord: who may
 * claim and release a guild, the claim limits, and Discord failures that must not destroy state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { countRows, snowflake } from '../support/db.ts';
import { sweepAt } from '../fault/support/sweep.ts';
import { addGuild, eventually, finalText, sandboxCommand, setupEnv, type Env } from './support/harness.ts';

let env: Env;
let app: App;

beforeAll(async () => {
  env = await setupEnv();
  app = await env.start();
});

afterAll(async () => {
  await env?.close();
});

async function run(guildId: string, userId: string, subcommand: string, options: Record<string, string | number | boolean> = {}): Promise<string> {
  const handle = env.fake.sendCommand(sandboxCommand({ guildId, userId, subcommand, options }));
  const text = await finalText(handle);
  expect(handle.edits.at(-1)!.allowed_mentions).toEqual({ parse: [] });
  return text;
}

/** A user with their own guild (where the bot is) and a sandbox there that is not mapped to it. */
async function userWithSandbox(name: string): Promise<{ userId: string; home: string }> {
  const { guildId, ownerId } = addGuild(env.fake);
  const text = await run(guildId, ownerId, 'create', { name, register_this_guild: false });
  expect(text).toContain(`Created sandbox **${name}**`);
  return { userId: ownerId, home: guildId };
}

const audits = (guildId: string, eventType: string) =>
  env.db.pool
    .query<{ actor: string; sandbox_id: string | null; details: Record<string, unknown> }>(
      "SELECT actor, sandbox_id::text AS sandbox_id, details FROM sandbox_audit_log WHERE details->>'guildId' = $1 AND event_type = $2 ORDER BY id",
      [guildId, eventType],
    )
    .then((r) => r.rows);

const claimsOn = (guildId: string) =>
  env.db.pool
    .query<{ sandbox: string; claimed_by: string }>(
      'SELECT s.name AS sandbox, c.claimed_by FROM sandbox_guild_claims c JOIN sandboxes s ON s.id = c.sandbox_id WHERE c.guild_id = $1 ORDER BY c.created_at',
      [guildId],
    )
    .then((r) => r.rows);

const mappedName = async (guildId: string) => (await app.manager.getByGuildId(guildId))?.name ?? null;

describe('the attacker’s script', () => {
  it('cannot hijack a claim, hits the claim cap, and loses a stale mapping to the guild’s owner', async () => {
    const a = await userWithSandbox('victim-a');
    const b = await userWithSandbox('attacker-b');

    // B claims A's not-yet-joined guild: A's claim stays.
    const target = snowflake();
    expect(await run(a.home, a.userId, 'register-guild', { sandbox: 'victim-a', guild_id: target })).toContain('pending');
    expect(await run(b.home, b.userId, 'register-guild', { sandbox: 'attacker-b', guild_id: target })).toContain('pending');
    expect(await claimsOn(target)).toEqual([
      { sandbox: 'victim-a', claimed_by: `discord:${a.userId}` },
      { sandbox: 'attacker-b', claimed_by: `discord:${b.userId}` },
    ]);

    // B's claims 2..10 are accepted, the 11th is refused in words.
    for (let i = 2; i <= 10; i++) expect(await run(b.home, b.userId, 'register-guild', { sandbox: 'attacker-b', guild_id: snowflake() })).toContain('pending');
    const eleventh = await run(b.home, b.userId, 'register-guild', { sandbox: 'attacker-b', guild_id: snowflake() });
    expect(eleventh).toContain('SANDBOX_002');
    expect(eleventh).toContain('10 pending server registrations');
    expect(await countRows(env.db, 'sandbox_guild_claims', 'claimed_by = $1', [`discord:${b.userId}`])).toBe(10);

    // The bot joins; A (a manager there) claimed first, so the guild maps to a. B (also a manager) is superseded.
    addGuild(env.fake, { id: target, managers: [a.userId, b.userId] });
    expect(await eventually(() => mappedName(target), 'the claimed guild to be mapped')).toBe('victim-a');
    const [superseded] = await audits(target, 'guild_claim_superseded');
    expect(superseded).toMatchObject({ actor: 'system:guild-join', details: { claimedBy: `discord:${b.userId}` } });
    expect(await claimsOn(target)).toEqual([]);

    // B maps a guild while managing it, then loses the role; the guild's owner takes it back.
    const managerRole = snowflake();
    const ownerId = snowflake();
    const stale = env.fake.addGuild({ ownerId, roles: [{ id: managerRole, name: 'managers', permissions: '32' }], members: [{ userId: b.userId, roles: [managerRole] }] });
    await eventually(async () => (await audits(stale, 'guild_join_unmapped')).length > 0, 'the join to be handled');
    expect(await run(stale, b.userId, 'register-guild', { sandbox: 'attacker-b' })).toContain('now registered to **attacker-b**');
    env.fake.setMemberRoles(stale, b.userId, []);

    // /sandbox create there says who holds it and how to release it.
    const created = await run(stale, ownerId, 'create', { name: 'owner-own' });
    expect(created).toContain(`already registered to sandbox attacker-b, owned by <@${b.userId}>`);
    expect(created).toContain('Manage Server');
    expect(created).toContain('/sandbox unregister-guild');

    const released = await run(stale, ownerId, 'unregister-guild');
    expect(released).toContain('no longer registered to **attacker-b**');
    expect(await mappedName(stale)).toBeNull();
    const [row] = await audits(stale, 'guild_unregistered');
    expect(row).toMatchObject({ actor: `discord:${ownerId}`, details: { owner: b.userId, via: 'manage_server' } });
  });
});

describe('claims at join', () => {
  it('tries claims oldest first: a claimant without Manage Server is refused and the next one maps', async () => {
    const a = await userWithSandbox('oldest-refused');
    const b = await userWithSandbox('second-maps');
    const guildId = snowflake();
    await run(a.home, a.userId, 'register-guild', { sandbox: 'oldest-refused', guild_id: guildId });
    await run(b.home, b.userId, 'register-guild', { sandbox: 'second-maps', guild_id: guildId });
    addGuild(env.fake, { id: guildId, members: [a.userId], managers: [b.userId] });
    expect(await eventually(() => mappedName(guildId), 'the mapping')).toBe('second-maps');
    const [refused] = await audits(guildId, 'guild_claim_refused');
    expect(refused).toMatchObject({ details: { claimedBy: `discord:${a.userId}`, reason: 'claimant_lacks_manage_server' } });
  });

  it('honours an admin’s claim without a member check (item 8)', async () => {
    const owner = await userWithSandbox('admin-claimed');
    const guildId = snowflake();
    env.fake.state.addMember(env.fake.state.guild(owner.home), { userId: env.adminId });
    const memberFetches: string[] = [];
    env.fake.on('request', (r) => void (r.path.startsWith(`/guilds/${guildId}/members/`) && memberFetches.push(r.path)));
    const text = await run(owner.home, env.adminId, 'register-guild', { sandbox: 'admin-claimed', guild_id: guildId });
    expect(text).toContain('pending');
    // Neither the admin nor the sandbox's owner is a member of the guild.
    addGuild(env.fake, { id: guildId });
    expect(await eventually(() => mappedName(guildId), 'the admin claim to map')).toBe('admin-claimed');
    const [row] = await audits(guildId, 'guild_registered');
    expect(row).toMatchObject({ actor: 'system:guild-join', details: { via: 'claim', claimant: 'admin', claimedBy: `discord:${env.adminId}` } });
    expect(memberFetches).toEqual([]);
  });

  it('keeps a claim when Discord fails with 5xx during the check, and maps on the sweeper’s retry (item 4)', async () => {
    const a = await userWithSandbox('deferred-claim');
    const guildId = snowflake();
    await run(a.home, a.userId, 'register-guild', { sandbox: 'deferred-claim', guild_id: guildId });
    // discord.js retries a 5xx three times: four failures make the member fetch fail once.
    env.fake.failNext(`GET /guilds/${guildId}/members/${a.userId}`, 502, { times: 4 });
    addGuild(env.fake, { id: guildId, managers: [a.userId] });
    const [deferred] = await eventually(async () => {
      const rows = await audits(guildId, 'guild_claim_check_deferred');
      return rows.length ? rows : null;
    }, 'the deferral audit row');
    expect(deferred).toMatchObject({ actor: 'system:guild-join', details: { attempts: 1, claimedBy: `discord:${a.userId}` } });
    expect(await claimsOn(guildId)).toEqual([{ sandbox: 'deferred-claim', claimed_by: `discord:${a.userId}` }]);
    expect(await mappedName(guildId)).toBeNull();
    expect(await audits(guildId, 'guild_claim_refused')).toEqual([]);

    const summary = await app.sweeper.runPass();
    expect(summary.counts.claim_rechecked).toBe(1);
    expect(await mappedName(guildId)).toBe('deferred-claim');
  });

  it('retries a deferred check when the guild becomes available again (item 4)', async () => {
    const a = await userWithSandbox('deferred-available');
    const guildId = snowflake();
    await run(a.home, a.userId, 'register-guild', { sandbox: 'deferred-available', guild_id: guildId });
    env.fake.failNext(`GET /guilds/${guildId}/members/${a.userId}`, 500, { times: 4 });
    addGuild(env.fake, { id: guildId, managers: [a.userId] });
    await eventually(async () => (await audits(guildId, 'guild_claim_check_deferred')).length > 0, 'the deferral');
    expect(await mappedName(guildId)).toBeNull();
    env.fake.removeGuild(guildId, { unavailable: true });
    await eventually(() => app.client.guilds.cache.get(guildId)?.available === false, 'the outage');
    env.fake.restoreGuild(guildId);
    expect(await eventually(() => mappedName(guildId), 'the mapping after guildAvailable')).toBe('deferred-available');
  });

  it('expires a claim after 72 hours: the sweeper deletes and audits it', async () => {
    const { guildId: home, ownerId } = addGuild(env.fake);
    // The sandbox outlives the claim (168 h), so only the claim's own TTL can remove it.
    expect(await run(home, ownerId, 'create', { name: 'claim-ttl', ttl_hours: 168, register_this_guild: false })).toContain('Created sandbox');
    const a = { userId: ownerId, home };
    const guildId = snowflake();
    await run(a.home, a.userId, 'register-guild', { sandbox: 'claim-ttl', guild_id: guildId });
    const early = await sweepAt({ prisma: env.db.prisma }, { aheadMs: 71 * 3_600_000 });
    expect(early.counts.claim_expired).toBe(0);
    expect(await claimsOn(guildId)).toHaveLength(1);
    const late = await sweepAt({ prisma: env.db.prisma }, { aheadMs: 72 * 3_600_000 + 60_000 });
    expect(late.counts.claim_expired).toBe(1);
    expect(await claimsOn(guildId)).toEqual([]);
    const [row] = await audits(guildId, 'guild_claim_expired');
    expect(row).toMatchObject({ actor: 'system:sweeper', details: { claimedBy: `discord:${a.userId}` } });
  });
});

describe('releasing a guild (item 3)', () => {
  it('a Manage Server holder unregisters someone else’s sandbox by name; a plain member may not', async () => {
    const holder = await userWithSandbox('held-by-other');
    const managerId = snowflake();
    const memberId = snowflake();
    const { guildId } = addGuild(env.fake, { ownerId: holder.userId, managers: [managerId], members: [memberId] });
    expect(await eventually(() => mappedName(guildId), 'the owner-rule mapping')).toBe('held-by-other');

    const refused = await run(guildId, memberId, 'unregister-guild', { sandbox: 'held-by-other' });
    expect(refused).toContain('SANDBOX_009');
    expect(await mappedName(guildId)).toBe('held-by-other');

    const done = await run(guildId, managerId, 'unregister-guild', { sandbox: 'held-by-other' });
    expect(done).toContain('no longer registered to **held-by-other**');
    expect(await mappedName(guildId)).toBeNull();
    const [row] = await audits(guildId, 'guild_unregistered');
    expect(row).toMatchObject({ actor: `discord:${managerId}`, details: { owner: holder.userId, via: 'manage_server' } });
  });
});

describe('a failed member fetch during /sandbox create (item 5)', () => {
  it('creates the sandbox unmapped on 403 Missing Access and says why', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    env.fake.failNext(`GET /guilds/${guildId}/members/${ownerId}`, 403, { body: { message: 'Missing Access', code: 50001 } });
    const text = await run(guildId, ownerId, 'create', { name: 'fetch-403' });
    expect(text).toContain('Created sandbox **fetch-403**');
    expect(text).toContain('could not tell whether you hold the Manage Server permission');
    expect(text).not.toContain('SANDBOX_012');
    expect(await mappedName(guildId)).toBeNull();
  });

  it('creates the sandbox unmapped on a 5xx and says why', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    env.fake.failNext(`GET /guilds/${guildId}/members/${ownerId}`, 503, { times: 4 });
    const text = await run(guildId, ownerId, 'create', { name: 'fetch-503' });
    expect(text).toContain('Created sandbox **fetch-503**');
    expect(text).toContain('could not tell whether you hold the Manage Server permission');
    expect(await mappedName(guildId)).toBeNull();
  });
});

describe('autocomplete (item 6)', () => {
  it('finds an admin’s match among more than 200 sandboxes, at most 25 choices', async () => {
    await env.db.pool.query(`
      INSERT INTO sandboxes (id, name, owner, status, schema_name, created_at, expires_at, last_activity_at, status_changed_at)
      SELECT id, name, 'cli:seed', 'running', sandbox_schema_name(id), at, now() + interval '1 day', at, at
      FROM (SELECT gen_random_uuid() AS id, 'zz-oldest' AS name, now() - interval '1 day' AS at
            UNION ALL
            SELECT gen_random_uuid(), 'seeded-' || g, now() FROM generate_series(1, 210) g) x`);
    const { guildId } = addGuild(env.fake);
    env.fake.state.addMember(env.fake.state.guild(guildId), { userId: env.adminId });
    const complete = async (value: string) => {
      const handle = env.fake.sendAutocomplete({ ...sandboxCommand({ guildId, userId: env.adminId, subcommand: 'status' }), focused: 'sandbox', value });
      const response = await handle.firstResponse();
      return (response.body.data as { choices: { value: string }[] }).choices.map((c) => c.value);
    };
    expect(await complete('zz-old')).toEqual(['zz-oldest']);
    expect(await complete('seeded-')).toHaveLength(25);
  });
});
