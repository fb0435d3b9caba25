// The fake Discord honours shards, driven by real discord.js clients: IDENTIFY [id, count] gets READY and GUILD_CREATEs
// for its guilds only ((guild_id >> 22) % count == id), guild events and interactions go to the owning shard only,
// events without a guild to shard 0, and GET /gateway/bot's recommended count is what `shards: 'auto'` runs.
import { once } from 'node:events';
import { Client, Events, GatewayIntentBits, type Interaction } from 'discord.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeDiscord, messageCreatePayload, snowflakeOnShard } from '../fake-discord/index.ts';

const OWNER = '100000000000000001';
let fake: FakeDiscord;
let clients: Client[] = [];

beforeEach(async () => {
  fake = await FakeDiscord.start();
});

afterEach(async () => {
  await Promise.all(clients.map((c) => c.destroy()));
  clients = [];
  await fake.stop();
});

interface Seen {
  raw: { t: string; guildId: unknown; shardId: number }[];
  interactions: Interaction[];
}

async function startClient(shardOptions: { shards?: number[] | 'auto'; shardCount?: number }): Promise<{ client: Client; seen: Seen }> {
  const client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: fake.apiBase }, ...shardOptions });
  clients.push(client);
  const seen: Seen = { raw: [], interactions: [] };
  client.on(Events.Raw, (packet: { t: string; d: Record<string, unknown> }, shardId: number) => {
    if (packet.t && packet.t !== 'READY') seen.raw.push({ t: packet.t, guildId: packet.d?.guild_id ?? packet.d?.id, shardId });
  });
  client.on(Events.InteractionCreate, (i) => seen.interactions.push(i));
  const ready = once(client, Events.ClientReady, { signal: AbortSignal.timeout(10_000) });
  await client.login(fake.token);
  await ready;
  return { client, seen };
}

