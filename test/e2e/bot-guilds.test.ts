import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { countRows, snowflake } from '../support/db.ts';
import { LatencyLog, addGuild, eventually, finalText, sandboxCommand, setupEnv, type Env } from './support/harness.ts';

let env: Env;
let app: App;
const latency = new LatencyLog();

beforeAll(async () => {
  env = await setupEnv();
  app = await env.start();
});

afterAll(async () => {
  latency.report('bot-guilds');
  await env?.close();
});

async function run(guildId: string, userId: string, subcommand: string, options: Record<string, string | number | boolean> = {}): Promise<string> {
  const handle = env.fake.sendCommand(sandboxCommand({ guildId, userId, subcommand, options }));
  const text = await finalText(handle);
  latency.record(handle);
  expect(handle.callback).toEqual({ type: 5, data: { flags: 64 } });
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
      "SELECT actor, sandbox_id, details FROM sandbox_audit_log WHERE details->>'guildId' = $1 AND event_type = $2",
      [guildId, eventType],
    )
    .then((r) => r.rows);

describe('register-guild and pending claims', () => {
  it('answers with an invite for exactly that guild, and maps it when the bot is added there', async () => {
    const { userId, home } = await userWithSandbox('claim-target');
    const pending = snowflake();
    const text = await run(home, userId, 'register-guild', { sandbox: 'claim-target', guild_id: pending });
    const invite = `https://discord.com/oauth2/authorize?client_id=${env.fake.applicationId}&scope=bot+applications.commands&permissions=0&guild_id=${pending}&disable_guild_select=true`;
    expect(text).toContain(invite);
    expect(await countRows(env.db, 'sandbox_guild_claims', 'guild_id = $1', [pending])).toBe(1);
    expect(await app.manager.getByGuildId(pending)).toBeNull();

    // Someone else owns the guild; the claimant manages it through a role.
    addGuild(env.fake, { id: pending, managers: [userId] });
    const mapped = await eventually(() => app.manager.getByGuildId(pending), 'the claimed guild to be mapped');
    expect(mapped.name).toBe('claim-target');
    const [row] = await audits(pending, 'guild_registered');
    expect(row).toMatchObject({ actor: 'system:guild-join', details: { via: 'claim', claimedBy: `discord:${userId}` } });
    expect(await countRows(env.db, 'sandbox_guild_claims', 'guild_id = $1', [pending])).toBe(0);
  });

  it('refuses a claim whose claimant does not hold Manage Server when the bot joins', async () => {
    const { userId, home } = await userWithSandbox('claim-refused');
    const pending = snowflake();
    await run(home, userId, 'register-guild', { sandbox: 'claim-refused', guild_id: pending });
    addGuild(env.fake, { id: pending, members: [userId] });
    const [refusal] = await eventually(async () => {
      const rows = await audits(pending, 'guild_claim_refused');
      return rows.length ? rows : null;
    }, 'the refusal audit row');
    expect(refusal).toMatchObject({ actor: 'system:guild-join', details: { reason: 'claimant_lacks_manage_server' } });
    expect(await app.manager.getByGuildId(pending)).toBeNull();
    expect(await countRows(env.db, 'sandbox_guild_claims', 'guild_id = $1', [pending])).toBe(0);
  });

  it('maps the current guild for a member who manages it through a role', async () => {
    const { userId } = await userWithSandbox('role-manager');
    const { guildId } = addGuild(env.fake, { managers: [userId] });
    await eventually(async () => (await audits(guildId, 'guild_join_unmapped')).length > 0, 'the join to be handled');
    const text = await run(guildId, userId, 'register-guild', { sandbox: 'role-manager' });
    expect(text).toContain(`Server \`${guildId}\` is now registered to **role-manager**`);
    expect((await app.manager.getByGuildId(guildId))?.name).toBe('role-manager');

    const again = await run(guildId, userId, 'unregister-guild', { sandbox: 'role-manager' });
    expect(again).toContain('no longer registered');
    expect(await app.manager.getByGuildId(guildId)).toBeNull();
  });

  it('refuses register-guild for a guild where the invoker lacks Manage Server', async () => {
    const { userId, home } = await userWithSandbox('no-manage');
    const { guildId } = addGuild(env.fake, { members: [userId] });
    const text = await run(home, userId, 'register-guild', { sandbox: 'no-manage', guild_id: guildId });
    expect(text).toContain('SANDBOX_009');
    expect(text).toContain('Manage Server');
    expect(await app.manager.getByGuildId(guildId)).toBeNull();
  });

  it('refuses to map someone else’s sandbox', async () => {
    await userWithSandbox('not-yours');
    const { guildId, ownerId: intruder } = addGuild(env.fake);
    const text = await run(guildId, intruder, 'register-guild', { sandbox: 'not-yours' });
    expect(text).toContain('SANDBOX_009');
    expect(await app.manager.getByGuildId(guildId)).toBeNull();
  });

  it('rejects a hostile guild id', async () => {
    const { userId, home } = await userWithSandbox('hostile-guild');
    const text = await run(home, userId, 'register-guild', { sandbox: 'hostile-guild', guild_id: '1$(reboot)' });
    expect(text).toContain('SANDBOX_008');
    expect(await countRows(env.db, 'sandbox_guild_claims', 'guild_id = $1', ['1$(reboot)'])).toBe(0);
  });
});

