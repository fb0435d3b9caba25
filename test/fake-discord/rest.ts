import type { APIApplicationCommand, APIEmbed, APIMessage } from 'discord.js';
import { apiError, isRecord, noContent, ok } from './http.ts';
import type { RestResult } from './http.ts';
import { snowflake } from './ids.ts';
import { channelPayload, commandPayload, guildPayload, memberPayload, messagePayload, rolePayload, userPayload } from './payloads.ts';
import { route } from './router.ts';
import type { Route, RouteContext } from './router.ts';
import type { FakeGuild } from './state.ts';

const unknownGuild = () => apiError(404, 10004, 'Unknown Guild');

function guildOf(ctx: RouteContext): FakeGuild | null {
  return ctx.state.guilds.get(ctx.params.guild ?? '') ?? null;
}

function gatewayBot(ctx: RouteContext): RestResult {
  const { shards, sessionStartLimit } = ctx.state.gatewayBot;
  return ok({ url: ctx.gatewayUrl, shards, session_start_limit: { ...sessionStartLimit } });
}

function getUser(ctx: RouteContext): RestResult {
  const user = ctx.state.users.get(ctx.params.user ?? '');
  return user ? ok(userPayload(user)) : apiError(404, 10013, 'Unknown User');
}

function getMember(ctx: RouteContext): RestResult {
  const guild = guildOf(ctx);
  if (!guild) return unknownGuild();
  const member = guild.members.get(ctx.params.user ?? '');
  return member ? ok(memberPayload(ctx.state, member)) : apiError(404, 10007, 'Unknown Member');
}

function createDm(ctx: RouteContext): RestResult {
  const recipientId = isRecord(ctx.body) ? ctx.body.recipient_id : undefined;
  if (typeof recipientId !== 'string' || !ctx.state.users.has(recipientId)) {
    return apiError(400, 50035, 'Invalid Form Body');
  }
  return ok(channelPayload(ctx.state, ctx.state.dmChannelFor(recipientId)));
}

function createMessage(ctx: RouteContext): RestResult {
  const { state } = ctx;
  const channel = state.channels.get(ctx.params.channel ?? '');
  if (!channel) return apiError(404, 10003, 'Unknown Channel');
  if (channel.recipientId && state.dmBlocked.has(channel.recipientId)) {
    return apiError(403, 50007, 'Cannot send messages to this user');
  }
  const body = isRecord(ctx.body) ? ctx.body : {};
  const content = typeof body.content === 'string' ? body.content : '';
  const embeds = Array.isArray(body.embeds) ? (body.embeds as APIEmbed[]) : [];
  const message = messagePayload(state, {
    channelId: channel.id,
    guildId: channel.guildId,
    author: state.botUser,
    content,
    embeds,
    components: Array.isArray(body.components) ? (body.components as APIMessage['components']) : [],
  });
  state.messages.set(message.id, message);
  const record = { channelId: channel.id, messageId: message.id, content, embeds, at: ctx.at };
  if (channel.recipientId) state.dms.push({ ...record, userId: channel.recipientId });
  else state.channelMessages.push({ ...record, guildId: channel.guildId ?? '' });
  return ok(message);
}

/** 'global' or the guild id, or the error for another application or a guild the bot is not in. */
function commandScope(ctx: RouteContext): { scope: string } | { error: RestResult } {
  if (ctx.params.app !== ctx.state.applicationId) return { error: apiError(404, 10002, 'Unknown Application') };
  if (ctx.params.guild === undefined) return { scope: 'global' };
  return guildOf(ctx) ? { scope: ctx.params.guild } : { error: apiError(403, 50001, 'Missing Access') };
}

function buildCommand(ctx: RouteContext, scope: string, body: unknown, existing: APIApplicationCommand[]): APIApplicationCommand {
  const input = isRecord(body) ? body : {};
  const previous = existing.find((c) => c.name === input.name && c.type === (input.type ?? 1));
  return commandPayload(ctx.state, input, scope === 'global' ? null : scope, previous?.id ?? snowflake());
}

