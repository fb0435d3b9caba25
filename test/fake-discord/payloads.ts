import {
  ApplicationCommandOptionType,
  ApplicationCommandType,
  ApplicationIntegrationType,
  ChannelType,
  ComponentType,
  GuildDefaultMessageNotifications,
  GuildExplicitContentFilter,
  GuildMFALevel,
  GuildNSFWLevel,
  GuildPremiumTier,
  GuildVerificationLevel,
  InteractionContextType,
  InteractionType,
  Locale,
  MessageType,
} from 'discord.js';
import type {
  APIApplicationCommand,
  APIApplicationCommandAutocompleteGuildInteraction,
  APIApplicationCommandInteractionDataBasicOption,
  APIApplicationCommandInteractionDataOption,
  APIChatInputApplicationCommandGuildInteraction,
  APIMessageComponentGuildInteraction,
  APIDMChannel,
  APITextChannel,
  ChannelFlags,
  GuildMemberFlags,
  GuildSystemChannelFlags,
  RoleFlags,
  APIEmbed,
  APIGuild,
  APIGuildMember,
  APIInteractionGuildMember,
  APIMessage,
  APIMessageInteractionMetadata,
  APIRole,
  APIUser,
  GatewayGuildCreateDispatchData,
} from 'discord.js';
import { snowflake } from './ids.ts';

/** Flag enums have no 0 member; an empty bitfield is still valid on the wire. */
const NO_FLAGS = 0 as ChannelFlags & GuildMemberFlags & GuildSystemChannelFlags & RoleFlags;
import type { FakeChannel, FakeGuild, FakeMember, FakeRole, FakeState, FakeUser } from './state.ts';
import { onShard, type Shard } from './shards.ts';

export function userPayload(user: FakeUser): APIUser {
  return {
    id: user.id,
    username: user.username,
    discriminator: '0',
    global_name: user.globalName,
    avatar: null,
    ...(user.bot ? { bot: true } : {}),
  };
}

export function rolePayload(role: FakeRole): APIRole {
  return {
    id: role.id,
    name: role.name,
    permissions: role.permissions,
    position: role.position,
    color: 0,
    colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
    hoist: false,
    managed: false,
    mentionable: false,
    flags: NO_FLAGS,
  };
}

export function memberPayload(state: FakeState, member: FakeMember): APIGuildMember {
  return {
    user: userPayload(state.ensureUser(member.userId)),
    roles: [...member.roles],
    joined_at: member.joinedAt,
    nick: null,
    avatar: null,
    deaf: false,
    mute: false,
    flags: NO_FLAGS,
  };
}

export function interactionMemberPayload(state: FakeState, member: FakeMember, permissions: string): APIInteractionGuildMember {
  return { ...memberPayload(state, member), permissions };
}

export function channelPayload(state: FakeState, channel: FakeChannel): APIDMChannel | APITextChannel {
  if (channel.kind === 'dm') {
    return {
      id: channel.id,
      type: ChannelType.DM,
      name: null,
      recipients: [userPayload(state.ensureUser(channel.recipientId ?? ''))],
      last_message_id: null,
      flags: NO_FLAGS,
    };
  }
  return {
    id: channel.id,
    type: ChannelType.GuildText,
    guild_id: channel.guildId ?? undefined,
    name: channel.name ?? 'general',
    position: 0,
    permission_overwrites: [],
    parent_id: null,
    topic: null,
    nsfw: false,
    last_message_id: null,
    rate_limit_per_user: 0,
    flags: NO_FLAGS,
  };
}

export function guildPayload(guild: FakeGuild): APIGuild {
  return {
    id: guild.id,
    name: guild.name,
    owner_id: guild.ownerId,
    roles: [...guild.roles.values()].map(rolePayload),
    icon: null,
    splash: null,
    discovery_splash: null,
    banner: null,
    description: null,
    afk_channel_id: null,
    afk_timeout: 300,
    verification_level: GuildVerificationLevel.None,
    default_message_notifications: GuildDefaultMessageNotifications.OnlyMentions,
    explicit_content_filter: GuildExplicitContentFilter.Disabled,
    mfa_level: GuildMFALevel.None,
    nsfw_level: GuildNSFWLevel.Default,
    premium_tier: GuildPremiumTier.None,
    premium_progress_bar_enabled: false,
    features: [],
    emojis: [],
    stickers: [],
    application_id: null,
    system_channel_id: guild.channelIds[0] ?? null,
    system_channel_flags: NO_FLAGS,
    rules_channel_id: null,
    public_updates_channel_id: null,
    safety_alerts_channel_id: null,
    vanity_url_code: null,
    preferred_locale: Locale.EnglishUS,
    max_video_channel_users: 25,
    max_stage_video_channel_users: 50,
    hub_type: null,
    incidents_data: null,
    region: 'us-west',
  };
}