describe('the bot joins a guild', () => {
  it('maps it when the guild owner owns exactly one running sandbox', async () => {
    const { userId } = await userWithSandbox('only-one');
    const { guildId } = addGuild(env.fake, { ownerId: userId });
    const mapped = await eventually(() => app.manager.getByGuildId(guildId), 'the owner-rule mapping');
    expect(mapped.name).toBe('only-one');
    const [row] = await audits(guildId, 'guild_registered');
    expect(row).toMatchObject({ actor: 'system:guild-join', details: { via: 'owner' } });
  });

  it('leaves it unmapped (and audited) when the owner has two running sandboxes', async () => {
    const { userId, home } = await userWithSandbox('two-a');
    await run(home, userId, 'create', { name: 'two-b', register_this_guild: false });
    const { guildId } = addGuild(env.fake, { ownerId: userId });
    const [row] = await eventually(async () => {
      const rows = await audits(guildId, 'guild_join_unmapped');
      return rows.length ? rows : null;
    }, 'the unmapped-join audit row');
    expect(row).toMatchObject({ actor: 'system:guild-join', sandbox_id: null, details: { reason: 'owner_has_several_running_sandboxes' } });
    expect(await app.manager.getByGuildId(guildId)).toBeNull();
  });
});

describe('the bot leaves a guild', () => {
  it('unmaps on a real removal, but not on an outage', async () => {
    const { userId: a } = await userWithSandbox('removed-from');
    const { userId: b } = await userWithSandbox('outage-in');
    const { guildId: removed } = addGuild(env.fake, { ownerId: a });
    const { guildId: outage } = addGuild(env.fake, { ownerId: b });
    await eventually(() => app.manager.getByGuildId(removed), 'mapping 1');
    await eventually(() => app.manager.getByGuildId(outage), 'mapping 2');

    env.fake.removeGuild(outage, { unavailable: true });
    env.fake.removeGuild(removed);
    await eventually(async () => (await app.manager.getByGuildId(removed)) === null, 'the removed guild to be unmapped');
    const [row] = await audits(removed, 'guild_unregistered');
    expect(row).toMatchObject({ actor: 'system:guild-leave', details: { reason: 'bot_removed' } });
    expect(await countRows(env.db, 'bot_guilds', 'guild_id = $1 AND left_at IS NOT NULL', [removed])).toBe(1);

    // The outage was dispatched first, so it has been handled by now.
    expect(app.client.guilds.cache.get(outage)?.available).toBe(false);
    expect((await app.manager.getByGuildId(outage))?.name).toBe('outage-in');
    expect(await countRows(env.db, 'bot_guilds', 'guild_id = $1 AND left_at IS NULL', [outage])).toBe(1);
    env.fake.restoreGuild(outage);
    await eventually(() => app.client.guilds.cache.get(outage)?.available, 'the guild to come back');
    expect((await app.manager.getByGuildId(outage))?.name).toBe('outage-in');
  });
});

describe('robustness', () => {
  it('logs a failing event handler and keeps answering commands', async () => {
    const { userId, home } = await userWithSandbox('still-alive');
    await env.db.pool.query('ALTER TABLE bot_guilds RENAME TO bot_guilds_away');
    let guildId: string;
    try {
      guildId = addGuild(env.fake, { ownerId: userId }).guildId;
      await eventually(() => env.logs.find((l) => l.msg === 'event handler failed' && l.event === 'guildCreate'), 'the failure to be logged');
    } finally {
      await env.db.pool.query('ALTER TABLE bot_guilds_away RENAME TO bot_guilds');
    }
    expect(await app.manager.getByGuildId(guildId)).toBeNull();
    expect(app.client.isReady()).toBe(true);
    expect(await run(home, userId, 'list')).toContain('still-alive');
  });
});