function commandRoutes(prefix: string): Route[] {
  type ScopedHandler = (ctx: RouteContext, scope: string, current: APIApplicationCommand[]) => RestResult;
  const withScope = (fn: ScopedHandler) => (ctx: RouteContext) => {
    const resolved = commandScope(ctx);
    if ('error' in resolved) return resolved.error;
    return fn(ctx, resolved.scope, ctx.state.commands.get(resolved.scope) ?? []);
  };
  return [
    route('GET', prefix, withScope((_ctx, _scope, current) => ok(current))),
    route(
      'PUT',
      prefix,
      withScope((ctx, scope, current) => {
        if (!Array.isArray(ctx.body)) return apiError(400, 50035, 'Invalid Form Body');
        ctx.state.commandWrites.push({ method: 'PUT', scope, body: ctx.body, at: ctx.at });
        const commands = ctx.body.map((body) => buildCommand(ctx, scope, body, current));
        ctx.state.commands.set(scope, commands);
        return ok(commands);
      }),
    ),
    route(
      'POST',
      prefix,
      withScope((ctx, scope, current) => {
        ctx.state.commandWrites.push({ method: 'POST', scope, body: ctx.body, at: ctx.at });
        const command = buildCommand(ctx, scope, ctx.body, current);
        const isNew = !current.some((c) => c.id === command.id);
        ctx.state.commands.set(scope, [...current.filter((c) => c.id !== command.id), command]);
        return ok(command, isNew ? 201 : 200);
      }),
    ),
    route(
      'GET',
      `${prefix}/:command`,
      withScope((ctx, _scope, current) => {
        const command = current.find((c) => c.id === ctx.params.command);
        return command ? ok(command) : apiError(404, 10063, 'Unknown application command');
      }),
    ),
    route(
      'DELETE',
      `${prefix}/:command`,
      withScope((ctx, scope, current) => {
        if (!current.some((c) => c.id === ctx.params.command)) return apiError(404, 10063, 'Unknown application command');
        ctx.state.commands.set(scope, current.filter((c) => c.id !== ctx.params.command));
        return noContent();
      }),
    ),
  ];
}

export const restRoutes: Route[] = [
  route('GET', '/gateway/bot', gatewayBot),
  route('GET', '/gateway', (ctx) => ok({ url: ctx.gatewayUrl }), { auth: false }),
  route('GET', '/users/@me', (ctx) => ok(userPayload(ctx.state.botUser))),
  route('GET', '/users/:user', getUser),
  route('POST', '/users/@me/channels', createDm),
  route('GET', '/applications/@me', (ctx) =>
    ok({
      id: ctx.state.applicationId,
      name: ctx.state.botUser.username,
      description: '',
      icon: null,
      flags: 0,
      bot_public: true,
      bot_require_code_grant: false,
      verify_key: '',
      bot: userPayload(ctx.state.botUser),
    }),
  ),
  route('GET', '/guilds/:guild', (ctx) => {
    const guild = guildOf(ctx);
    return guild ? ok(guildPayload(guild)) : unknownGuild();
  }),
  route('GET', '/guilds/:guild/roles', (ctx) => {
    const guild = guildOf(ctx);
    return guild ? ok([...guild.roles.values()].map(rolePayload)) : unknownGuild();
  }),
  route('GET', '/guilds/:guild/channels', (ctx) => {
    const guild = guildOf(ctx);
    if (!guild) return unknownGuild();
    return ok(guild.channelIds.flatMap((id) => {
      const channel = ctx.state.channels.get(id);
      return channel ? [channelPayload(ctx.state, channel)] : [];
    }));
  }),
  route('GET', '/guilds/:guild/members/:user', getMember),
  route('GET', '/channels/:channel', (ctx) => {
    const channel = ctx.state.channels.get(ctx.params.channel ?? '');
    return channel ? ok(channelPayload(ctx.state, channel)) : apiError(404, 10003, 'Unknown Channel');
  }),
  route('POST', '/channels/:channel/messages', createMessage),
  ...commandRoutes('/applications/:app/commands'),
  ...commandRoutes('/applications/:app/guilds/:guild/commands'),
];
