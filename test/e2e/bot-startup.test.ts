import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { stateKey } from '../../src/bot/register-commands.ts';
import type { Actor } from '../../src/sandbox/types.ts';
import { countRows, makeManager, snowflake } from '../support/db.ts';
import { addGuild, eventually as poll, setupEnv, type Env } from './support/harness.ts';

let env: Env;
let app: App | null = null;

beforeAll(async () => {
  env = await setupEnv();
});

afterAll(async () => {
  await env?.close();
});

const user = (id: string): Actor => ({ kind: 'discord', id });

/** Stops the running bot (if any) and starts a new one: a restart with a fresh discord.js client. */
async function restart(overrides: Parameters<Env['start']>[0] = {}, vars: Record<string, string> = {}): Promise<App> {
  await app?.stop();
  app = await env.start(overrides, vars);
  return app;
}

async function stopBot(): Promise<void> {
  await app?.stop();
  app = null;
}

const auditFor = (guildId: string, eventType: string) =>
  countRows(env.db, 'sandbox_audit_log', "details->>'guildId' = $1 AND event_type = $2", [guildId, eventType]);

describe('startup', () => {
  it('logs in and registers /sandbox once, storing the definition hash', async () => {
    // The application is shared with the team's bot, which already has a command of its own.
    env.fake.state.commands.set('global', [
      { id: '900000000000000001', application_id: env.fake.applicationId, name: 'ping', description: 'team command', type: 1, version: '1', default_member_permissions: null } as never,
    ]);
    await restart();
    expect(app!.client.isReady()).toBe(true);
    expect(env.fake.commandWrites).toHaveLength(1);
    expect(env.fake.commandWrites[0]).toMatchObject({ method: 'POST', scope: 'global' });
    expect(env.fake.commands('global').map((c) => c.name).sort()).toEqual(['ping', 'sandbox']);
    const command = env.fake.commands('global').find((c) => c.name === 'sandbox');
    expect(command).toMatchObject({ name: 'sandbox', default_member_permissions: '32', contexts: [0] });
    const subcommands = (command!.options ?? []).map((o) => o.name);
    expect(subcommands).toEqual(['create', 'register-guild', 'unregister-guild', 'list', 'status', 'extend', 'destroy', 'reset', 'clone', 'connect']);
    for (const sub of command!.options ?? []) {
      for (const option of (sub as { options?: { name: string; autocomplete?: boolean }[] }).options ?? []) {
        if (option.name === 'sandbox') expect(option.autocomplete).toBe(true);
      }
    }
    const { rows } = await env.db.pool.query('SELECT value FROM bot_state WHERE key = $1', [stateKey(env.fake.applicationId, 'global')]);
    expect(rows[0]?.value.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not register again on a restart with unchanged definitions', async () => {
    const identifies = env.fake.identifies.length;
    await restart();
    expect(env.fake.identifies.length).toBe(identifies + 1);
    expect(env.fake.commandWrites).toHaveLength(1);
  });

  it('registers again when the stored hash differs from the definitions', async () => {
    await env.db.pool.query(`UPDATE bot_state SET value = '{"hash":"outdated"}' WHERE key = $1`, [stateKey(env.fake.applicationId, 'global')]);
    await restart();
    expect(env.fake.commandWrites).toHaveLength(2);
    await restart();
    expect(env.fake.commandWrites).toHaveLength(2);
  });

  it('registers /sandbox next to the team’s own commands, never deleting them (shared application)', async () => {
    const { guildId } = addGuild(env.fake);
    // The team's bot registered its own command in this scope first.
    await fetch(`${env.fake.apiBase}/v10/applications/${env.fake.applicationId}/guilds/${guildId}/commands`, {
      method: 'POST',
      headers: { Authorization: `Bot ${env.fake.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'ping', description: 'the team’s command', type: 1 }),
    });
    expect(env.fake.commands(guildId).map((c) => c.name)).toEqual(['ping']);
    await restart({}, { DEV_GUILD_ID: guildId });
    expect(env.fake.commands(guildId).map((c) => c.name).sort()).toEqual(['ping', 'sandbox']);
    expect(env.fake.commandWrites.filter((w) => w.method === 'PUT')).toHaveLength(0);
  });

  it('registers to DEV_GUILD_ID when it is set', async () => {
    const { guildId } = addGuild(env.fake);
    await restart({}, { DEV_GUILD_ID: guildId });
    expect(env.fake.commandWrites.at(-1)!.scope).toBe(guildId);
    expect(env.fake.commands(guildId).map((c) => c.name)).toEqual(['sandbox']);
  });
});

describe('startup reconciliation', () => {
  it('maps a guild joined while the bot was offline (owner rule) and records an unmapped one', async () => {
    await stopBot();
    const owner = snowflake();
    const offline = makeManager(env.db);
    const { sandbox } = await offline.create({ name: 'offline-owner', owner }, user(owner));
    const { guildId } = addGuild(env.fake, { ownerId: owner });
    const { guildId: lonely } = addGuild(env.fake);
    expect(env.fake.connected).toBe(false);

    await restart();
    expect((await app!.manager.getByGuildId(guildId))?.id).toBe(sandbox.id);
    expect(await auditFor(guildId, 'guild_registered')).toBe(1);
    expect(await app!.manager.getByGuildId(lonely)).toBeNull();
    expect(await auditFor(lonely, 'guild_join_unmapped')).toBe(1);
    expect(await countRows(env.db, 'bot_guilds', 'guild_id = $1 AND left_at IS NULL', [lonely])).toBe(1);
  });

  it('applies a pending claim for a guild joined while offline', async () => {
    await stopBot();
    const owner = snowflake();
    const offline = makeManager(env.db);
    await offline.create({ name: 'claimed-offline', owner }, user(owner));
    // Also a second sandbox, so that only the claim (not the owner rule) can map it.
    await offline.create({ name: 'claimed-offline-2', owner }, user(owner));
    const guildId = snowflake();
    expect((await offline.registerGuild('claimed-offline', guildId, user(owner))).outcome).toBe('claimed');
    env.fake.addGuild({ id: guildId, ownerId: owner });

    await restart();
    expect((await app!.manager.getByGuildId(guildId))?.name).toBe('claimed-offline');
    expect(await countRows(env.db, 'sandbox_guild_claims', 'guild_id = $1', [guildId])).toBe(0);
  });

  it('does not re-map a guild someone deliberately unregistered', async () => {
    const owner = snowflake();
    await app!.manager.create({ name: 'unregistered-one', owner, guildIds: [] }, user(owner));
    const { guildId } = addGuild(env.fake, { ownerId: owner });
    await poll(() => app!.manager.getByGuildId(guildId), 'the owner-rule mapping');
    await app!.manager.unregisterGuild('unregistered-one', guildId, user(owner));

    await restart();
    expect(await app!.manager.getByGuildId(guildId)).toBeNull();
    expect(await auditFor(guildId, 'guild_registered')).toBe(1);
  });

  it('unmaps a guild the bot was removed from while offline, but never one that is merely unavailable', async () => {
    const owner = snowflake();
    const { sandbox } = await app!.manager.create({ name: 'left-while-off', owner }, user(owner));
    const otherOwner = snowflake();
    await app!.manager.create({ name: 'outage-while-off', owner: otherOwner }, user(otherOwner));
    const { guildId: removed } = addGuild(env.fake, { ownerId: owner });
    const { guildId: outage } = addGuild(env.fake, { ownerId: otherOwner });
    await poll(() => app!.manager.getByGuildId(removed), 'the mapping of the guild to remove');
    await poll(() => app!.manager.getByGuildId(outage), 'the mapping of the guild with an outage');

    await stopBot();
    env.fake.removeGuild(removed);
    env.fake.removeGuild(outage, { unavailable: true });
    await restart({ waitGuildTimeoutMs: 100 });

    expect(await app!.manager.getByGuildId(removed)).toBeNull();
    expect(
      await countRows(env.db, 'sandbox_audit_log', "sandbox_id = $1 AND event_type = 'guild_unregistered' AND details->>'reason' = 'bot_not_in_guild'", [sandbox.id]),
    ).toBe(1);
    expect(await countRows(env.db, 'bot_guilds', 'guild_id = $1 AND left_at IS NOT NULL', [removed])).toBe(1);
    expect(app!.client.guilds.cache.get(outage)?.available).toBe(false);
    expect((await app!.manager.getByGuildId(outage))?.name).toBe('outage-while-off');

    env.fake.restoreGuild(outage);
    await poll(() => app!.client.guilds.cache.get(outage)?.available, 'the guild to come back');
    expect((await app!.manager.getByGuildId(outage))?.name).toBe('outage-while-off');
  });
});
