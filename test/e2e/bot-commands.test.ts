import type { APIMessage } from 'discord.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import type { InteractionHandle } from '../fake-discord/index.ts';
import { countRows, schemaExists, snowflake } from '../support/db.ts';
import { LatencyLog, addGuild, finalText, messageText, sandboxCommand, setupEnv, type Env } from './support/harness.ts';

let env: Env;
let app: App;
const latency = new LatencyLog();

beforeAll(async () => {
  env = await setupEnv();
  app = await env.start();
});

afterAll(async () => {
  latency.report('bot-commands');
  await env?.close();
});

type Options = Record<string, string | number | boolean>;

function send(guildId: string, userId: string, subcommand: string, options: Options = {}): InteractionHandle {
  return env.fake.sendCommand(sandboxCommand({ guildId, userId, subcommand, options }));
}

async function run(guildId: string, userId: string, subcommand: string, options: Options = {}): Promise<string> {
  const handle = send(guildId, userId, subcommand, options);
  const text = await finalText(handle);
  latency.record(handle);
  expect(handle.callback).toEqual({ type: 5, data: { flags: 64 } });
  expect(handle.edits.at(-1)!.allowed_mentions).toEqual({ parse: [] });
  return text;
}

/** A guild with an owner who has a sandbox mapped to it, and a bystander member. */
async function setup(name: string): Promise<{ guildId: string; ownerId: string; otherId: string }> {
  const otherId = snowflake();
  const { guildId, ownerId } = addGuild(env.fake, { members: [otherId] });
  expect(await run(guildId, ownerId, 'create', { name })).toContain(`Created sandbox **${name}**`);
  return { guildId, ownerId, otherId };
}

/** Sends /sandbox destroy and waits for the prompt; returns the handle and its button ids. */
async function destroyPrompt(guildId: string, userId: string, sandbox: string) {
  const handle = send(guildId, userId, 'destroy', { sandbox });
  const prompt = await handle.waitFor((r) => r.kind === 'edit' && Array.isArray(r.body.components) && r.body.components.length > 0);
  const [confirmId, cancelId] = ((prompt.body.components as { components: { custom_id: string }[] }[])[0]!.components).map((c) => c.custom_id);
  expect(messageText(prompt.body)).toContain(`Destroy **${sandbox}**?`);
  return { handle, confirmId: confirmId!, cancelId: cancelId! };
}

const press = (guildId: string, userId: string, handle: InteractionHandle, customId: string) =>
  env.fake.sendComponent({ guildId, userId, customId, message: handle.message!.id });

