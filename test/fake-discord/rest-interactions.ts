import { performance } from 'node:perf_hooks';
import { InteractionResponseType, InteractionType, MessageFlags } from 'discord.js';
import type { APIEmbed, APIMessage, APIMessageInteractionMetadata } from 'discord.js';
import { apiError, isRecord, noContent, ok } from './http.ts';
import type { RestResult } from './http.ts';
import type { InteractionHandle } from './interaction-handle.ts';
import { messagePayload } from './payloads.ts';
import { route } from './router.ts';
import type { Route, RouteContext } from './router.ts';
import type { FakeState } from './state.ts';

const unknownInteraction = () => apiError(404, 10062, 'Unknown interaction');
const unknownWebhook = () => apiError(404, 10015, 'Unknown Webhook');
const unknownMessage = () => apiError(404, 10008, 'Unknown Message');
/** Only these flags can be set on an interaction message; LOADING marks a deferred reply. */
const SETTABLE_FLAGS = MessageFlags.SuppressEmbeds | MessageFlags.Ephemeral | MessageFlags.IsComponentsV2;
const LOADING = MessageFlags.Loading;

type MessageData = Record<string, unknown>;

function metadata(handle: InteractionHandle, originalResponseId?: string): APIMessageInteractionMetadata {
  const { payload } = handle;
  const user = payload.member?.user ?? payload.user;
  if (!user) throw new Error('FakeDiscord: interaction without a user');
  const base = {
    id: payload.id,
    user,
    authorizing_integration_owners: payload.authorizing_integration_owners,
    ...(originalResponseId ? { original_response_message_id: originalResponseId } : {}),
  };
  if (payload.type === InteractionType.MessageComponent) {
    return { ...base, type: InteractionType.MessageComponent, interacted_message_id: payload.message.id };
  }
  return { ...base, type: InteractionType.ApplicationCommand };
}

function createMessage(state: FakeState, handle: InteractionHandle, data: MessageData, extraFlags = 0, followUp = false): APIMessage {
  const flags = (typeof data.flags === 'number' ? data.flags & SETTABLE_FLAGS : 0) | extraFlags;
  const message = messagePayload(state, {
    channelId: handle.payload.channel?.id ?? '',
    guildId: handle.payload.guild_id ?? null,
    author: state.botUser,
    content: typeof data.content === 'string' ? data.content : '',
    embeds: Array.isArray(data.embeds) ? (data.embeds as APIEmbed[]) : [],
    components: Array.isArray(data.components) ? (data.components as APIMessage['components']) : [],
    flags,
    webhookId: state.applicationId,
    interactionMetadata: metadata(handle, followUp ? (handle.originalMessageId ?? undefined) : undefined),
  });
  state.messages.set(message.id, message);
  return message;
}

/** Applies an edit in place; a deferred (loading) message loses its LOADING flag. */
function editMessage(message: APIMessage, data: MessageData): APIMessage {
  const wasLoading = ((message.flags ?? 0) & LOADING) !== 0;
  if (typeof data.content === 'string' || data.content === null) message.content = data.content ?? '';
  if (Array.isArray(data.embeds)) message.embeds = data.embeds as APIEmbed[];
  if (Array.isArray(data.components)) message.components = data.components as APIMessage['components'];
  const keep = (message.flags ?? 0) & MessageFlags.Ephemeral;
  const set = typeof data.flags === 'number' ? data.flags & (MessageFlags.SuppressEmbeds | MessageFlags.IsComponentsV2) : 0;
  message.flags = keep | set;
  if (!wasLoading) message.edited_timestamp = new Date().toISOString();
  return message;
}

