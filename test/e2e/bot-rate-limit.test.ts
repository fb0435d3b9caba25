// Issue 8 item 6: a per-user token bucket on mutating commands (10 a minute here), enforced in the
// dispatcher, through the real discord.js client and the fake Discord. Buttons and autocomplete,
// and read-only commands, take no token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InteractionHandle } from '../fake-discord/index.ts';
import { snowflake } from '../support/db.ts';
import { addGuild, finalText, sandboxCommand, setupEnv, type Env } from './support/harness.ts';

let env: Env;
// The limiter's clock stands still unless the test moves it, so a slow machine cannot refill a token.
let now = Date.parse('2026-11-28T01:00:00Z');

beforeAll(async () => {
  env = await setupEnv();
  await env.start({ rateLimitClock: () => now }, { RATE_LIMIT_PER_MINUTE: '10' });
});
afterAll(async () => env?.close());

type Options = Record<string, string | number | boolean>;
const send = (guildId: string, userId: string, subcommand: string, options: Options = {}): InteractionHandle =>
  env.fake.sendCommand(sandboxCommand({ guildId, userId, subcommand, options }));
const run = (guildId: string, userId: string, subcommand: string, options: Options = {}): Promise<string> => finalText(send(guildId, userId, subcommand, options));

describe('rate limit on mutating commands', () => {
  it('refuses the 11th mutating command within a minute, ephemerally, with a Discord relative timestamp', async () => {
    const otherId = snowflake();
    const { guildId, ownerId } = addGuild(env.fake, { members: [otherId] });

    expect(await run(guildId, ownerId, 'create', { name: 'rl-one' })).toContain('Created sandbox **rl-one**'); // 1
    // A destroy prompt takes a token (2); pressing its Cancel button does not.
    const destroy = send(guildId, ownerId, 'destroy', { sandbox: 'rl-one' });
    const prompt = await destroy.waitFor((r) => r.kind === 'edit' && Array.isArray(r.body.components) && r.body.components.length > 0);
    const cancelId = (prompt.body.components as { components: { custom_id: string }[] }[])[0]!.components[1]!.custom_id;
    env.fake.sendComponent({ guildId, userId: ownerId, customId: cancelId, message: destroy.message!.id });
    await destroy.waitFor((r) => r.kind === 'edit' && String(r.body.content).startsWith('Cancelled'));
    for (let i = 3; i <= 10; i++) {
      expect(await run(guildId, ownerId, 'extend', { sandbox: 'rl-one', hours: 1 }), `extend #${i}`).toContain('rl-one');
      // Read-only commands and autocomplete are free.
      expect(await run(guildId, ownerId, 'status', { sandbox: 'rl-one' })).toContain('rl-one');
      const auto = env.fake.sendAutocomplete({ ...sandboxCommand({ guildId, userId: ownerId, subcommand: 'extend' }), focused: 'sandbox', value: 'rl' });
      expect((await auto.firstResponse()).body.type).toBe(8);
    }
    expect(await run(guildId, ownerId, 'list')).toContain('rl-one');

    const eleventh = send(guildId, ownerId, 'extend', { sandbox: 'rl-one', hours: 1 });
    const text = await finalText(eleventh);
    expect(eleventh.ephemeral).toBe(true);
    expect(text).toMatch(/too quickly\. Try again <t:\d+:R>\./);
    // One token comes back every 6 s at 10 a minute.
    expect(text).toContain(`<t:${Date.parse('2026-11-28T01:00:06Z') / 1000}:R>`);
    expect(text).not.toContain('Extended');

    // At the time it named, one more goes through, and the next is refused again.
    now = Date.parse('2026-11-28T01:00:06Z');
    expect(await run(guildId, ownerId, 'extend', { sandbox: 'rl-one', hours: 1 })).not.toContain('too quickly');
    expect(await run(guildId, ownerId, 'extend', { sandbox: 'rl-one', hours: 1 })).toContain('Try again <t:1795827612:R>');

    // Another user keeps their own bucket.
    expect(await run(guildId, otherId, 'create', { name: 'rl-other', register_this_guild: false })).toContain('Created sandbox **rl-other**');
    // And the limited user's read-only commands still work.
    expect(await run(guildId, ownerId, 'status', { sandbox: 'rl-one' })).not.toContain('too quickly');
  }, 60_000);
});
