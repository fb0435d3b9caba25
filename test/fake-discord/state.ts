import { PermissionFlagsBits } from 'discord.js';
import type { APIApplicationCommand, APIEmbed, APIMessage } from 'discord.js';
import { snowflake } from './ids.ts';
import type { InteractionHandle } from './interaction-handle.ts';

export const ALL_PERMISSIONS: bigint = Object.values(PermissionFlagsBits).reduce((a, b) => a | b, 0n);

export interface FakeUser {
  id: string;
  username: string;
  globalName: string | null;
  bot: boolean;
}

export interface FakeRole {
  id: string;
  name: string;
  permissions: string;
  position: number;
}

export interface FakeMember {
  userId: string;
  roles: string[];
  joinedAt: string;
}

export interface FakeChannel {
  id: string;
  kind: 'text' | 'dm';
  name: string | null;
  guildId: string | null;
  recipientId: string | null;
}

export interface FakeGuild {
  id: string;
  name: string;
  ownerId: string;
  roles: Map<string, FakeRole>;
  members: Map<string, FakeMember>;
  channelIds: string[];
  unavailable: boolean;
  joinedAt: string;
}

export interface RoleInput {
  id: string;
  name?: string;
  permissions: string;
  position?: number;
}

export interface MemberInput {
  userId: string;
  username?: string;
  roles?: string[];
}

export interface GuildInput {
  id?: string;
  name?: string;
  ownerId: string;
  roles?: RoleInput[];
  members?: MemberInput[];
  /** Roles of the bot's own member (drives `app_permissions`). */
  botRoles?: string[];
}

export interface DmRecord {
  userId: string;
  channelId: string;
  messageId: string;
  content: string;
  embeds: APIEmbed[];
  at: number;
}

export interface ChannelMessageRecord {
  channelId: string;
  guildId: string;
  messageId: string;
  content: string;
  embeds: APIEmbed[];
  at: number;
}

/** A write of application commands: a bulk overwrite (PUT) or one command upserted by name (POST). */
export interface CommandWrite {
  method: 'PUT' | 'POST';
  scope: 'global' | string;
  body: unknown;
  at: number;
}

/** GET /gateway/bot's `session_start_limit`. */
export interface SessionStartLimit {
  total: number;
  remaining: number;
  reset_after: number;
  max_concurrency: number;
}

/** Everything the fake knows: the Discord-side data plus records of what the bot did. */
export class FakeState {
  readonly users = new Map<string, FakeUser>();
  readonly guilds = new Map<string, FakeGuild>();
  readonly channels = new Map<string, FakeChannel>();
  readonly messages = new Map<string, APIMessage>();
  /** Stored application commands by scope: 'global' or a guild id. */
  readonly commands = new Map<string, APIApplicationCommand[]>();
  readonly interactions = new Map<string, InteractionHandle>();
  readonly interactionsByToken = new Map<string, InteractionHandle>();
  readonly dmBlocked = new Set<string>();
  readonly dms: DmRecord[] = [];
  readonly channelMessages: ChannelMessageRecord[] = [];
  readonly commandWrites: CommandWrite[] = [];
  /** What GET /gateway/bot answers (besides the URL). */
  readonly gatewayBot: { shards: number; sessionStartLimit: SessionStartLimit } = {
    shards: 1,
    sessionStartLimit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
  };

  constructor(
    readonly botUser: FakeUser,
    readonly applicationId: string,
    readonly interactionTimeoutMs: number,
  ) {
    this.users.set(botUser.id, botUser);
  }

  ensureUser(id: string, username?: string): FakeUser {
    let user = this.users.get(id);
    if (!user) {
      user = { id, username: username ?? `user_${id}`, globalName: null, bot: false };
      this.users.set(id, user);
    } else if (username) {
      user.username = username;
    }
    return user;
  }

  addGuild(input: GuildInput): FakeGuild {
    const id = input.id ?? snowflake();
    const guild: FakeGuild = {
      id,
      name: input.name ?? `Guild ${id}`,
      ownerId: input.ownerId,
      roles: new Map(),
      members: new Map(),
      channelIds: [],
      unavailable: false,
      joinedAt: new Date().toISOString(),
    };
    guild.roles.set(id, { id, name: '@everyone', permissions: '0', position: 0 });
    input.roles?.forEach((role, i) => this.upsertRole(guild, role, i + 1));
    this.addMember(guild, { userId: input.ownerId });
    for (const member of input.members ?? []) this.addMember(guild, member);
    this.addMember(guild, { userId: this.botUser.id, roles: input.botRoles ?? [] });
    const channel: FakeChannel = { id: snowflake(), kind: 'text', name: 'general', guildId: id, recipientId: null };
    this.channels.set(channel.id, channel);
    guild.channelIds.push(channel.id);
    this.guilds.set(id, guild);
    return guild;
  }

  removeGuild(guild: FakeGuild): void {
    for (const channelId of guild.channelIds) this.channels.delete(channelId);
    this.guilds.delete(guild.id);
    this.commands.delete(guild.id);
  }

  upsertRole(guild: FakeGuild, input: RoleInput, position = guild.roles.size): FakeRole {
    const existing = guild.roles.get(input.id);
    const role: FakeRole = {
      id: input.id,
      name: input.name ?? existing?.name ?? (input.id === guild.id ? '@everyone' : `role-${input.id}`),
      permissions: input.permissions,
      position: input.position ?? existing?.position ?? position,
    };
    guild.roles.set(role.id, role);
    return role;
  }

  addMember(guild: FakeGuild, input: MemberInput): FakeMember {
    this.ensureUser(input.userId, input.username);
    const existing = guild.members.get(input.userId);
    const member: FakeMember = {
      userId: input.userId,
      roles: input.roles ?? existing?.roles ?? [],
      joinedAt: existing?.joinedAt ?? new Date().toISOString(),
    };
    guild.members.set(member.userId, member);
    return member;
  }

  guild(id: string): FakeGuild {
    const guild = this.guilds.get(id);
    if (!guild) throw new Error(`FakeDiscord: unknown guild ${id}`);
    return guild;
  }

  member(guild: FakeGuild, userId: string): FakeMember {
    const member = guild.members.get(userId);
    if (!member) throw new Error(`FakeDiscord: user ${userId} is not a member of guild ${guild.id}`);
    return member;
  }

  /** Permissions from @everyone plus the member's roles; the owner and ADMINISTRATOR get everything. */
  permissions(guild: FakeGuild, userId: string): bigint {
    if (guild.ownerId === userId) return ALL_PERMISSIONS;
    const member = guild.members.get(userId);
    const roleIds = [guild.id, ...(member?.roles ?? [])];
    let bits = 0n;
    for (const roleId of roleIds) bits |= BigInt(guild.roles.get(roleId)?.permissions ?? '0');
    return bits & PermissionFlagsBits.Administrator ? ALL_PERMISSIONS : bits;
  }

  dmChannelFor(userId: string): FakeChannel {
    for (const channel of this.channels.values()) {
      if (channel.kind === 'dm' && channel.recipientId === userId) return channel;
    }
    const channel: FakeChannel = { id: snowflake(), kind: 'dm', name: null, guildId: null, recipientId: userId };
    this.channels.set(channel.id, channel);
    return channel;
  }
}
