import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { GatewayIntentBits } from 'discord.js';
import type { APIApplicationCommand, APIUser } from 'discord.js';
import { API_PREFIX, ApiHandler } from './api.ts';
import type { RequestRecord } from './api.ts';
import { handleControl } from './control.ts';
import { Gateway } from './gateway.ts';
import type { IdentifyRecord } from './gateway.ts';
import type { FailOptions, RoutePattern } from './hooks.ts';
import { apiError, send } from './http.ts';
import { snowflake } from './ids.ts';
import type { InteractionHandle } from './interaction-handle.ts';
import { createAutocomplete, createCommand, createComponent } from './interactions.ts';
import type { AutocompleteOptions, CommandOptions, ComponentOptions } from './interactions.ts';
import { guildCreatePayload, memberChunkPayloads, memberPayload, readyPayload, rolePayload, userPayload } from './payloads.ts';
import { startServer } from './server.ts';
import type { RunningServer } from './server.ts';
import { FakeState } from './state.ts';
import type { SessionStartLimit } from './state.ts';
import { onShard } from './shards.ts';
import type { ChannelMessageRecord, CommandWrite, DmRecord, GuildInput, MemberInput, RoleInput } from './state.ts';

export interface FakeDiscordOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Bot token; REST calls must send `Authorization: Bot <token>`. Default 'fake-token'. */
  token?: string;
  botUserId?: string;
  botUsername?: string;
  applicationId?: string;
  /** Keep it long (default 41250 ms) so no heartbeat lands inside a short test. */
  heartbeatIntervalMs?: number;
  /** Initial interaction callbacks arriving later than this get 404 Unknown interaction (default 3000 ms). */
  interactionTimeoutMs?: number;
  /** Serve the JSON control API under `/_control/`. */
  control?: boolean;
  /** GET /gateway/bot's recommended `shards` (default 1). */
  shards?: number;
  /** GET /gateway/bot's `session_start_limit` (default total/remaining 1000, reset_after 0, max_concurrency 1). */
  sessionStartLimit?: Partial<SessionStartLimit>;
}

/** A local Discord (REST v10 + JSON gateway) that a real discord.js client can log in to. */
export class FakeDiscord {
  readonly state: FakeState;
  readonly token: string;
  private readonly api: ApiHandler;
  private readonly gateway: Gateway;
  private server: RunningServer | null = null;

  private constructor(private readonly options: FakeDiscordOptions) {
    this.token = options.token ?? 'fake-token';
    const botUser = {
      id: options.botUserId ?? snowflake(),
      username: options.botUsername ?? 'Sandbox Bot',
      globalName: null,
      bot: true,
    };
    this.state = new FakeState(botUser, options.applicationId ?? botUser.id, options.interactionTimeoutMs ?? 3000);
    this.setGatewayBot({ shards: options.shards, sessionStartLimit: options.sessionStartLimit });
    this.api = new ApiHandler(this.state, this.token, () => this.gatewayUrl);
    this.gateway = new Gateway(
      {
        token: this.token,
        readyPayload: (sessionId, shard) => readyPayload(this.state, sessionId, this.gatewayUrl, shard),
        initialGuildCreates: (shard) =>
          [...this.state.guilds.values()].filter((g) => !g.unavailable && onShard(g.id, shard)).map((g) => guildCreatePayload(this.state, g)),
        memberChunks: (request) => memberChunkPayloads(this.state, request),
      },
      options.heartbeatIntervalMs ?? 41_250,
    );
  }

  static async start(options: FakeDiscordOptions = {}): Promise<FakeDiscord> {
    const fake = new FakeDiscord(options);
    fake.server = await startServer(options.port ?? 0, {
      request: (req, res) => fake.onRequest(req, res),
      upgrade: (req, socket, head) => fake.onUpgrade(req, socket, head),
    });
    return fake;
  }

  async stop(): Promise<void> {
    this.api.hooks.releaseAll();
    await this.gateway.close();
    await this.server?.close();
    this.server = null;
  }

