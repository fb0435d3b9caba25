// Two bots (in this process, real discord.js clients) over one database, SHARD_COUNT=2 with SHARD_IDS=1 and 0, against
// the fake Discord with guilds on both shards: each reconciles only its own shards' guilds (never unmapping or marking
// as left a guild of the other shard), only the one holding shard 0 registers /sandbox, and joins and commands are
// handled by the process whose shard receives them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import { snowflakeOnShard } from '../fake-discord/index.ts';
import { botJoined, countRows, makeManager, snowflake } from '../support/db.ts';
import { addGuild, eventually, finalText, sandboxCommand, setupEnv, type Env } from './support/harness.ts';

const op = { kind: 'operator', name: 'tester' } as const;
let env: Env;
let offline: SandboxManager;
let p1: App;
let p0: App;

const on = (shard: number): string => snowflakeOnShard(shard, 2);
const audits = (guildId: string, eventType: string): Promise<number> =>
  countRows(env.db, 'sandbox_audit_log', "details->>'guildId' = $1 AND event_type = $2", [guildId, eventType]);
const present = (guildId: string): Promise<number> => countRows(env.db, 'bot_guilds', 'guild_id = $1 AND left_at IS NULL', [guildId]);
const mappedTo = async (guildId: string): Promise<string | null> => (await offline.getByGuildId(guildId))?.name ?? null;

/** Guilds on both shards, set up before any bot runs. */
const g = {} as Record<'owned0' | 'owned1' | 'lonely0' | 'lonely1' | 'stale0' | 'stale1', string>;

beforeAll(async () => {
  env = await setupEnv();
  offline = makeManager(env.db);
  for (const shard of [0, 1]) {
    const owner = snowflake();
    await offline.create({ name: `owned-${shard}`, owner }, op);
    g[`owned${shard}` as 'owned0'] = addGuild(env.fake, { id: on(shard), ownerId: owner }).guildId;
    g[`lonely${shard}` as 'lonely0'] = addGuild(env.fake, { id: on(shard) }).guildId;
    // Mapped while the bot was in it; the bot has since been removed (it is not in the fake).
    const stale = on(shard);
    await botJoined(env.db, stale);
    await offline.create({ name: `stale-${shard}`, owner: snowflake(), guildIds: [stale] }, op);
    g[`stale${shard}` as 'stale0'] = stale;
  }
  for (const id of [g.owned0, g.lonely0, g.stale0]) expect(Number((BigInt(id) >> 22n) % 2n)).toBe(0);
  for (const id of [g.owned1, g.lonely1, g.stale1]) expect(Number((BigInt(id) >> 22n) % 2n)).toBe(1);
  expect(await mappedTo(g.stale0)).toBe('stale-0');
  expect(await mappedTo(g.stale1)).toBe('stale-1');
});

afterAll(async () => {
  await env?.close();
});