const guildOn = (shard: number, count: number, at?: number): string => fake.addGuild({ id: snowflakeOnShard(shard, count, at), ownerId: OWNER });

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('fake Discord shards', () => {
  it('READY and the initial GUILD_CREATEs list only the guilds of the identified shard', async () => {
    // Literal ids: 41771983423143937 >> 22 = 9959216934 (even: shard 0 of 2), 41771983427338241 → 9959216935 (odd: shard 1).
    const even = fake.addGuild({ id: '41771983423143937', ownerId: OWNER });
    const odd = fake.addGuild({ id: '41771983427338241', ownerId: OWNER });
    const more = [guildOn(0, 2), guildOn(1, 2), guildOn(1, 2)];
    fake.setGatewayBot({ sessionStartLimit: { max_concurrency: 2 } }); // both shards of one client identify at once
    const a = await startClient({ shards: [0], shardCount: 2 });
    const b = await startClient({ shards: [1], shardCount: 2 });
    expect([...a.client.guilds.cache.keys()].sort()).toEqual([even, more[0]].sort());
    expect([...b.client.guilds.cache.keys()].sort()).toEqual([odd, more[1], more[2]].sort());
    expect(fake.identifies.map((i) => i.shard)).toEqual([
      [0, 2],
      [1, 2],
    ]);
    // One process holding both shards sees every guild (two sessions).
    const both = await startClient({ shards: [0, 1], shardCount: 2 });
    expect(both.client.guilds.cache.size).toBe(5);
    expect(fake.identifies.slice(2).map((i) => i.shard).sort()).toEqual([
      [0, 2],
      [1, 2],
    ]);
  });

  it('a client without shard options is shard 0 of 1 and gets everything, as before', async () => {
    const ids = [guildOn(0, 2), guildOn(1, 2)];
    const { client } = await startClient({});
    expect([...client.guilds.cache.keys()].sort()).toEqual(ids.sort());
    expect(fake.identifies.map((i) => i.shard)).toEqual([[0, 1]]);
  });

  it('guild events, joins, leaves and interactions go to the owning shard only; events without a guild to shard 0', async () => {
    const g0 = guildOn(0, 2);
    const g1 = guildOn(1, 2);
    const a = await startClient({ shards: [0], shardCount: 2 });
    const b = await startClient({ shards: [1], shardCount: 2 });
    a.seen.raw.length = 0;
    b.seen.raw.length = 0;

    const channel1 = fake.state.guild(g1).channelIds[0]!;
    expect(fake.dispatchEvent('MESSAGE_CREATE', messageCreatePayload({ id: '1', channelId: channel1, guildId: g1, authorId: OWNER, content: 'on shard 1' }))).toBe(1);
    expect(fake.dispatchEvent('CHANNEL_PINS_UPDATE', { channel_id: '5', last_pin_timestamp: null })).toBe(1);
    const joined = guildOn(1, 2);
    const created = once(b.client, Events.GuildCreate, { signal: AbortSignal.timeout(5000) });
    await created;
    fake.removeGuild(g0);

    fake.sendCommand({ guildId: g1, userId: OWNER, name: 'sandbox', subcommand: 'list' });
    fake.sendCommand({ guildId: joined, userId: OWNER, name: 'sandbox', subcommand: 'list' });
    await until(() => b.seen.interactions.length === 2, 'two interactions on shard 1');
    await until(() => a.seen.raw.some((r) => r.t === 'GUILD_DELETE'), 'the leave on shard 0');

    expect(a.seen.interactions).toEqual([]);
    expect(b.seen.interactions.map((i) => i.guildId)).toEqual([g1, joined]);
    expect(a.seen.raw.map((r) => [r.t, r.guildId, r.shardId])).toEqual([
      ['CHANNEL_PINS_UPDATE', undefined, 0],
      ['GUILD_DELETE', g0, 0],
    ]);
    expect(b.seen.raw.map((r) => [r.t, r.guildId, r.shardId])).toEqual([
      ['MESSAGE_CREATE', g1, 1],
      ['GUILD_CREATE', joined, 1],
      ['INTERACTION_CREATE', g1, 1],
      ['INTERACTION_CREATE', joined, 1],
    ]);
  });

  it('an interaction goes to exactly one client: the latest session of the owning shard', async () => {
    const g1 = guildOn(1, 2);
    const first = await startClient({ shards: [1], shardCount: 2 });
    const second = await startClient({ shards: [1], shardCount: 2 });
    const zero = await startClient({ shards: [0], shardCount: 2 }); // the latest session overall, but not g1's shard
    fake.sendCommand({ guildId: g1, userId: OWNER, name: 'sandbox', subcommand: 'list' });
    await until(() => second.seen.interactions.length === 1, 'the interaction');
    await new Promise((r) => setTimeout(r, 200));
    expect(first.seen.interactions).toEqual([]);
    expect(zero.seen.interactions).toEqual([]);
    expect(second.seen.interactions).toHaveLength(1);
  });

  it("GET /gateway/bot answers the configured shard count and session start limit; shards: 'auto' runs that many", async () => {
    fake.setGatewayBot({ shards: 3, sessionStartLimit: { max_concurrency: 2, remaining: 7 } });
    const res = await fetch(`${fake.apiBase}/v10/gateway/bot`, { headers: { authorization: `Bot ${fake.token}` } });
    expect(await res.json()).toEqual({
      url: fake.gatewayUrl,
      shards: 3,
      session_start_limit: { total: 1000, remaining: 7, reset_after: 0, max_concurrency: 2 },
    });
    const ids = [guildOn(0, 3), guildOn(1, 3), guildOn(2, 3)];
    const { client } = await startClient({ shards: 'auto' });
    expect(client.options.shardCount).toBe(3);
    expect([...client.guilds.cache.keys()].sort()).toEqual(ids.sort());
    expect(fake.identifies.map((i) => i.shard).sort()).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
    ]);
  });
});
