/**
 * Event routing through the whole app (`startApp`): the real discord.js client on the fake Discord, the real
 * nats-server (through a TCP proxy that can cut it), this file's own subject prefix and streams, deleted after.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { GatewayIntentBits } from 'discord.js';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { TcpProxy } from '../fault/support/tcp-proxy.ts';
import { deleteStreams, jetstreamManager, natsConnect, storedEvents, testTag, waitFor, type StoredEvent } from '../routing/support/routing.ts';
import { snowflake } from '../support/db.ts';
import { addGuild, finalText, sandboxCommand, setupEnv, type Env } from './support/harness.ts';
import { messageCreatePayload } from '../fake-discord/payloads.ts';

const run = promisify(execFile);
const tag = testTag();
const prefix = `t${tag}.events`;
const production = `EVENTS_${tag}`;
const made: string[] = [production];
let env: Env;
let app: App;
let proxy: TcpProxy;
let nc: NatsConnection;
let jsm: JetStreamManager;
let userId: string;
let home: string;
let other: string;
let sandboxId: string;
let sandboxStream: string;

type Stored = StoredEvent;

const stored = (stream: string): Promise<Stored[]> => storedEvents(jsm, stream);

const ofGuild = (rows: Stored[], guildId: string) => rows.filter((r) => r.guildId === guildId);

function message(guildId: string, content: string): Record<string, unknown> {
  return messageCreatePayload({ id: snowflake(), channelId: env.fake.state.guild(guildId).channelIds[0]!, guildId, authorId: snowflake(), content });
}

function memberAdd(guildId: string): void {
  env.fake.dispatchEvent(
    'GUILD_MEMBER_ADD',
    { guild_id: guildId, user: { id: snowflake(), username: 'joiner', discriminator: '0', global_name: null, avatar: null }, roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0 },
    { intent: GatewayIntentBits.GuildMembers },
  );
}

async function command(guildId: string, subcommand: string, options: Record<string, string | number | boolean> = {}): Promise<string> {
  return finalText(env.fake.sendCommand(sandboxCommand({ guildId, userId, subcommand, options })));
}

async function readyz(): Promise<{ status: number; body: { status: string; checks: Record<string, string> } }> {
  const res = await fetch(`http://127.0.0.1:${app.http.port}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, string> } };
}

beforeAll(async () => {
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
  proxy = await TcpProxy.start({ host: '127.0.0.1', port: 4222 });
  env = await setupEnv();
  ({ guildId: home, ownerId: userId } = addGuild(env.fake));
  ({ guildId: other } = addGuild(env.fake));
  app = await env.start(
    {},
    {
      NATS_URL: `nats://127.0.0.1:${proxy.port}`,
      EVENTS_SUBJECT_PREFIX: prefix,
      EVENTS_STREAM: production,
      SANDBOX_EVENTS_MAX_BYTES: String(1024 * 1024),
      GATEWAY_INTENTS: 'GuildMessages,GuildMembers',
      EVENTS_BUFFER: '20',
    },
  );
  await waitFor(() => app.routing?.health() === 'ok', 'NATS to connect', 10_000, 25);
  expect(await command(home, 'create', { name: `routed-${tag}` })).toContain('Created sandbox');
  sandboxId = (await app.manager.getByGuildId(home))!.id;
  sandboxStream = `SANDBOX_${sandboxId.replaceAll('-', '')}`;
  made.push(sandboxStream);
}, 60_000);

afterAll(async () => {
  await env?.close();
  await proxy?.close();
  await deleteStreams(jsm, made);
  await nc?.close();
});

describe('event routing through the app', () => {
  it('reports events ok on /readyz and shows the stream in /sandbox status', async () => {
    expect(await readyz()).toMatchObject({ status: 200, body: { status: 'ready', checks: { events: 'ok' } } });
    expect(await command(home, 'status', { sandbox: `routed-${tag}` })).toMatch(/Events: ok: \d+ messages, [\d.]+ (B|KiB)/);
    expect(await command(home, 'connect', { sandbox: `routed-${tag}` })).toContain(`SANDBOX_NATS_STREAM=${sandboxStream}`);
  });

  it('a mapped guild’s MESSAGE_CREATE and GUILD_MEMBER_ADD arrive only on its sandbox subject, an unmapped guild’s only on production', async () => {
    const before = { s: (await stored(sandboxStream)).length, p: (await stored(production)).length };
    // Routed only: discord.js builds no Message or GuildMember for them (the bot never reads them).
    let built = 0;
    const count = (): void => void built++;
    app.client.on('messageCreate', count);
    app.client.on('guildMemberAdd', count);
    for (const g of [home, other]) {
      env.fake.dispatchEvent('MESSAGE_CREATE', message(g, `hello ${g}`));
      memberAdd(g);
    }
    await waitFor(async () => (await stored(sandboxStream)).length >= before.s + 2 && (await stored(production)).length >= before.p + 2, 'four events', 5000, 25);
    await new Promise((r) => setTimeout(r, 200));
    const s = (await stored(sandboxStream)).slice(before.s);
    const p = (await stored(production)).slice(before.p);
    expect(s.map((m) => [m.subject, m.guildId])).toEqual([
      [`sandbox.${sandboxId}.events.MESSAGE_CREATE`, home],
      [`sandbox.${sandboxId}.events.GUILD_MEMBER_ADD`, home],
    ]);
    expect(p.map((m) => [m.subject, m.guildId])).toEqual([
      [`${prefix}.MESSAGE_CREATE`, other],
      [`${prefix}.GUILD_MEMBER_ADD`, other],
    ]);
    app.client.off('messageCreate', count);
    app.client.off('guildMemberAdd', count);
    expect(built).toBe(0);
    // Only the GUILD_CREATE at login, before the guild was mapped.
    expect(ofGuild(await stored(production), home).map((m) => m.t)).toEqual(['GUILD_CREATE']);
  });

  it('another command’s INTERACTION_CREATE is routed and never answered; /sandbox is answered and not routed', async () => {
    const before = (await stored(sandboxStream)).length;
    const ping = env.fake.sendCommand({ guildId: home, userId, name: 'ping' });
    expect(await command(home, 'list')).toContain(`routed-${tag}`);
    await waitFor(async () => (await stored(sandboxStream)).length > before, 'the routed interaction', 5000, 25);
    await new Promise((r) => setTimeout(r, 500));
    const s = (await stored(sandboxStream)).slice(before);
    expect(s.map((m) => [m.subject, (m.d.data as { name: string }).name, m.d.id])).toEqual([[`sandbox.${sandboxId}.events.INTERACTION_CREATE`, 'ping', ping.id]]);
    expect(ping.responses).toEqual([]);
  });

  it('after /sandbox register-guild answers, none of that guild’s events land on production', async () => {
    // Someone else's guild (so the owner rule leaves it unmapped) that the user manages.
    const { guildId } = addGuild(env.fake, { managers: [userId] });
    await waitFor(async () => (await stored(production)).some((m) => m.t === 'GUILD_CREATE' && m.guildId === guildId), 'the new guild’s GUILD_CREATE on production');
    expect(await command(guildId, 'register-guild', { sandbox: `routed-${tag}`, guild_id: guildId })).toMatch(/registered|Registered/);
    env.fake.dispatchEvent('MESSAGE_CREATE', message(guildId, 'right after the reply'));
    await waitFor(async () => ofGuild(await stored(sandboxStream), guildId).length === 1, 'the event on the sandbox stream', 5000, 25);
    expect(ofGuild(await stored(production), guildId).map((m) => m.t)).toEqual(['GUILD_CREATE']);
  });

  it('a claimed guild’s GUILD_CREATE (and what follows it) is routed after the join rules mapped it', async () => {
    const pending = snowflake();
    expect(await command(home, 'register-guild', { sandbox: `routed-${tag}`, guild_id: pending })).toContain(`guild_id=${pending}`);
    addGuild(env.fake, { id: pending, ownerId: userId });
    env.fake.dispatchEvent('MESSAGE_CREATE', message(pending, 'right after the join'));
    await waitFor(async () => ofGuild(await stored(sandboxStream), pending).length === 2, 'both events on the sandbox stream', 5000, 25);
    expect(ofGuild(await stored(sandboxStream), pending).map((m) => m.t)).toEqual(['GUILD_CREATE', 'MESSAGE_CREATE']);
    expect(ofGuild(await stored(production), pending)).toEqual([]);
  });

  it('a register-guild by the CLI in another process reaches the bot’s route table within the invalidation bound', async () => {
    const { guildId } = addGuild(env.fake, { managers: [userId] });
    await waitFor(async () => (await stored(production)).some((m) => m.t === 'GUILD_CREATE' && m.guildId === guildId), 'the new guild’s GUILD_CREATE');
    await run(process.execPath, [resolve('bin/sandbox.js'), 'register-guild', `routed-${tag}`, guildId], {
      env: { ...process.env, DATABASE_URL: env.db.url, NATS_URL: '', REDIS_URL: '', SANDBOX_ISOLATION: 'off', LOG_LEVEL: 'silent' },
    });
    const exited = Date.now();
    await waitFor(() => app.routing!.routes.lookup(guildId) === sandboxId, 'the CLI’s change to be applied', 2000, 2);
    const lag = Date.now() - exited;
    console.log(`[event-routing] CLI register-guild → applied in the bot: ${lag} ms after the CLI exited`);
    expect(lag).toBeLessThan(1000);
    env.fake.dispatchEvent('MESSAGE_CREATE', message(guildId, 'after the CLI'));
    await waitFor(async () => ofGuild(await stored(sandboxStream), guildId).length === 1, 'the event on the sandbox stream', 5000, 25);
  }, 30_000);

  it('a RESUME that replays the last events stores each once', async () => {
    const before = ofGuild(await stored(production), other).length;
    for (let i = 0; i < 5; i++) env.fake.dispatchEvent('MESSAGE_CREATE', message(other, `before resume ${i}`));
    await waitFor(async () => ofGuild(await stored(production), other).length === before + 5, 'five events', 5000, 25);
    const duplicates = app.routing!.publisher.counts.duplicate;
    const resumed = new Promise((r) => app.client.once('shardResume', r));
    env.fake.forceResume(5);
    await resumed;
    await waitFor(() => app.routing!.publisher.counts.duplicate >= duplicates + 5, 'the replay to be deduplicated', 5000, 25);
    const rows = ofGuild(await stored(production), other).slice(before);
    expect(rows.map((m) => m.d.content)).toEqual([0, 1, 2, 3, 4].map((i) => `before resume ${i}`));
  });

  it('while NATS is away: /sandbox still answers, /readyz says degraded (200), drops are counted, routing resumes', async () => {
    await proxy.down('reset');
    await waitFor(() => app.routing!.health() === 'degraded', 'degraded', 5000, 25);
    expect(await readyz()).toMatchObject({ status: 200, body: { checks: { events: 'degraded' } } });
    expect(await command(home, 'list')).toContain(`routed-${tag}`);
    for (let i = 0; i < 30; i++) env.fake.dispatchEvent('MESSAGE_CREATE', message(other, `while down ${i}`));
    await waitFor(() => (app.routing!.publisher.counts.dropped.buffer_full ?? 0) >= 10, 'ten drops', 5000, 25);
    expect(await app.metrics.registry.metrics()).toMatch(/sandbox_events_dropped_total\{reason="buffer_full"\} 10\b/);

    await proxy.up();
    await waitFor(() => app.routing!.health() === 'ok', 'NATS to be back', 15_000, 50);
    env.fake.dispatchEvent('MESSAGE_CREATE', message(home, 'after the outage'));
    await waitFor(async () => (await stored(sandboxStream)).some((m) => m.d.content === 'after the outage'), 'routing to resume', 10_000, 50);
    // The 20 newest of those sent while down were kept and stored once NATS came back.
    const kept = (await stored(production)).filter((m) => String(m.d.content).startsWith('while down ')).map((m) => m.d.content);
    expect(kept).toEqual(Array.from({ length: 20 }, (_, i) => `while down ${i + 10}`));
  }, 40_000);

  it('destroy removes the stream, and the guild’s later events go to production', async () => {
    await app.manager.destroy(`routed-${tag}`, { kind: 'operator', name: 'tester' });
    await expect(jsm.streams.info(sandboxStream)).rejects.toThrow(/stream not found/i);
    env.fake.dispatchEvent('MESSAGE_CREATE', message(home, 'after destroy'));
    await waitFor(async () => ofGuild(await stored(production), home).some((m) => m.d.content === 'after destroy'), 'the event on production', 5000, 25);
  });

  it('while stopping, other interactions are still not answered and /sandbox gets the restarting reply', async () => {
    app.dispatcher.stopAccepting();
    const ping = env.fake.sendCommand({ guildId: home, userId, name: 'ping' });
    const list = env.fake.sendCommand(sandboxCommand({ guildId: home, userId, subcommand: 'list' }));
    expect(await finalText(list)).toContain('restarting');
    await new Promise((r) => setTimeout(r, 300));
    expect(ping.responses).toEqual([]);
  });
});
