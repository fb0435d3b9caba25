// /sandbox reset (confirm buttons) and /sandbox clone through the real discord.js client and the fake Discord.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import type { InteractionHandle } from '../fake-discord/index.ts';
import { snowflake } from '../support/db.ts';
import { addGuild, finalText, messageText, sandboxCommand, setupEnv, type Env } from './support/harness.ts';

let env: Env;
let app: App;

beforeAll(async () => {
  env = await setupEnv();
  app = await env.start();
});
afterAll(async () => {
  await env?.close();
});

type Options = Record<string, string | number | boolean>;
const send = (guildId: string, userId: string, subcommand: string, options: Options = {}): InteractionHandle =>
  env.fake.sendCommand(sandboxCommand({ guildId, userId, subcommand, options }));
const run = async (guildId: string, userId: string, subcommand: string, options: Options = {}): Promise<string> => {
  const handle = send(guildId, userId, subcommand, options);
  const text = await finalText(handle);
  expect(handle.callback).toEqual({ type: 5, data: { flags: 64 } });
  expect(handle.edits.at(-1)!.allowed_mentions).toEqual({ parse: [] });
  return text;
};
const press = (guildId: string, userId: string, handle: InteractionHandle, customId: string) =>
  env.fake.sendComponent({ guildId, userId, customId, message: handle.message!.id });

/** A sandbox with one community row written "by a test run". */
async function setup(name: string): Promise<{ guildId: string; ownerId: string; otherId: string; schema: string }> {
  const otherId = snowflake();
  const { guildId, ownerId } = addGuild(env.fake, { members: [otherId] });
  expect(await run(guildId, ownerId, 'create', { name })).toContain(`Created sandbox **${name}**`);
  const schema = (await app.manager.getByName(name))!.schemaName;
  await env.db.pool.query(`INSERT INTO "${schema}".communities (name) VALUES ('written by a test run')`);
  return { guildId, ownerId, otherId, schema };
}
const communities = async (schema: string): Promise<number> => (await env.db.pool.query(`SELECT count(*)::int AS n FROM "${schema}".communities`)).rows[0].n;

async function resetPrompt(guildId: string, userId: string, sandbox: string) {
  const handle = send(guildId, userId, 'reset', { sandbox });
  const prompt = await handle.waitFor((r) => r.kind === 'edit' && Array.isArray(r.body.components) && r.body.components.length > 0);
  const [confirmId, cancelId] = ((prompt.body.components as { components: { custom_id: string }[] }[])[0]!.components).map((c) => c.custom_id);
  expect(messageText(prompt.body)).toContain(`Reset **${sandbox}**?`);
  expect(prompt.body.allowed_mentions).toEqual({ parse: [] });
  return { handle, confirmId: confirmId!, cancelId: cancelId! };
}

describe('/sandbox reset', () => {
  it('resets after Confirm: the rows written since are gone, and it is audited', async () => {
    const { guildId, ownerId, schema } = await setup('to-reset');
    expect(await communities(schema)).toBe(1);
    const { handle, confirmId } = await resetPrompt(guildId, ownerId, 'to-reset');
    expect(await communities(schema)).toBe(1);
    const click = press(guildId, ownerId, handle, confirmId);
    expect((await click.firstResponse()).body).toEqual({ type: 6 });
    const done = await handle.waitFor((r) => r.kind === 'edit' && String(r.body.content).startsWith('Reset **to-reset** to template version'));
    expect(done.body.components).toEqual([]);
    expect(await communities(schema)).toBe(0);
    const sandbox = (await app.manager.getByName('to-reset'))!;
    const { rows } = await env.db.pool.query(`SELECT actor FROM sandbox_audit_log WHERE sandbox_id = $1 AND event_type = 'reset'`, [sandbox.id]);
    expect(rows).toEqual([{ actor: `discord:${ownerId}` }]);
  });

  it('changes nothing after Cancel', async () => {
    const { guildId, ownerId, schema } = await setup('reset-cancelled');
    const { handle, cancelId } = await resetPrompt(guildId, ownerId, 'reset-cancelled');
    press(guildId, ownerId, handle, cancelId);
    await handle.waitFor((r) => r.kind === 'edit' && String(r.body.content).startsWith('Cancelled'));
    expect(await communities(schema)).toBe(1);
  });

  it('is refused for a non-owner without any prompt', async () => {
    const { guildId, otherId, schema } = await setup('reset-not-theirs');
    expect(await run(guildId, otherId, 'reset', { sandbox: 'reset-not-theirs' })).toContain('SANDBOX_009');
    expect(await communities(schema)).toBe(1);
  });
});

describe('/sandbox clone', () => {
  it('copies the rows into a new sandbox owned by the invoker', async () => {
    const { guildId, ownerId, schema } = await setup('clone-source');
    expect(await run(guildId, ownerId, 'clone', { sandbox: 'clone-source', name: 'clone-copy' })).toContain('Cloned into **clone-copy**');
    const copy = (await app.manager.getByName('clone-copy'))!;
    expect(copy).toMatchObject({ owner: ownerId, status: 'running', guildIds: [] });
    expect(copy.schemaName).not.toBe(schema);
    expect(await communities(copy.schemaName)).toBe(1);
  });
});
