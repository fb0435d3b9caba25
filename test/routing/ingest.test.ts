import { Client, GatewayIntentBits } from 'discord.js';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { attachIngest } from '../../src/routing/ingest.ts';
import { EventPublisher } from '../../src/routing/publisher.ts';
import { RouteTable } from '../../src/routing/route-table.ts';
import { EventRouter } from '../../src/routing/router.ts';
import { SandboxStreams, ensureProductionStream } from '../../src/routing/streams.ts';
import { FakeDiscord } from '../fake-discord/index.ts';
import { addGuild } from '../e2e/support/harness.ts';
import { createTestDatabase, snowflake, type TestDatabase } from '../support/db.ts';
import { deleteStreams, insertSandbox, jetstreamManager, mapGuild, natsConnect, storedEvents, testTag, waitFor, type StoredEvent } from './support/routing.ts';
import { messageCreatePayload } from '../fake-discord/payloads.ts';

const tag = testTag();
const prefix = `t${tag}.events`;
const production = `EVENTS_${tag}`;
let db: TestDatabase;
let nc: NatsConnection;
let jsm: JetStreamManager;
let routes: RouteTable;
let publisher: EventPublisher;
let fake: FakeDiscord;
let client: Client;
let sandbox: string;
let sandboxStream: string;
let mapped: { guildId: string; ownerId: string };
let unmapped: { guildId: string; ownerId: string };
const made: string[] = [production];
const raw: Array<{ t: string; s: number }> = [];

const stored = (stream: string): Promise<StoredEvent[]> => storedEvents(jsm, stream);

function channelOf(guildId: string): string {
  return fake.state.guild(guildId).channelIds[0]!;
}

function messageCreate(guildId: string, content: string) {
  return messageCreatePayload({ id: snowflake(), channelId: channelOf(guildId), guildId, authorId: snowflake(), content });
}

beforeAll(async () => {
  db = await createTestDatabase();
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
  await ensureProductionStream(jsm, production, prefix, silentLogger());
  fake = await FakeDiscord.start();
  mapped = addGuild(fake);
  unmapped = addGuild(fake);
  sandbox = await insertSandbox(db);
  sandboxStream = `SANDBOX_${sandbox.replaceAll('-', '')}`;
  made.push(sandboxStream);
  await new SandboxStreams({ jsm, logger: silentLogger(), maxAgeHours: 1, maxBytes: 1024 * 1024 }).ensure(sandbox);
  await mapGuild(db, mapped.guildId, sandbox);
  // As the app must: the route table is loaded and its feed running before login.
  routes = new RouteTable({ pool: db.pool, connectionString: db.url, logger: silentLogger() });
  await routes.start();
  publisher = new EventPublisher({ nc, logger: silentLogger() });
  const router = new EventRouter({ routes, publisher, prefix });
  client = new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.GuildMembers],
    rest: { api: fake.apiBase },
  });
  client.on('raw', (p: { t: string; s: number }) => {
    if (p.t) raw.push({ t: p.t, s: p.s });
  });
  attachIngest(client, router, silentLogger());
  const ready = new Promise((r) => client.once('clientReady', r));
  await client.login(fake.token);
  await ready;
});

afterAll(async () => {
  await client?.destroy();
  await fake?.stop();
  await publisher?.close();
  await routes?.stop();
  await deleteStreams(jsm, made);
  await nc?.close();
  await db?.drop();
});