function callback(ctx: RouteContext): RestResult {
  const { state } = ctx;
  const handle = state.interactions.get(ctx.params.interaction ?? '');
  if (!handle || handle.token !== ctx.params.token) return unknownInteraction();
  // Measured when handled, so held or delayed callbacks can expire like slow ones do on Discord.
  if (performance.now() - handle.sentAt > state.interactionTimeoutMs) return unknownInteraction();
  if (handle.callback) return apiError(400, 40060, 'Interaction has already been acknowledged.');
  const body = isRecord(ctx.body) ? ctx.body : {};
  const data = isRecord(body.data) ? body.data : {};
  let message: APIMessage | undefined;
  switch (body.type) {
    case InteractionResponseType.ChannelMessageWithSource:
      message = createMessage(state, handle, data);
      handle.originalMessageId = message.id;
      break;
    case InteractionResponseType.DeferredChannelMessageWithSource:
      message = createMessage(state, handle, { flags: data.flags }, LOADING);
      handle.originalMessageId = message.id;
      break;
    case InteractionResponseType.UpdateMessage:
    case InteractionResponseType.DeferredMessageUpdate: {
      if (handle.payload.type !== InteractionType.MessageComponent && handle.payload.type !== InteractionType.ModalSubmit) {
        return apiError(400, 40043, 'Interaction has invalid response type');
      }
      message = handle.message;
      if (message && body.type === InteractionResponseType.UpdateMessage) editMessage(message, data);
      break;
    }
    case InteractionResponseType.ApplicationCommandAutocompleteResult:
    case InteractionResponseType.Modal:
      break;
    default:
      return apiError(400, 50035, 'Invalid Form Body');
  }
  handle.record({ kind: 'callback', body, at: ctx.at, messageId: message?.id ?? null });
  if (ctx.query.get('with_response') !== 'true') return noContent();
  return ok({
    interaction: {
      id: handle.id,
      type: handle.payload.type,
      response_message_id: message?.id,
      response_message_loading: message ? ((message.flags ?? 0) & LOADING) !== 0 : undefined,
      response_message_ephemeral: message ? ((message.flags ?? 0) & MessageFlags.Ephemeral) !== 0 : undefined,
    },
    resource: { type: body.type, ...(message ? { message } : {}) },
  });
}

function handleOf(ctx: RouteContext): InteractionHandle | null {
  if (ctx.params.app !== ctx.state.applicationId) return null;
  return ctx.state.interactionsByToken.get(ctx.params.token ?? '') ?? null;
}

function messageOf(ctx: RouteContext, handle: InteractionHandle): APIMessage | null {
  const id = ctx.params.message === '@original' ? handle.originalMessageId : ctx.params.message;
  return (id && ctx.state.messages.get(id)) || null;
}

function followUp(ctx: RouteContext): RestResult {
  const handle = handleOf(ctx);
  if (!handle || !handle.callback) return unknownWebhook();
  const data = isRecord(ctx.body) ? ctx.body : {};
  const original = handle.message;
  // The first follow-up after a deferral fills in the "thinking…" message instead of posting a new one.
  const loading = original && ((original.flags ?? 0) & LOADING) !== 0 ? original : null;
  const message = loading ? editMessage(loading, data) : createMessage(ctx.state, handle, data, 0, true);
  handle.record({ kind: 'followup', body: data, at: ctx.at, messageId: message.id });
  return ok(message);
}

function editWebhookMessage(ctx: RouteContext): RestResult {
  const handle = handleOf(ctx);
  if (!handle) return unknownWebhook();
  const message = messageOf(ctx, handle);
  if (!message) return unknownMessage();
  const body = isRecord(ctx.body) ? ctx.body : {};
  editMessage(message, body);
  handle.record({ kind: 'edit', body, at: ctx.at, messageId: message.id });
  return ok(message);
}

function getWebhookMessage(ctx: RouteContext): RestResult {
  const handle = handleOf(ctx);
  if (!handle) return unknownWebhook();
  const message = messageOf(ctx, handle);
  return message ? ok(message) : unknownMessage();
}

function deleteWebhookMessage(ctx: RouteContext): RestResult {
  const handle = handleOf(ctx);
  if (!handle) return unknownWebhook();
  const message = messageOf(ctx, handle);
  if (!message) return unknownMessage();
  ctx.state.messages.delete(message.id);
  handle.record({ kind: 'delete', body: {}, at: ctx.at, messageId: message.id });
  return noContent();
}

export const interactionRoutes: Route[] = [
  route('POST', '/interactions/:interaction/:token/callback', callback, { auth: false }),
  route('POST', '/webhooks/:app/:token', followUp, { auth: false }),
  route('GET', '/webhooks/:app/:token/messages/:message', getWebhookMessage, { auth: false }),
  route('PATCH', '/webhooks/:app/:token/messages/:message', editWebhookMessage, { auth: false }),
  route('DELETE', '/webhooks/:app/:token/messages/:message', deleteWebhookMessage, { auth: false }),
];