describe('two bot processes, SHARD_COUNT=2', () => {
  it('the process holding shard 1 reconciles only shard 1’s guilds and registers no commands', async () => {
    p1 = await env.start({}, { SHARD_COUNT: '2', SHARD_IDS: '1' });
    expect([...p1.client.guilds.cache.keys()].sort()).toEqual([g.owned1, g.lonely1].sort());
    expect(env.fake.commandWrites).toEqual([]);
    expect(env.logs.find((l) => l.msg === 'commands are registered by the process holding shard 0')).toBeDefined();

    expect(await mappedTo(g.owned1)).toBe('owned-1');
    expect(await audits(g.lonely1, 'guild_join_unmapped')).toBe(1);
    expect(await mappedTo(g.stale1)).toBeNull();
    expect(await present(g.stale1)).toBe(0);
    // Shard 0's guilds are untouched: not mapped yet, the stale mapping kept, still recorded present.
    expect(await mappedTo(g.owned0)).toBeNull();
    expect(await audits(g.lonely0, 'guild_join_unmapped')).toBe(0);
    expect(await mappedTo(g.stale0)).toBe('stale-0');
    expect(await present(g.stale0)).toBe(1);
  });

  it('the process holding shard 0 reconciles shard 0’s guilds, keeps shard 1’s, and registers /sandbox once', async () => {
    p0 = await env.start({}, { SHARD_COUNT: '2', SHARD_IDS: '0' });
    expect([...p0.client.guilds.cache.keys()].sort()).toEqual([g.owned0, g.lonely0].sort());
    expect(env.fake.commandWrites).toHaveLength(1);
    expect(env.fake.commands('global').map((c) => c.name)).toEqual(['sandbox']);

    expect(await mappedTo(g.owned0)).toBe('owned-0');
    expect(await mappedTo(g.stale0)).toBeNull();
    // Shard 1's guilds, which this process never sees, stay as shard 1's process left them.
    expect(await mappedTo(g.owned1)).toBe('owned-1');
    for (const id of [g.owned0, g.owned1, g.lonely0, g.lonely1]) expect(await present(id)).toBe(1);
    // Each guild reconciled exactly once over both processes.
    for (const shard of [0, 1]) {
      expect(await audits(g[`owned${shard}` as 'owned0'], 'guild_registered')).toBe(1);
      expect(await audits(g[`lonely${shard}` as 'lonely0'], 'guild_join_unmapped')).toBe(1);
      expect(await audits(g[`stale${shard}` as 'stale0'], 'guild_unregistered')).toBe(1);
    }
    expect(env.logs.lines.filter((l) => l.msg === 'guilds reconciled').map((l) => l.guilds)).toEqual([2, 2]);
  });

  it('a guild joined later gets the join rules in the process of its shard; commands are answered by their shard', async () => {
    const owner = snowflake();
    await offline.create({ name: 'joined-1', owner }, op);
    const { guildId } = addGuild(env.fake, { id: on(1), ownerId: owner });
    await eventually(() => mappedTo(guildId), 'the owner-rule mapping');
    expect(await mappedTo(guildId)).toBe('joined-1');
    expect(p1.client.guilds.cache.has(guildId)).toBe(true);
    expect(p0.client.guilds.cache.has(guildId)).toBe(false);
    expect(await audits(guildId, 'guild_registered')).toBe(1);

    for (const [id, name] of [
      [g.owned0, 'owned-0'],
      [guildId, 'joined-1'],
    ] as const) {
      const ownerId = env.fake.state.guild(id).ownerId;
      const handle = env.fake.sendCommand(sandboxCommand({ guildId: id, userId: ownerId, subcommand: 'list' }));
      expect(await finalText(handle)).toContain(name);
      expect(handle.responses.filter((r) => r.kind === 'callback')).toHaveLength(1);
    }
  });

  it('register-guild for a guild of the other shard: presence from bot_guilds, Manage Server by REST', async () => {
    const [manager, plain] = [snowflake(), snowflake()];
    const { guildId: target } = addGuild(env.fake, { id: on(1), managers: [manager], members: [plain] });
    await eventually(async () => (await present(target)) === 1, 'shard 1 recording the join');
    for (const userId of [manager, plain]) env.fake.addMember(g.owned0, { userId });
    await offline.create({ name: 'cross-manager', owner: manager }, op);
    await offline.create({ name: 'cross-plain', owner: plain }, op);
    expect(p0.client.guilds.cache.has(target)).toBe(false);

    // Sent in a shard-0 guild, so the process holding shard 0 handles it.
    const run = (userId: string, sandbox: string) =>
      finalText(env.fake.sendCommand(sandboxCommand({ guildId: g.owned0, userId, subcommand: 'register-guild', options: { sandbox, guild_id: target } })));
    expect(await run(plain, 'cross-plain')).toContain('Manage Server');
    expect(await mappedTo(target)).toBeNull();
    expect(await run(manager, 'cross-manager')).toContain('now registered to **cross-manager**');
    expect(await mappedTo(target)).toBe('cross-manager');
    expect(await countRows(env.db, 'sandbox_guild_claims', 'guild_id = $1', [target])).toBe(0);
  });
});