describe('/sandbox destroy', () => {
  it('destroys after Confirm: the schema is gone and the guild is free', async () => {
    const { guildId, ownerId } = await setup('to-destroy');
    const sandbox = (await app.manager.getByName('to-destroy'))!;
    const { handle, confirmId } = await destroyPrompt(guildId, ownerId, 'to-destroy');
    expect(await schemaExists(env.db, sandbox.schemaName)).toBe(true);

    const click = press(guildId, ownerId, handle, confirmId);
    expect((await click.firstResponse()).body).toEqual({ type: 6 });
    const done = await handle.waitFor((r) => r.kind === 'edit' && String(r.body.content).startsWith('Destroyed'));
    expect(done.body.components).toEqual([]);
    latency.record(handle);
    expect(await schemaExists(env.db, sandbox.schemaName)).toBe(false);
    expect((await app.manager.getById(sandbox.id))?.status).toBe('destroyed');
    expect(await app.manager.getByGuildId(guildId)).toBeNull();
  });

  it('changes nothing after Cancel', async () => {
    const { guildId, ownerId } = await setup('kept-on-cancel');
    const { handle, cancelId } = await destroyPrompt(guildId, ownerId, 'kept-on-cancel');
    press(guildId, ownerId, handle, cancelId);
    const done = await handle.waitFor((r) => r.kind === 'edit' && String(r.body.content).startsWith('Cancelled'));
    expect(done.body.components).toEqual([]);
    const sandbox = (await app.manager.getByName('kept-on-cancel'))!;
    expect(sandbox).toMatchObject({ status: 'running', guildIds: [guildId] });
    expect(await schemaExists(env.db, sandbox.schemaName)).toBe(true);
  });

  it('refuses a button press by anyone but the invoker, and still lets the invoker answer', async () => {
    const { guildId, ownerId, otherId } = await setup('someone-elses');
    const { handle, confirmId } = await destroyPrompt(guildId, ownerId, 'someone-elses');
    // In Discord an ephemeral prompt is visible to its invoker only; a press by anyone else can only
    // be forged (or come from a non-ephemeral copy). Simulate it with a non-ephemeral copy.
    const { flags: _ephemeral, ...visible } = handle.message!;
    const copy: APIMessage = { ...visible, id: snowflake() };
    const intruder = env.fake.sendComponent({ guildId, userId: otherId, customId: confirmId, message: copy });
    const refusal = await intruder.firstResponse();
    expect(refusal.body).toMatchObject({ type: 4, data: { flags: 64, allowed_mentions: { parse: [] } } });
    expect(String((refusal.body.data as { content: string }).content)).toContain('Only the person who ran this command');
    expect((await app.manager.getByName('someone-elses'))?.status).toBe('running');

    const click = press(guildId, ownerId, handle, confirmId);
    await click.firstResponse();
    await handle.waitFor((r) => r.kind === 'edit' && String(r.body.content).startsWith('Destroyed'));
    expect((await app.manager.getByName('someone-elses'))?.status).toBe('destroyed');
  });

  it('is refused for a non-owner without any prompt', async () => {
    const { guildId, otherId } = await setup('not-theirs');
    const text = await run(guildId, otherId, 'destroy', { sandbox: 'not-theirs' });
    expect(text).toContain('SANDBOX_009');
    expect((await app.manager.getByName('not-theirs'))?.status).toBe('running');
  });
});