describe('built-in ingest through the real discord.js client', () => {
  it('the mapped guild’s GUILD_CREATE at login went to its sandbox, the other guild’s and READY to production', async () => {
    await publisher.flush();
    const s = await stored(sandboxStream);
    expect(s.map((m) => [m.subject, m.guildId])).toEqual([[`sandbox.${sandbox}.events.GUILD_CREATE`, mapped.guildId]]);
    const p = await stored(production);
    expect(p.map((m) => m.t).sort()).toEqual(['GUILD_CREATE', 'READY']);
    expect(p.find((m) => m.t === 'GUILD_CREATE')!.guildId).toBe(unmapped.guildId);
    expect(s[0]!.msgId).toMatch(/^0:[^:]+:\d+$/);
  });

  it('MESSAGE_CREATE and GUILD_MEMBER_ADD arrive only on the sandbox subject for a mapped guild, only on production otherwise', async () => {
    const before = { s: (await stored(sandboxStream)).length, p: (await stored(production)).length };
    for (const g of [mapped.guildId, unmapped.guildId]) {
      fake.dispatchEvent('MESSAGE_CREATE', messageCreate(g, `hi ${g}`));
      fake.dispatchEvent(
        'GUILD_MEMBER_ADD',
        { guild_id: g, user: { id: snowflake(), username: 'joiner', discriminator: '0', global_name: null, avatar: null }, roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0 },
        { intent: GatewayIntentBits.GuildMembers },
      );
    }
    await waitFor(async () => (await stored(sandboxStream)).length === before.s + 2 && (await stored(production)).length === before.p + 2, 'four events stored');
    const s = (await stored(sandboxStream)).slice(before.s);
    const p = (await stored(production)).slice(before.p);
    expect(s.map((m) => [m.subject, m.guildId])).toEqual([
      [`sandbox.${sandbox}.events.MESSAGE_CREATE`, mapped.guildId],
      [`sandbox.${sandbox}.events.GUILD_MEMBER_ADD`, mapped.guildId],
    ]);
    expect(p.map((m) => [m.subject, m.guildId])).toEqual([
      [`${prefix}.MESSAGE_CREATE`, unmapped.guildId],
      [`${prefix}.GUILD_MEMBER_ADD`, unmapped.guildId],
    ]);
    expect(s[0]!.d.content).toBe(`hi ${mapped.guildId}`);
  });

  it('INTERACTION_CREATE for another command is routed; /sandbox is not', async () => {
    const before = (await stored(sandboxStream)).length;
    fake.sendCommand({ guildId: mapped.guildId, userId: mapped.ownerId, name: 'sandbox', subcommand: 'list' });
    const other = fake.sendCommand({ guildId: mapped.guildId, userId: mapped.ownerId, name: 'ping' });
    await waitFor(async () => (await stored(sandboxStream)).length > before, 'the routed interaction');
    await new Promise((r) => setTimeout(r, 300));
    const s = (await stored(sandboxStream)).slice(before);
    expect(s.map((m) => [m.subject, (m.d.data as { name: string }).name])).toEqual([[`sandbox.${sandbox}.events.INTERACTION_CREATE`, 'ping']]);
    expect(s[0]!.d.id).toBe(other.id);
    expect(raw.filter((r) => r.t === 'INTERACTION_CREATE')).toHaveLength(2); // both reached the client
  });

  it('a RESUME that replays the last events stores each of them once', async () => {
    const before = (await stored(sandboxStream)).length;
    for (let i = 0; i < 5; i++) fake.dispatchEvent('MESSAGE_CREATE', messageCreate(mapped.guildId, `before resume ${i}`));
    await waitFor(async () => (await stored(sandboxStream)).length === before + 5, 'five events stored');
    const seen = raw.length;
    const resumed = new Promise((r) => client.once('shardResume', r));
    const duplicatesBefore = publisher.counts.duplicate;
    fake.forceResume(5);
    await resumed;
    await waitFor(() => publisher.counts.duplicate >= duplicatesBefore + 5, 'the replayed events to be deduplicated', 5000);
    // The client really received them again, with the same sequence numbers.
    const replayed = raw.slice(seen).filter((r) => r.t === 'MESSAGE_CREATE');
    expect(replayed).toHaveLength(5);
    expect(fake.resumes).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    const s = (await stored(sandboxStream)).slice(before);
    expect(s.map((m) => m.d.content)).toEqual([0, 1, 2, 3, 4].map((i) => `before resume ${i}`));
    expect(new Set(s.map((m) => m.msgId)).size).toBe(5);
  });
});
