import { Collection } from '@discordjs/collection';
import {
  CloseCodes,
  WebSocketShard,
  WebSocketShardEvents,
  managerToFetchingStrategyOptions,
  type IContextFetchingStrategy,
  type IIdentifyThrottler,
  type IShardingStrategy,
  type SessionInfo,
  type WebSocketManager,
  type WebSocketShardDestroyOptions,
  type WebSocketShardStatus,
} from '@discordjs/ws';
import { GatewayOpcodes, type GatewaySendPayload } from 'discord-api-types/v10';
import type { Logger } from '../../logger.ts';
import { ROUTED_ONLY_DISPATCHES } from '../client.ts';
import type { ShardSessions } from './shard-sessions.ts';

/**
 * The gateway's sharding strategy (discord.js's public `ws.buildStrategy` option), shaped like @discordjs/ws's
 * SimpleShardingStrategy: every shard runs in this process and each shard event is forwarded to the manager, which
 * discord.js listens to. What it adds:
 *
 * - **Sessions survive the process.** Each shard's context reads and writes its session through ShardSessions
 *   (persisted in Redis or `bot_state`), so a restarted process RESUMEs. discord.js keeps its own copy of each
 *   shard's session (it reads it for RESUMED and the routing reads it for message ids): the context updates that copy
 *   through the manager's `updateSessionInfo` option, as @discordjs/ws's own context does.
 * - **A READY after a resume across processes.** Discord answers a RESUME with the missed dispatches and RESUMED,
 *   never READY, and discord.js becomes ready only on READY (no client.user, dispatches queued for ever). So when a
 *   shard resumed a session persisted by an earlier process, the strategy hands discord.js, before the first replayed
 *   dispatch (or RESUMED), a READY built from the persisted READY essentials with `guilds: []`. It has no sequence
 *   number, so the routing does not publish it. If Discord refuses the RESUME, the shard identifies and the real READY
 *   comes first: nothing is made up.
 * - **Dispatches only routed, never handled** (ROUTED_ONLY_DISPATCHES: messages, presences, members…) go to
 *   `routedOnly` (the app emits them as the client's 'raw' event, which the routing reads) instead of to discord.js,
 *   which would build and discard an object for each.
 * - **Identify throttling** through the manager's `buildIdentifyThrottler` (shared through Redis when it is set).
 *   @discordjs/ws waits for it before IDENTIFY only; a RESUME never waits.
 */
export class ResumableShardingStrategy implements IShardingStrategy {
  private readonly shards = new Collection<number, WebSocketShard>();
  /** Shards connecting with a persisted session whose first dispatch has not arrived yet. */
  private readonly awaitingFirstDispatch = new Set<number>();
  private throttler: Promise<IIdentifyThrottler> | undefined;
  private readonly log: Logger;

  constructor(
    private readonly manager: WebSocketManager,
    private readonly sessions: ShardSessions,
    /** Shards of this process that resumed a session persisted by an earlier one (their guild cache starts empty). */
    private readonly resumed: Set<number>,
    logger: Logger,
    private readonly routedOnly: (packet: { t: string }, shardId: number) => void,
  ) {
    this.log = logger.child({ component: 'gateway-strategy' });
  }

  async spawn(shardIds: number[]): Promise<void> {
    const options = await managerToFetchingStrategyOptions(this.manager);
    for (const shardId of shardIds) {
      const context: IContextFetchingStrategy = {
        options,
        retrieveSessionInfo: (id) => this.retrieve(id, options.shardCount),
        updateSessionInfo: (id, info) => this.update(id, info),
        waitForIdentify: (id, signal) => this.waitForIdentify(id, signal),
      };
      const shard = new WebSocketShard(context, shardId);
      for (const event of Object.values(WebSocketShardEvents)) {
        shard.on(event, (payload?: Record<string, unknown>) => this.forward(shardId, event, payload));
      }
      this.shards.set(shardId, shard);
    }
  }

  async connect(): Promise<void> {
    await Promise.all(this.shards.map((shard) => shard.connect()));
  }

  async destroy(options?: Omit<WebSocketShardDestroyOptions, 'recover'>): Promise<void> {
    // client.destroy() asks for 1000, which ends the sessions on Discord's side; a stop that keeps them closes with
    // 4200, the code @discordjs/ws itself closes with before resuming.
    const keep = this.sessions.keepingOnStop ? { code: CloseCodes.Resuming, reason: 'Restarting; the session will be resumed' } : {};
    await Promise.all(this.shards.map((shard) => shard.destroy({ ...options, ...keep })));
    this.shards.clear();
  }

  async send(shardId: number, payload: GatewaySendPayload): Promise<void> {
    const shard = this.shards.get(shardId);
    if (!shard) throw new RangeError(`Shard ${shardId} not found`);
    await shard.send(payload);
  }

  async fetchStatus(): Promise<Collection<number, WebSocketShardStatus>> {
    return this.shards.mapValues((shard) => shard.status);
  }

  private async retrieve(shardId: number, shardCount: number): Promise<SessionInfo | null> {
    const { info, fromStore } = await this.sessions.retrieve(shardId, shardCount);
    if (fromStore && info) {
      this.awaitingFirstDispatch.add(shardId);
      await this.manager.options.updateSessionInfo(shardId, info);
    }
    return info;
  }

  private async update(shardId: number, info: SessionInfo | null): Promise<void> {
    this.sessions.update(shardId, info);
    await this.manager.options.updateSessionInfo(shardId, info);
  }

  private async waitForIdentify(shardId: number, signal: AbortSignal): Promise<void> {
    this.throttler ??= Promise.resolve(this.manager.options.buildIdentifyThrottler(this.manager));
    await (await this.throttler).waitForIdentify(shardId, signal);
  }

  private forward(shardId: number, event: WebSocketShardEvents, payload: Record<string, unknown> | undefined): void {
    if (event === WebSocketShardEvents.Ready) {
      const data = payload?.data as { user: unknown; application: unknown };
      this.sessions.setReady(shardId, data);
      this.awaitingFirstDispatch.delete(shardId);
      this.resumed.delete(shardId);
    } else if ((event === WebSocketShardEvents.Dispatch || event === WebSocketShardEvents.Resumed) && this.awaitingFirstDispatch.delete(shardId)) {
      this.handReady(shardId);
    }
    if (event === WebSocketShardEvents.Dispatch) {
      const packet = payload?.data as { t?: string } | undefined;
      if (packet?.t !== undefined && ROUTED_ONLY_DISPATCHES.has(packet.t)) return this.routedOnly(packet as { t: string }, shardId);
    }
    this.manager.emit(event, { ...payload, shardId } as never);
  }

  /** The READY discord.js needs after a RESUME of a persisted session: as @discordjs/ws emits a real one. */
  private handReady(shardId: number): void {
    const data = this.sessions.readyPayload(shardId);
    if (!data) return this.log.error({ shardId }, 'resumed a persisted session without its READY essentials; discord.js will not become ready');
    this.resumed.add(shardId);
    this.log.info({ shardId, sessionId: data.session_id }, 'resumed a session persisted by an earlier process; handing discord.js its READY');
    this.manager.emit(WebSocketShardEvents.Ready, { data, shardId } as never);
    // `s: null`: not a gateway dispatch, so the routing (which publishes numbered dispatches) leaves it alone.
    this.manager.emit(WebSocketShardEvents.Dispatch, { data: { op: GatewayOpcodes.Dispatch, t: 'READY', s: null, d: data }, shardId } as never);
  }
}