describe('other subcommands', () => {
  it('extend: the owner may, a non-owner may not, a bot admin may', async () => {
    const { guildId, ownerId, otherId } = await setup('extend-me');
    const before = (await app.manager.getByName('extend-me'))!.expiresAt.getTime();
    const refused = await run(guildId, otherId, 'extend', { sandbox: 'extend-me', hours: 5 });
    expect(refused).toContain('SANDBOX_009');
    expect((await app.manager.getByName('extend-me'))!.expiresAt.getTime()).toBe(before);

    const ok = await run(guildId, ownerId, 'extend', { sandbox: 'extend-me', hours: 5 });
    expect(ok).toMatch(/now expires <t:\d+:f> \(<t:\d+:R>\)/);
    const after = (await app.manager.getByName('extend-me'))!.expiresAt.getTime();
    expect(after - before).toBeGreaterThanOrEqual(5 * 3_600_000 - 1000);

    env.fake.state.addMember(env.fake.state.guild(guildId), { userId: env.adminId });
    const byAdmin = await run(guildId, env.adminId, 'extend', { sandbox: 'extend-me', hours: 200 });
    expect(byAdmin).toContain('SANDBOX_008');
    const capped = await run(guildId, env.adminId, 'extend', { sandbox: 'extend-me', hours: 168 });
    expect(capped).toContain('Expiry capped at 168 hours from now.');
  });

  it("status shows health, row counts and time left; connect shows the environment with the sandbox's own login only", async () => {
    const { guildId, ownerId } = await setup('inspect-me');
    const sandbox = (await app.manager.getByName('inspect-me'))!;
    const status = await run(guildId, ownerId, 'status', { sandbox: 'inspect-me' });
    expect(status).toContain('✅ Healthy');
    expect(status).toMatch(/`communities`: 0 rows/);
    expect(status).toMatch(/Time left: 2[34] h/);
    expect(status).toContain(sandbox.schemaName);

    const connect = await run(guildId, ownerId, 'connect', { sandbox: sandbox.id });
    expect(connect).toContain('```env');
    expect(connect).toContain(`SANDBOX_SCHEMA=${sandbox.schemaName}`);
    expect(connect).toContain(`SANDBOX_GUILD_IDS=${guildId}`);
    // Isolation is on (a PostgreSQL server): the sandbox's own role, never the control role's login.
    expect(connect).toContain(`SANDBOX_DATABASE_URL=postgresql://${sandbox.schemaName}:`);
    expect(connect).not.toContain(env.db.url);
    expect(connect).not.toMatch(/token|@127\.0\.0\.1:5432\/postgres/i);
  });

  it('list shows your own; all:true only for bot admins', async () => {
    const { guildId, ownerId, otherId } = await setup('listed-mine');
    expect(await run(guildId, ownerId, 'list')).toContain('listed-mine');
    const others = await run(guildId, otherId, 'list');
    expect(others).not.toContain('listed-mine');
    expect(others).toContain('No sandboxes');
    expect(await run(guildId, otherId, 'list', { all: true })).toContain('SANDBOX_009');
    env.fake.state.addMember(env.fake.state.guild(guildId), { userId: env.adminId });
    const all = await run(guildId, env.adminId, 'list', { all: true });
    expect(all).toContain('All sandboxes');
    expect(all).toContain('listed-mine');
  });

  it('autocomplete offers the invoker’s sandboxes only', async () => {
    const { guildId, ownerId, otherId } = await setup('auto-alpha');
    await run(guildId, ownerId, 'create', { name: 'auto-beta', register_this_guild: false });
    const complete = async (userId: string, value: string) => {
      const handle = env.fake.sendAutocomplete({ ...sandboxCommand({ guildId, userId, subcommand: 'status' }), focused: 'sandbox', value });
      const response = await handle.firstResponse();
      expect(response.body.type).toBe(8);
      return (response.body.data as { choices: { name: string; value: string }[] }).choices;
    };
    expect((await complete(ownerId, 'auto')).map((c) => c.value).sort()).toEqual(['auto-alpha', 'auto-beta']);
    expect((await complete(ownerId, 'auto-b')).map((c) => c.value)).toEqual(['auto-beta']);
    expect(await complete(otherId, 'auto')).toEqual([]);
  });
});

describe('lifecycle of the bot', () => {
  it('times out a destroy prompt and says so', async () => {
    await app.stop();
    app = await env.start({ destroyConfirmTimeoutMs: 300 });
    const { guildId, ownerId } = await setup('timed-out');
    const { handle } = await destroyPrompt(guildId, ownerId, 'timed-out');
    const done = await handle.waitFor((r) => r.kind === 'edit' && String(r.body.content).includes('timed out'));
    expect(done.body.content).toContain('was not destroyed');
    expect(done.body.components).toEqual([]);
    expect((await app.manager.getByName('timed-out'))?.status).toBe('running');
  });

  it('stop() lets an in-flight command finish before closing the database', async () => {
    const { guildId, ownerId } = addGuild(env.fake);
    const blocker = new pg.Client({ connectionString: env.db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE sandboxes IN ACCESS EXCLUSIVE MODE');
    const handle = send(guildId, ownerId, 'create', { name: 'in-flight' });
    await handle.firstResponse();
    let stopped = false;
    const stopping = app.stop().then(() => (stopped = true));
    // New interactions are turned away while stopping.
    const late = send(guildId, ownerId, 'list');
    expect((await late.firstResponse()).body).toMatchObject({ type: 4, data: { flags: 64 } });
    expect(stopped).toBe(false);
    await blocker.query('COMMIT');
    await blocker.end();
    await stopping;
    expect(messageText(await handle.edited())).toContain('Created sandbox **in-flight**');
    expect(await countRows(env.db, 'sandboxes', "name = 'in-flight' AND status = 'running'")).toBe(1);
  });
});
