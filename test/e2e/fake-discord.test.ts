import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import {
  ActionRowBuilder,
  ButtonBuilder,
  ButtonStyle,
  Client,
  DiscordAPIError,
  EmbedBuilder,
  Events,
  GatewayIntentBits,
  MessageFlags,
  PermissionFlagsBits,
} from 'discord.js';
import type { ClientEvents, Interaction } from 'discord.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeDiscord } from '../fake-discord/index.ts';

const OWNER = '100000000000000001';
const ADMIN = '100000000000000002';
const PLAIN = '100000000000000003';
const MANAGER_ROLE = '200000000000000001';

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

async function startBot(): Promise<Client> {
  const client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: fake.apiBase } });
  clients.push(client);
  const ready = once(client, Events.ClientReady, { signal: AbortSignal.timeout(2000) });
  await client.login(fake.token);
  await ready;
  return client;
}

function nextEvent<K extends keyof ClientEvents>(client: Client, event: K, timeoutMs = 1000): Promise<ClientEvents[K]> {
  return once(client, event, { signal: AbortSignal.timeout(timeoutMs) }) as Promise<ClientEvents[K]>;
}

function addTestGuild(): string {
  return fake.addGuild({
    name: 'Test Guild',
    ownerId: OWNER,
    roles: [{ id: MANAGER_ROLE, name: 'Managers', permissions: String(PermissionFlagsBits.ManageGuild) }],
    members: [
      { userId: ADMIN, username: 'admin', roles: [MANAGER_ROLE] },
      { userId: PLAIN, username: 'plain' },
    ],
  });
}

/** Runs `handler` for every interaction, surfacing its errors to the test. */
function onInteraction(client: Client, handler: (interaction: Interaction) => Promise<void>): { errors: unknown[] } {
  const errors: unknown[] = [];
  client.on(Events.InteractionCreate, (interaction) => void handler(interaction).catch((error) => errors.push(error)));
  return { errors };
}

