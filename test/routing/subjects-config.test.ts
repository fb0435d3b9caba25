import { describe, expect, it } from 'vitest';
import { parseRoutingConfig, publicNatsUrl } from '../../src/routing/config.ts';
import { isOwnInteraction } from '../../src/routing/ingest.ts';
import { filtersOverlap, guildOf, sandboxIdOfStream, sandboxStreamName, sandboxSubject, productionSubject } from '../../src/routing/subjects.ts';

describe('routing rule and names', () => {
  it('a dispatch belongs to d.guild_id, or d.id for GUILD_CREATE/UPDATE/DELETE', () => {
    expect(guildOf({ t: 'MESSAGE_CREATE', d: { id: '111111111111111111', guild_id: '222222222222222222' } })).toBe('222222222222222222');
    for (const t of ['GUILD_CREATE', 'GUILD_UPDATE', 'GUILD_DELETE']) {
      expect(guildOf({ t, d: { id: '333333333333333333' } })).toBe('333333333333333333');
    }
    expect(guildOf({ t: 'CHANNEL_CREATE', d: { id: '333333333333333333' } })).toBeUndefined();
    expect(guildOf({ t: 'USER_UPDATE', d: { id: '333333333333333333' } })).toBeUndefined();
    expect(guildOf({ t: 'MESSAGE_CREATE', d: { guild_id: 'not-a-guild' } })).toBeUndefined();
    expect(guildOf({ t: 'RESUMED', d: null })).toBeUndefined();
  });

  it('subjects and stream names', () => {
    const id = '0b9c6f0e-8d3a-4c1e-9f2b-7a5d4e3c2b1a';
    expect(sandboxSubject(id, 'MESSAGE_CREATE')).toBe('sandbox.0b9c6f0e-8d3a-4c1e-9f2b-7a5d4e3c2b1a.events.MESSAGE_CREATE');
    expect(productionSubject('events', 'MESSAGE_CREATE')).toBe('events.MESSAGE_CREATE');
    expect(sandboxStreamName(id)).toBe('SANDBOX_0b9c6f0e8d3a4c1e9f2b7a5d4e3c2b1a');
    expect(sandboxIdOfStream('SANDBOX_0b9c6f0e8d3a4c1e9f2b7a5d4e3c2b1a')).toBe(id);
    for (const n of ['SANDBOX_0b9c6f0e8d3a4c1e9f2b7a5d4e3c2b1', 'SANDBOX_0B9C6F0E8D3A4C1E9F2B7A5D4E3C2B1A', 'SANDBOX_0b9c6f0e8d3a4c1e9f2b7a5d4e3c2b1a_x', 'XSANDBOX_0b9c6f0e8d3a4c1e9f2b7a5d4e3c2b1a', 'DISCORD_EVENTS']) {
      expect(sandboxIdOfStream(n), n).toBeUndefined();
    }
  });

  it('filter overlap follows NATS wildcards', () => {
    expect(filtersOverlap('discord.ingest.>', 'events.>')).toBe(false);
    expect(filtersOverlap('discord.ingest.>', 'sandbox.>')).toBe(false);
    expect(filtersOverlap('>', 'events.>')).toBe(true);
    expect(filtersOverlap('*.MESSAGE_CREATE', 'events.>')).toBe(true);
    expect(filtersOverlap('events', 'events.>')).toBe(false);
    expect(filtersOverlap('events.X', 'events.>')).toBe(true);
    expect(filtersOverlap('sandbox.*.events.X', 'sandbox.>')).toBe(true);
    expect(filtersOverlap('a.b', 'a.c')).toBe(false);
  });

  it('only /sandbox interactions and our buttons are the bot’s own', () => {
    expect(isOwnInteraction({ type: 2, data: { name: 'sandbox' } })).toBe(true);
    expect(isOwnInteraction({ type: 4, data: { name: 'sandbox' } })).toBe(true);
    expect(isOwnInteraction({ type: 3, data: { custom_id: 'sandbox-confirm:abc:confirm' } })).toBe(true);
    expect(isOwnInteraction({ type: 2, data: { name: 'ping' } })).toBe(false);
    expect(isOwnInteraction({ type: 3, data: { custom_id: 'team-button' } })).toBe(false);
    expect(isOwnInteraction({ type: 5, data: { custom_id: 'sandbox-confirmx' } })).toBe(false);
  });
});