export function guildCreatePayload(state: FakeState, guild: FakeGuild): GatewayGuildCreateDispatchData {
  return {
    ...guildPayload(guild),
    unavailable: false,
    joined_at: guild.joinedAt,
    large: false,
    member_count: guild.members.size,
    members: [memberPayload(state, state.member(guild, state.botUser.id))],
    channels: guild.channelIds.flatMap((id) => {
      const channel = state.channels.get(id);
      return channel?.kind === 'text' ? [channelPayload(state, channel) as APITextChannel] : [];
    }),
    threads: [],
    presences: [],
    voice_states: [],
    stage_instances: [],
    guild_scheduled_events: [],
    soundboard_sounds: [],
  };
}

export function readyPayload(state: FakeState, sessionId: string, gatewayUrl: string, shard: Shard = [0, 1]) {
  return {
    v: 10,
    user: { ...userPayload(state.botUser), bot: true, verified: true, mfa_enabled: false, flags: 0 },
    guilds: [...state.guilds.keys()].filter((id) => onShard(id, shard)).map((id) => ({ id, unavailable: true })),
    session_id: sessionId,
    resume_gateway_url: gatewayUrl,
    shard: [...shard],
    application: { id: state.applicationId, flags: 0 },
    private_channels: [],
    presences: [],
    relationships: [],
    guild_join_requests: [],
    geo_ordered_rtc_regions: [],
    user_settings: {},
  };
}

/** Answers an op 8 member request (by `user_ids`, or by username prefix `query`) in one chunk. */
export function memberChunkPayloads(state: FakeState, request: Record<string, unknown>): unknown[] {
  const guild = state.guilds.get(String(request.guild_id));
  if (!guild) return [];
  const ids = request.user_ids;
  const wanted = Array.isArray(ids) ? ids.map(String) : typeof ids === 'string' ? [ids] : null;
  const query = typeof request.query === 'string' ? request.query.toLowerCase() : '';
  const limit = typeof request.limit === 'number' && request.limit > 0 ? request.limit : Infinity;
  const members = [...guild.members.values()]
    .filter((m) => (wanted ? wanted.includes(m.userId) : state.ensureUser(m.userId).username.toLowerCase().startsWith(query)))
    .slice(0, limit);
  return [
    {
      guild_id: guild.id,
      members: members.map((m) => memberPayload(state, m)),
      chunk_index: 0,
      chunk_count: 1,
      not_found: wanted?.filter((id) => !guild.members.has(id)) ?? [],
      ...(request.nonce !== undefined ? { nonce: request.nonce } : {}),
    },
  ];
}

export interface MessageInput {
  channelId: string;
  guildId?: string | null;
  author: FakeUser;
  content?: string;
  embeds?: APIEmbed[];
  components?: APIMessage['components'];
  flags?: number;
  webhookId?: string;
  interactionMetadata?: APIMessageInteractionMetadata;
}

export function messagePayload(state: FakeState, input: MessageInput): APIMessage {
  const message: APIMessage = {
    id: snowflake(),
    type: input.interactionMetadata ? MessageType.ChatInputCommand : MessageType.Default,
    channel_id: input.channelId,
    author: userPayload(input.author),
    content: input.content ?? '',
    embeds: input.embeds ?? [],
    components: input.components ?? [],
    attachments: [],
    mentions: [],
    mention_roles: [],
    mention_everyone: false,
    pinned: false,
    tts: false,
    timestamp: new Date().toISOString(),
    edited_timestamp: null,
    flags: input.flags ?? 0,
  };
  if (input.webhookId) {
    message.webhook_id = input.webhookId;
    message.application_id = state.applicationId;
  }
  if (input.interactionMetadata) message.interaction_metadata = input.interactionMetadata;
  // discord.js reads guild_id off messages; the API type omits it for messages sent over REST.
  return input.guildId ? ({ ...message, guild_id: input.guildId } as APIMessage) : message;
}

export function commandPayload(
  state: FakeState,
  body: Record<string, unknown>,
  guildId: string | null,
  id: string,
): APIApplicationCommand {
  const command: Record<string, unknown> = {
    type: 1,
    description: '',
    options: [],
    default_member_permissions: null,
    nsfw: false,
    contexts: null,
    integration_types: [0],
    ...body,
    id,
    application_id: state.applicationId,
    version: snowflake(),
    ...(guildId ? { guild_id: guildId } : {}),
  };
  return command as unknown as APIApplicationCommand;
}

export type OptionValue = string | number | boolean;

export interface InteractionContext {
  id: string;
  token: string;
  guild: FakeGuild;
  channel: FakeChannel;
  member: FakeMember;
  /** The invoker's `member.permissions`. */
  permissions: string;
}