describe('FakeDiscord with a real discord.js client', () => {
  it('logs in quickly and lists guilds that existed before the connection', async () => {
    const guildId = addTestGuild();
    const started = performance.now();
    const client = await startBot();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(client.user?.id).toBe(fake.botUser.id);
    expect(client.application?.id).toBe(fake.applicationId);
    expect(client.guilds.cache.get(guildId)?.available).toBe(true);
    expect(fake.connected).toBe(true);
    expect(fake.requests.map((r) => r.path)).toEqual(['/gateway/bot']);
  });

  it('emits guildCreate for a guild added after ready', async () => {
    const client = await startBot();
    const created = nextEvent(client, Events.GuildCreate);
    const guildId = addTestGuild();
    const [guild] = await created;
    expect(guild.id).toBe(guildId);
    expect(guild.ownerId).toBe(OWNER);
    expect(guild.name).toBe('Test Guild');
  });

  it('distinguishes an outage (guildUnavailable) from removal (guildDelete)', async () => {
    const outageId = addTestGuild();
    const removedId = addTestGuild();
    const client = await startBot();

    const unavailable = nextEvent(client, Events.GuildUnavailable);
    fake.removeGuild(outageId, { unavailable: true });
    expect((await unavailable)[0].id).toBe(outageId);
    expect(client.guilds.cache.get(outageId)?.available).toBe(false);

    const available = nextEvent(client, Events.GuildAvailable);
    fake.restoreGuild(outageId);
    expect((await available)[0].id).toBe(outageId);

    const deleted = nextEvent(client, Events.GuildDelete);
    fake.removeGuild(removedId);
    expect((await deleted)[0].id).toBe(removedId);
    expect(client.guilds.cache.has(removedId)).toBe(false);
    expect(fake.state.guilds.has(removedId)).toBe(false);
  });

  it('delivers a chat-input command and records the deferral and the edit', async () => {
    const guildId = addTestGuild();
    const client = await startBot();
    const seen: string[] = [];
    const { errors } = onInteraction(client, async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      const { options } = interaction;
      seen.push(`${interaction.commandName} ${options.getSubcommand()} ${options.getString('name')} ${options.getInteger('ttl')}`);
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      await interaction.editReply({
        content: 'Sandbox ready',
        embeds: [new EmbedBuilder().setTitle('demo')],
        components: [
          new ActionRowBuilder<ButtonBuilder>().addComponents(
            new ButtonBuilder().setCustomId('sandbox:destroy:demo').setLabel('Destroy').setStyle(ButtonStyle.Danger),
          ),
        ],
      });
    });

    const handle = fake.sendCommand({
      guildId,
      userId: ADMIN,
      name: 'sandbox',
      subcommand: 'create',
      options: { name: 'demo', ttl: 60 },
    });
    const first = await handle.firstResponse(1000);
    expect(first.body).toEqual({ type: 5, data: { flags: 64 } });
    expect(handle.deferred).toBe(true);
    expect(handle.ephemeral).toBe(true);

    const edit = await handle.edited(1000);
    expect(edit.content).toBe('Sandbox ready');
    expect(edit.embeds).toEqual([{ title: 'demo' }]);
    expect(handle.responses.map((r) => r.kind)).toEqual(['callback', 'edit']);
    expect(handle.message?.interaction_metadata?.user.id).toBe(ADMIN);
    expect(handle.message?.flags).toBe(MessageFlags.Ephemeral);
    expect(seen).toEqual(['sandbox create demo 60']);
    expect(errors).toEqual([]);
  });

  it('delivers a button press on the edited message and records interaction.update', async () => {
    const guildId = addTestGuild();
    const client = await startBot();
    const presses: { customId: string; invoker: string | undefined }[] = [];
    const { errors } = onInteraction(client, async (interaction) => {
      if (interaction.isChatInputCommand()) {
        await interaction.deferReply({ flags: MessageFlags.Ephemeral });
        await interaction.editReply({
          content: 'Really destroy?',
          components: [
            new ActionRowBuilder<ButtonBuilder>().addComponents(
              new ButtonBuilder().setCustomId('confirm').setLabel('Yes').setStyle(ButtonStyle.Danger),
            ),
          ],
        });
      } else if (interaction.isButton()) {
        presses.push({ customId: interaction.customId, invoker: interaction.message.interactionMetadata?.user.id });
        await interaction.update({ content: 'Destroyed', components: [] });
      }
    });

    const command = fake.sendCommand({ guildId, userId: PLAIN, name: 'sandbox', subcommand: 'destroy' });
    await command.edited(1000);
    const message = command.message;
    if (!message) throw new Error('no original message');

    expect(() => fake.sendComponent({ guildId, userId: ADMIN, customId: 'confirm', message })).toThrow(/ephemeral/);
    const press = fake.sendComponent({ guildId, userId: PLAIN, customId: 'confirm', message });
    const update = await press.firstResponse(1000);
    expect(update.body).toMatchObject({ type: 7, data: { content: 'Destroyed', components: [] } });
    expect(presses).toEqual([{ customId: 'confirm', invoker: PLAIN }]);
    expect(fake.state.messages.get(message.id)?.content).toBe('Destroyed');
    expect(errors).toEqual([]);
  });

  it('records autocomplete choices', async () => {
    const guildId = addTestGuild();
    const client = await startBot();
    const { errors } = onInteraction(client, async (interaction) => {
      if (!interaction.isAutocomplete()) return;
      const focused = interaction.options.getFocused(true);
      await interaction.respond([{ name: `${focused.name}:${focused.value}mo`, value: 'demo' }]);
    });

    const handle = fake.sendAutocomplete({
      guildId,
      userId: PLAIN,
      name: 'sandbox',
      subcommand: 'destroy',
      focused: 'sandbox',
      value: 'de',
    });
    const response = await handle.firstResponse(1000);
    expect(response.body).toEqual({ type: 8, data: { choices: [{ name: 'sandbox:demo', value: 'demo' }] } });
    expect(errors).toEqual([]);
  });

  it('serves members whose permissions follow their roles', async () => {
    const guildId = addTestGuild();
    const client = await startBot();
    const guild = client.guilds.cache.get(guildId);
    if (!guild) throw new Error('guild missing');

    const [owner, admin, plain] = await Promise.all([OWNER, ADMIN, PLAIN].map((id) => guild.members.fetch(id)));
    expect(owner?.permissions.has(PermissionFlagsBits.Administrator)).toBe(true);
    expect(admin?.permissions.has(PermissionFlagsBits.ManageGuild)).toBe(true);
    expect(plain?.permissions.has(PermissionFlagsBits.ManageGuild)).toBe(false);
    expect(fake.userPermissions(guildId, ADMIN)).toBe(PermissionFlagsBits.ManageGuild);

    const missing = await guild.members.fetch('100000000000000999').catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(DiscordAPIError);
    expect((missing as DiscordAPIError).code).toBe(10007);
  });

  it('records DMs and refuses them for users who block DMs', async () => {
    addTestGuild();
    const client = await startBot();
    await client.users.send(ADMIN, 'hello there');
    expect(fake.dms).toMatchObject([{ userId: ADMIN, content: 'hello there' }]);

    fake.failDmsFor(PLAIN);
    const error = await client.users.send(PLAIN, 'nope').catch((e: unknown) => e);
    expect((error as DiscordAPIError).code).toBe(50007);
    expect(fake.dms).toHaveLength(1);
  });

  it('records global and guild command registration', async () => {
    const guildId = addTestGuild();
    const client = await startBot();
    const body = [{ name: 'sandbox', description: 'Manage sandboxes' }];
    const global = await client.application!.commands.set(body);
    const scoped = await client.application!.commands.set(body, guildId);

    expect(global.first()?.id).toMatch(/^\d+$/);
    expect(scoped.first()?.guildId).toBe(guildId);
    expect(fake.commandWrites.map((p) => p.scope)).toEqual(['global', guildId]);
    expect(fake.commands('global').map((c) => c.name)).toEqual(['sandbox']);
    expect(fake.commands(guildId)).toHaveLength(1);
  });

  it('answers unknown routes at once and applies failNext', async () => {
    addTestGuild();
    const client = await startBot();
    const started = performance.now();
    const error = await client.rest.get('/nowhere/at/all').catch((e: unknown) => e);
    expect((error as DiscordAPIError).status).toBe(404);
    expect(performance.now() - started).toBeLessThan(500);
    expect(fake.unhandled.map((r) => r.path)).toEqual(['/nowhere/at/all']);

    fake.failNext('POST /users/@me/channels', 429);
    await client.users.send(ADMIN, 'after a rate limit');
    expect(fake.dms).toHaveLength(1);
  });

  it('expires interactions whose callback is held past the deadline', async () => {
    await fake.stop();
    fake = await FakeDiscord.start({ interactionTimeoutMs: 50 });
    const guildId = addTestGuild();
    const client = await startBot();
    const failure = new Promise<unknown>((resolve) => {
      client.once(Events.InteractionCreate, (i) => {
        if (i.isChatInputCommand()) void i.deferReply().then(resolve, resolve);
      });
    });
    const release = fake.holdRoute(/\/callback$/);
    const handle = fake.sendCommand({ guildId, userId: OWNER, name: 'sandbox' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    release();
    expect(((await failure) as DiscordAPIError).code).toBe(10062);
    expect(handle.responses).toEqual([]);
  });

  it('serves a second client after a restart', async () => {
    const guildId = addTestGuild();
    const first = await startBot();
    await first.destroy();
    const second = await startBot();
    expect(fake.identifies).toHaveLength(2);
    const got = new Promise<string>((resolve) => second.once(Events.InteractionCreate, (i) => resolve(i.id)));
    const handle = fake.sendCommand({ guildId, userId: OWNER, name: 'sandbox', subcommand: 'list' });
    expect(await got).toBe(handle.id);
  });
});
