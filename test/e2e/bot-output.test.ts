import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { addGuild, finalText, sandboxCommand, setupEnv, type Env } from './support/harness.ts';

let env: Env;
let app: App;

beforeAll(async () => {
  env = await setupEnv();
  app = await env.start();
});

afterAll(async () => {
  await env?.close();
});

const run = (guildId: string, userId: string, subcommand: string, options: Record<string, string | number | boolean> = {}) =>
  finalText(env.fake.sendCommand(sandboxCommand({ guildId, userId, subcommand, options })));

describe('what /sandbox status and extend say', () => {
  it('status of a destroyed sandbox says when it was destroyed, not a time left or "not healthy"', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    expect(await run(guildId, ownerId, 'create', { name: 'gone-soon' })).toContain('Created sandbox');
    const sandbox = (await app.manager.getByName('gone-soon'))!;
    await app.manager.destroy(sandbox.id, { kind: 'discord', id: ownerId });
    const text = await run(guildId, ownerId, 'status', { sandbox: sandbox.id });
    expect(text).toMatch(/Destroyed <t:\d+:R>/);
    expect(text).not.toContain('Time left');
    expect(text).not.toContain('Not healthy');
    expect(text).not.toContain('Expires');
  });

  it('extend says the new expiry, as a date and as time from now', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    expect(await run(guildId, ownerId, 'create', { name: 'longer-please', ttl_hours: 2 })).toContain('Created sandbox');
    const text = await run(guildId, ownerId, 'extend', { sandbox: 'longer-please', hours: 3 });
    const expiresAt = (await app.manager.getByName('longer-please'))!.expiresAt;
    const seconds = Math.floor(expiresAt.getTime() / 1000);
    expect(text).toContain(`**longer-please** now expires <t:${seconds}:f> (<t:${seconds}:R>).`);
  });
});