  get port(): number {
    if (!this.server) throw new Error('FakeDiscord is not running');
    return this.server.port;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Pass as `rest: { api }` to the discord.js Client. */
  get apiBase(): string {
    return `${this.baseUrl}/api`;
  }

  get gatewayUrl(): string {
    return `ws://127.0.0.1:${this.port}/gateway`;
  }

  get applicationId(): string {
    return this.state.applicationId;
  }

  get botUser(): APIUser {
    return userPayload(this.state.botUser);
  }

  // --- records -------------------------------------------------------------------------------

  get requests(): readonly RequestRecord[] {
    return this.api.requests;
  }

  /** Requests that matched no route (answered 404). */
  get unhandled(): readonly RequestRecord[] {
    return this.api.unhandled;
  }

  get dms(): readonly DmRecord[] {
    return this.state.dms;
  }

  get channelMessages(): readonly ChannelMessageRecord[] {
    return this.state.channelMessages;
  }

  get commandWrites(): readonly CommandWrite[] {
    return this.state.commandWrites;
  }

  get interactions(): InteractionHandle[] {
    return [...this.state.interactions.values()];
  }

  /** Registered commands: `'global'` or a guild id. */
  commands(scope = 'global'): APIApplicationCommand[] {
    return this.state.commands.get(scope) ?? [];
  }

  on(event: 'request', listener: (request: RequestRecord) => void): this {
    this.api.on(event, listener);
    return this;
  }

  // --- gateway -------------------------------------------------------------------------------

  get connected(): boolean {
    return this.gateway.connected;
  }

  get identifies(): readonly IdentifyRecord[] {
    return this.gateway.identifies;
  }

  /** See {@link Gateway.waitForIdentify}; pass `count: fake.identifies.length + 1` to await a restart. */
  waitForIdentify(options?: { count?: number; timeoutMs?: number }): Promise<void> {
    return this.gateway.waitForIdentify(options);
  }

  /** Changes what GET /gateway/bot answers: the recommended shard count and the session start limit. */
  setGatewayBot({ shards, sessionStartLimit }: { shards?: number | undefined; sessionStartLimit?: Partial<SessionStartLimit> | undefined }): void {
    if (shards !== undefined) this.state.gatewayBot.shards = shards;
    Object.assign(this.state.gatewayBot.sessionStartLimit, sessionStartLimit);
  }

  /** Sends op 7 so connected clients reconnect and resume. */
  requestReconnect(): void {
    this.gateway.requestReconnect();
  }

  // --- guilds and members --------------------------------------------------------------------

  /** Adds a guild with the bot in it; a connected client gets GUILD_CREATE (`guildCreate`). */
  /**
   * Sends any gateway dispatch (MESSAGE_CREATE, GUILD_MEMBER_ADD, INTERACTION_CREATE, ...) to every session of the
   * shard owning its guild (`guild_id`; shard 0 without one) with the next sequence number; with `intent`, only to
   * sessions that identified with it. Returns how many sessions got it.
   */
  dispatchEvent(t: string, d: unknown, options: { intent?: GatewayIntentBits; guildId?: string | null } = {}): number {
    return this.gateway.dispatch(t, d, options);
  }

  /** Makes the client resume and replays its last `replay` events again after the RESUME (then RESUMED). */
  forceResume(replay = 0): void {
    this.gateway.forceResume(replay);
  }

  /** RESUMEs accepted so far. */
  get resumes(): number {
    return this.gateway.resumes;
  }

  /** Sessions survive a client's 1000/1001 close (as a killed process's session does): see Gateway.keepSessionsOnClose. */
  keepSessionsOnClose(keep = true): void {
    this.gateway.keepSessionsOnClose = keep;
  }

  /** Every accepted RESUME: its session, the seq the client resumed from, and how many dispatches were replayed. */
  get resumeLog(): ReadonlyArray<{ sessionId: string; seq: number; replayed: number }> {
    return this.gateway.resumeLog;
  }

  addGuild(input: GuildInput): string {
    const guild = this.state.addGuild(input);
    this.gateway.dispatch('GUILD_CREATE', guildCreatePayload(this.state, guild));
    return guild.id;
  }

  /**
   * `unavailable: true` simulates an outage (`guildUnavailable`; the guild stays, see
   * {@link restoreGuild}); otherwise the bot leaves the guild (`guildDelete`).
   */
  removeGuild(id: string, { unavailable = false }: { unavailable?: boolean } = {}): void {
    const guild = this.state.guild(id);
    if (unavailable) guild.unavailable = true;
    else this.state.removeGuild(guild);
    this.gateway.dispatch('GUILD_DELETE', unavailable ? { id, unavailable: true } : { id });
  }

  /** Ends an outage: GUILD_CREATE again (`guildAvailable`). */
  restoreGuild(id: string): void {
    const guild = this.state.guild(id);
    guild.unavailable = false;
    this.gateway.dispatch('GUILD_CREATE', guildCreatePayload(this.state, guild));
  }

  addMember(guildId: string, input: MemberInput): void {
    const guild = this.state.guild(guildId);
    const member = this.state.addMember(guild, input);
    this.dispatchMemberEvent('GUILD_MEMBER_ADD', { ...memberPayload(this.state, member), guild_id: guildId });
  }

  removeMember(guildId: string, userId: string): void {
    const guild = this.state.guild(guildId);
    guild.members.delete(userId);
    const user = userPayload(this.state.ensureUser(userId));
    this.dispatchMemberEvent('GUILD_MEMBER_REMOVE', { guild_id: guildId, user });
  }

  setMemberRoles(guildId: string, userId: string, roles: string[]): void {
    const guild = this.state.guild(guildId);
    const member = this.state.member(guild, userId);
    member.roles = [...roles];
    this.dispatchMemberEvent('GUILD_MEMBER_UPDATE', { ...memberPayload(this.state, member), guild_id: guildId });
  }

  /** Creates or updates a role (GUILD_ROLE_CREATE / GUILD_ROLE_UPDATE). */
  upsertRole(guildId: string, input: RoleInput): void {
    const guild = this.state.guild(guildId);
    const event = guild.roles.has(input.id) ? 'GUILD_ROLE_UPDATE' : 'GUILD_ROLE_CREATE';
    const role = this.state.upsertRole(guild, input);
    this.gateway.dispatch(event, { guild_id: guildId, role: rolePayload(role) });
  }

  /** Effective guild-level permissions: owner and ADMINISTRATOR have all. */
  userPermissions(guildId: string, userId: string): bigint {
    return this.state.permissions(this.state.guild(guildId), userId);
  }

  /** DMs to this user get 403 (50007 Cannot send messages to this user); `false` undoes it. */
  failDmsFor(userId: string, fail = true): void {
    if (fail) this.state.dmBlocked.add(userId);
    else this.state.dmBlocked.delete(userId);
  }

  // --- interactions --------------------------------------------------------------------------

  sendCommand(options: CommandOptions): InteractionHandle {
    return this.dispatchInteraction(createCommand(this.state, options));
  }

  sendAutocomplete(options: AutocompleteOptions): InteractionHandle {
    return this.dispatchInteraction(createAutocomplete(this.state, options));
  }

  sendComponent(options: ComponentOptions): InteractionHandle {
    return this.dispatchInteraction(createComponent(this.state, options));
  }

  // --- REST controls -------------------------------------------------------------------------

  /** Delays requests whose `"METHOD /path"` matches; returns a function removing the delay. */
  setLatency(pattern: RoutePattern, ms: number): () => void {
    return this.api.hooks.setLatency(pattern, ms);
  }

  /** Matching requests wait until the returned release function is called. */
  holdRoute(pattern: RoutePattern): () => void {
    return this.api.hooks.holdRoute(pattern);
  }

  /** The next matching request (or `times` of them) is answered with `status`; 429 carries Retry-After. */
  failNext(pattern: RoutePattern, status: number, options?: FailOptions): void {
    this.api.hooks.failNext(pattern, status, options);
  }

  // --- internals -----------------------------------------------------------------------------

  /** Member events need the privileged GuildMembers intent. */
  private dispatchMemberEvent(event: string, data: unknown): void {
    this.gateway.dispatch(event, data, { intent: GatewayIntentBits.GuildMembers });
  }

  private dispatchInteraction(handle: InteractionHandle): InteractionHandle {
    const sessions = this.gateway.dispatch('INTERACTION_CREATE', handle.payload, { latestOnly: true });
    if (sessions === 0) throw new Error('FakeDiscord: no gateway session to send the interaction to');
    return handle;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    try {
      if (url.pathname.startsWith(API_PREFIX)) return send(res, await this.api.handle(req, url));
      if (this.options.control && url.pathname.startsWith('/_control/')) {
        return send(res, await handleControl(this, req, url));
      }
      send(res, apiError(404, 0, '404: Not Found'));
    } catch (error) {
      send(res, apiError(500, 0, error instanceof Error ? error.message : String(error)));
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (new URL(req.url ?? '/', 'http://127.0.0.1').pathname === '/gateway') this.gateway.handleUpgrade(req, socket, head);
    else socket.destroy();
  }
}
