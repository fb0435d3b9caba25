import { MessageFlags } from 'discord.js';
import type { APIInteraction, APIMessage } from 'discord.js';
import { interactionToken, snowflake } from './ids.ts';
import { InteractionHandle } from './interaction-handle.ts';
import { autocompleteInteraction, chatInputInteraction, componentInteraction } from './payloads.ts';
import type { CommandData, InteractionContext, OptionValue } from './payloads.ts';
import type { FakeState } from './state.ts';

export interface InvokerOptions {
  guildId: string;
  userId: string;
  /** The invoker's `member.permissions`; defaults to what their roles grant. */
  permissions?: string;
}

export interface CommandOptions extends InvokerOptions {
  name: string;
  subcommand?: string;
  options?: Record<string, OptionValue>;
}

export interface AutocompleteOptions extends CommandOptions {
  /** Name of the option being typed. */
  focused: string;
  /** What the user has typed so far. */
  value: string;
}

export interface ComponentOptions extends InvokerOptions {
  customId: string;
  /**
   * The message carrying the component: its id, or the message the bot sent (the fake's stored copy
   * wins; an unknown API message object is used as given).
   */
  message: string | { id: string } | APIMessage;
  /** For a string select menu: the chosen values (otherwise a button press is sent). */
  values?: string[];
}

function context(state: FakeState, options: InvokerOptions): InteractionContext {
  const guild = state.guild(options.guildId);
  const channel = state.channels.get(guild.channelIds[0] ?? '');
  if (!channel) throw new Error(`FakeDiscord: guild ${guild.id} has no text channel`);
  return {
    id: snowflake(),
    token: interactionToken(),
    guild,
    channel,
    member: state.member(guild, options.userId),
    permissions: options.permissions ?? state.permissions(guild, options.userId).toString(),
  };
}

function register(state: FakeState, payload: APIInteraction, originalMessageId?: string): InteractionHandle {
  const handle = new InteractionHandle(payload, state.messages, originalMessageId);
  state.interactions.set(handle.id, handle);
  state.interactionsByToken.set(handle.token, handle);
  return handle;
}

function commandData(options: CommandOptions): CommandData {
  return { name: options.name, subcommand: options.subcommand, options: options.options };
}

export function createCommand(state: FakeState, options: CommandOptions): InteractionHandle {
  return register(state, chatInputInteraction(state, context(state, options), commandData(options)));
}

export function createAutocomplete(state: FakeState, options: AutocompleteOptions): InteractionHandle {
  const data = { ...commandData(options), focused: { name: options.focused, value: options.value } };
  return register(state, autocompleteInteraction(state, context(state, options), data));
}

export function createComponent(state: FakeState, options: ComponentOptions): InteractionHandle {
  const given = options.message;
  const id = typeof given === 'string' ? given : given.id;
  const message = state.messages.get(id) ?? (typeof given === 'object' && 'channel_id' in given ? given : undefined);
  if (!message) throw new Error(`FakeDiscord: unknown message ${id}`);
  if (!message.interaction_metadata) throw new Error(`FakeDiscord: message ${id} has no interaction_metadata`);
  const component = findComponent(message.components ?? [], options.customId);
  if (!component) throw new Error(`FakeDiscord: message ${id} has no component "${options.customId}"`);
  if (component.disabled) throw new Error(`FakeDiscord: component "${options.customId}" is disabled`);
  const ephemeral = ((message.flags ?? 0) & MessageFlags.Ephemeral) !== 0;
  if (ephemeral && message.interaction_metadata.user.id !== options.userId) {
    throw new Error(`FakeDiscord: user ${options.userId} cannot see ephemeral message ${id}`);
  }
  const payload = componentInteraction(state, context(state, options), message, options.customId, options.values);
  return register(state, payload, message.id);
}

interface ComponentLike {
  custom_id?: unknown;
  disabled?: unknown;
  components?: unknown;
  accessory?: unknown;
}

function findComponent(components: readonly unknown[], customId: string): ComponentLike | null {
  for (const item of components) {
    if (typeof item !== 'object' || item === null) continue;
    const component = item as ComponentLike;
    if (component.custom_id === customId) return component;
    const children = [
      ...(Array.isArray(component.components) ? component.components : []),
      ...(component.accessory ? [component.accessory] : []),
    ];
    const found = findComponent(children, customId);
    if (found) return found;
  }
  return null;
}