describe('routing configuration', () => {
  const parse = (env: Record<string, string>) => {
    const problems: string[] = [];
    const config = parseRoutingConfig(env, problems);
    return { config, problems };
  };

  it('defaults: routing off, events prefix, DISCORD_EVENTS, 24 h, 16 MiB, 10,000 buffered, non-privileged intents', () => {
    const { config, problems } = parse({});
    expect(problems).toEqual([]);
    expect(config.natsUrl).toBeUndefined();
    expect(config.subjectPrefix).toBe('events');
    expect(config.eventsStream).toBe('DISCORD_EVENTS');
    expect(config.sandboxStream).toEqual({ maxAgeHours: 24, maxBytes: 16777216 });
    expect(config.buffer.messages).toBe(10000);
    expect(config.intents.names).toEqual(['Guilds', 'GuildMessages', 'GuildMessageReactions']);
    expect(config.intents.bits).toBe(1 | 512 | 1024);
    expect(config.ingestSubject).toBe('discord.ingest.>');
  });

  it('Guilds is always included; an unknown intent is a configuration error', () => {
    expect(parse({ GATEWAY_INTENTS: 'GuildMembers' }).config.intents).toEqual({ names: ['Guilds', 'GuildMembers'], bits: 1 | 2 });
    expect(parse({ GATEWAY_INTENTS: 'Guilds,Nope' }).problems.join()).toMatch(/GATEWAY_INTENTS.*Nope/);
    expect(parse({ GATEWAY_INTENTS: 'toString' }).problems).toHaveLength(1);
  });

  it('refuses an ingest subject overlapping the outputs, and bad values', () => {
    expect(parse({ ROUTER_INGEST_SUBJECT: 'events.>' }).problems.join()).toMatch(/overlaps/);
    expect(parse({ ROUTER_INGEST_SUBJECT: 'sandbox.*.events.>' }).problems.join()).toMatch(/overlaps/);
    expect(parse({ EVENTS_SUBJECT_PREFIX: 'ev.*' }).problems).toHaveLength(1);
    expect(parse({ EVENTS_SUBJECT_PREFIX: 'sandbox' }).problems.join()).toMatch(/sandbox/);
    expect(parse({ EVENTS_STREAM: 'SANDBOX_X' }).problems).toHaveLength(1);
    expect(parse({ EVENTS_BUFFER: '0' }).problems).toHaveLength(1);
    expect(parse({ NATS_URL: 'http://x' }).problems).toHaveLength(1);
    expect(parse({ NATS_URL: 'nats://127.0.0.1:4222', SANDBOX_EVENTS_MAX_BYTES: '1048576' }).config).toMatchObject({ natsUrl: 'nats://127.0.0.1:4222', sandboxStream: { maxBytes: 1048576 } });
  });
});

describe('publicNatsUrl', () => {
  it('drops user and password from every server, keeps the rest as given', () => {
    expect(publicNatsUrl('nats://alice:s3cret@10.0.0.1:4222,nats://10.0.0.2:4222')).toBe('nats://10.0.0.1:4222,nats://10.0.0.2:4222');
    expect(publicNatsUrl('tls://token@nats.example:4443')).toBe('tls://nats.example:4443');
    expect(publicNatsUrl('127.0.0.1:4222')).toBe('127.0.0.1:4222');
    expect(publicNatsUrl('nats://a:b@h1:4222, tls://tok@h2:4443,h3:4222,u:p@h4')).toBe('nats://h1:4222,tls://h2:4443,h3:4222,h4');
  });

  it('leaks no part of a password holding @ or /', () => {
    expect(publicNatsUrl('nats://bot:p@ss@h1:4222')).toBe('nats://h1:4222');
    expect(publicNatsUrl('nats://bot:p/ss@h1:4222,bot:a@b/c@h2')).toBe('nats://h1:4222,h2');
  });
});