function interactionBase(state: FakeState, ctx: InteractionContext) {
  return {
    id: ctx.id,
    application_id: state.applicationId,
    token: ctx.token,
    version: 1 as const,
    guild_id: ctx.guild.id,
    guild: { id: ctx.guild.id, locale: Locale.EnglishUS, features: [] },
    channel_id: ctx.channel.id,
    channel: channelPayload(state, ctx.channel),
    member: interactionMemberPayload(state, ctx.member, ctx.permissions),
    app_permissions: state.permissions(ctx.guild, state.botUser.id).toString(),
    locale: Locale.EnglishUS,
    guild_locale: Locale.EnglishUS,
    entitlements: [],
    authorizing_integration_owners: { [ApplicationIntegrationType.GuildInstall]: ctx.guild.id },
    context: InteractionContextType.Guild,
    attachment_size_limit: 26_214_400,
  };
}

function basicOption(name: string, value: OptionValue): APIApplicationCommandInteractionDataBasicOption {
  if (typeof value === 'string') return { name, type: ApplicationCommandOptionType.String, value };
  if (typeof value === 'boolean') return { name, type: ApplicationCommandOptionType.Boolean, value };
  const type = Number.isInteger(value) ? ApplicationCommandOptionType.Integer : ApplicationCommandOptionType.Number;
  return { name, type, value };
}

export interface CommandData {
  name: string;
  subcommand?: string;
  options?: Record<string, OptionValue>;
  /** Autocomplete: the option being typed and its partial value. */
  focused?: { name: string; value: string };
}

function commandOptions(data: CommandData): APIApplicationCommandInteractionDataOption[] {
  const options = Object.entries(data.options ?? {}).map(([name, value]) => basicOption(name, value));
  if (data.focused) {
    options.push({ name: data.focused.name, type: ApplicationCommandOptionType.String, value: data.focused.value, focused: true });
  }
  return data.subcommand ? [{ name: data.subcommand, type: ApplicationCommandOptionType.Subcommand, options }] : options;
}

/** The id of the registered command with this name (guild scope first), or a stable made-up one. */
function commandId(state: FakeState, guildId: string, name: string): { id: string; guildId?: string } {
  const guildCommand = state.commands.get(guildId)?.find((c) => c.name === name);
  if (guildCommand) return { id: guildCommand.id, guildId };
  return { id: state.commands.get('global')?.find((c) => c.name === name)?.id ?? '0' };
}

/** The `data` of a chat-input command interaction, shared by commands and their autocomplete. */
function chatInputData(state: FakeState, ctx: InteractionContext, data: CommandData) {
  const command = commandId(state, ctx.guild.id, data.name);
  return {
    id: command.id,
    name: data.name,
    type: ApplicationCommandType.ChatInput as const,
    options: commandOptions(data),
    ...(command.guildId ? { guild_id: command.guildId } : {}),
  };
}

export function chatInputInteraction(state: FakeState, ctx: InteractionContext, data: CommandData): APIChatInputApplicationCommandGuildInteraction {
  return { ...interactionBase(state, ctx), type: InteractionType.ApplicationCommand, data: chatInputData(state, ctx, data) };
}

export function autocompleteInteraction(state: FakeState, ctx: InteractionContext, data: CommandData): APIApplicationCommandAutocompleteGuildInteraction {
  return { ...interactionBase(state, ctx), type: InteractionType.ApplicationCommandAutocomplete, data: chatInputData(state, ctx, data) };
}

export function componentInteraction(
  state: FakeState,
  ctx: InteractionContext,
  message: APIMessage,
  customId: string,
  values?: string[],
): APIMessageComponentGuildInteraction {
  const data = values
    ? { custom_id: customId, component_type: ComponentType.StringSelect as const, values }
    : { custom_id: customId, component_type: ComponentType.Button as const };
  return {
    ...interactionBase(state, ctx),
    type: InteractionType.MessageComponent,
    message,
    data,
  };
}

/** A MESSAGE_CREATE dispatch's `d`: a plain text message by a (not necessarily known) user. */
export function messageCreatePayload(m: { id: string; channelId: string; guildId: string; authorId: string; content: string; username?: string }): Record<string, unknown> {
  return {
    id: m.id,
    channel_id: m.channelId,
    guild_id: m.guildId,
    author: { id: m.authorId, username: m.username ?? 'someone', discriminator: '0', global_name: null, avatar: null },
    content: m.content,
    timestamp: new Date().toISOString(),
    edited_timestamp: null,
    tts: false,
    mention_everyone: false,
    mentions: [],
    mention_roles: [],
    attachments: [],
    embeds: [],
    pinned: false,
    type: 0,
  };
}
