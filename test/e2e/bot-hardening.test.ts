import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import type { InteractionHandle } from '../fake-discord/index.ts';
import type { OptionValue } from '../fake-discord/payloads.ts';
import { addGuild, messageText, sandboxCommand, setupEnv, type Env } from './support/harness.ts';

let env: Env;
let app: App;

beforeAll(async () => {
  env = await setupEnv();
  app = await env.start();
});

afterAll(async () => {
  await env?.close();
});

function send(guildId: string, userId: string, subcommand: string, options: Record<string, OptionValue | null> = {}): InteractionHandle {
  return env.fake.sendCommand(sandboxCommand({ guildId, userId, subcommand, options: options as Record<string, OptionValue> }));
}

/** The first edit of the deferred reply, which must be ephemeral and mention no one. */
async function answer(handle: InteractionHandle): Promise<string> {
  const edit = await handle.waitFor((r) => r.kind === 'edit');
  expect(handle.callback).toEqual({ type: 5, data: { flags: 64 } });
  expect(edit.body.allowed_mentions).toEqual({ parse: [] });
  return messageText(edit.body);
}

describe('forged subcommands', () => {
  for (const subcommand of ['constructor', 'hasOwnProperty', 'toString', 'frobnicate']) {
    it(`answers /sandbox ${subcommand} with an ephemeral SANDBOX_008`, async () => {
      const { guildId, ownerId } = addGuild(env.fake);
      const text = await answer(send(guildId, ownerId, subcommand));
      expect(text).toContain('SANDBOX_008');
      expect(text).toContain(`Unknown subcommand "${subcommand}"`);
    });
  }
});

describe('forged option types', () => {
  it('refuses a string ttl_hours with SANDBOX_008 naming the option, and creates nothing', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    const text = await answer(send(guildId, ownerId, 'create', { name: 'forged-ttl', ttl_hours: '24' }));
    expect(text).toContain('SANDBOX_008');
    expect(text).toContain('ttl_hours');
    expect(text).not.toContain('SANDBOX_012');
    expect(await app.manager.getByName('forged-ttl')).toBeNull();
  });

  it('refuses hours: null with SANDBOX_008 and leaves the expiry alone', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    expect(await answer(send(guildId, ownerId, 'create', { name: 'forged-hours' }))).toContain('Created sandbox');
    const before = (await app.manager.getByName('forged-hours'))!.expiresAt.getTime();
    const text = await answer(send(guildId, ownerId, 'extend', { sandbox: 'forged-hours', hours: null }));
    expect(text).toContain('SANDBOX_008');
    expect(text).toContain('hours');
    expect((await app.manager.getByName('forged-hours'))!.expiresAt.getTime()).toBe(before);
  });

  it('refuses a number where the sandbox name belongs', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    const text = await answer(send(guildId, ownerId, 'status', { sandbox: 42 }));
    expect(text).toContain('SANDBOX_008');
    expect(text).toContain('sandbox');
  });
});

describe('interaction tokens in logs', () => {
  it('redacts the token from the url of a failed reply edit', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    // Both the answer and the error reply fail, so the dispatcher logs two DiscordAPIErrors with urls.
    env.fake.failNext(/^PATCH \/webhooks\//, 404, { times: 2, body: { message: 'Unknown Webhook', code: 10015 } });
    const handle = send(guildId, ownerId, 'list');
    const logged = await waitForLog((l) => l.msg === 'could not send the error reply');
    const err = logged.err as { url?: string };
    expect(err.url).toMatch(/\/webhooks\/\d+\/\[redacted\]\/messages\/(@|%40)original/);
    expect(env.logs.raw.length).toBeGreaterThan(0);
    expect(env.logs.raw.filter((line) => line.includes(handle.token))).toEqual([]);
  });
});

async function waitForLog(predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = env.logs.find(predicate);
    if (found) return found;
    if (Date.now() > deadline) throw new Error('the expected log line never came');
    await new Promise((r) => setTimeout(r, 25));
  }
}
