import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Client } from 'discord.js';
import type { Logger } from '../logger.ts';
import type { AckedSequences } from './acked-sequences.ts';
import type { EventRouter, RouteInput } from './router.ts';
import { gatewayMsgId, guildOf } from './subjects.ts';
import type { GatewayDispatch } from './types.ts';

/** custom_id prefix of our own buttons (src/bot/confirmations.ts). */
export const OWN_CUSTOM_ID_PREFIX = 'sandbox-confirm:';
/** Our slash command. */
export const OWN_COMMAND = 'sandbox';

/** True for interactions the bot answers itself: `/sandbox` (command or autocomplete) and our buttons. */
export function isOwnInteraction(d: unknown): boolean {
  if (d === null || typeof d !== 'object') return false;
  const i = d as { type?: unknown; data?: { name?: unknown; custom_id?: unknown } };
  if ((i.type === 2 || i.type === 4) && i.data?.name === OWN_COMMAND) return true;
  const customId = i.data?.custom_id;
  return typeof customId === 'string' && customId.startsWith(OWN_CUSTOM_ID_PREFIX);
}

export interface IngestOptions {
  /**
   * Called (after discord.js handled the packet) for each GUILD_CREATE: a promise holds that guild's dispatches, in
   * order, until the join rules ran (a claim may map it to a sandbox). Bounded by `holdTimeoutMs`.
   */
  holdGuild?: (guildId: string) => Promise<void> | undefined;
  /** Default 5 s. */
  holdTimeoutMs?: number;
  /** Told of every dispatch received and of its outcome (the gateway persists the last contiguous acked sequence). */
  acks?: AckedSequences;
}

/**
 * The discord.js adapter: every gateway dispatch the client receives is routed, except our own interactions.
 * Returns a function that detaches it.
 */
export function attachIngest(client: Client, router: EventRouter, logger: Logger, opts: IngestOptions = {}): () => void {
  const log = logger.child({ component: 'ingest' });
  let warnedNoSession = false;
  // Without a session id, ids must still never collide with another process's (the stream would drop them as repeats).
  const noSession = `nosession-${randomUUID()}`;
  const onRaw = (packet: GatewayDispatch, shardId: number): void => {
    try {
      if (packet.op !== 0 || typeof packet.t !== 'string' || typeof packet.s !== 'number') return;
      const receivedAt = performance.now();
      // discord.js keeps the session (updated before each dispatch is emitted) on the shard; its typings mark it private.
      const shard = client.ws.shards.get(shardId) as unknown as { sessionInfo?: { sessionId?: string } | null } | undefined;
      const session = shard?.sessionInfo?.sessionId;
      if (packet.t === 'INTERACTION_CREATE' && isOwnInteraction(packet.d)) {
        if (session) opts.acks?.skip(shardId, session, packet.s);
        return;
      }
      if (!session && !warnedNoSession) {
        warnedNoSession = true;
        log.warn({ shardId, t: packet.t }, 'dispatch before the session is known; its message id uses a per-process placeholder');
      }
      const done = session ? opts.acks?.track(shardId, session, packet.s) : undefined;
      const input = { msgId: gatewayMsgId(shardId, session ?? noSession, packet.s), receivedAt, done };
      if (!opts.holdGuild) return router.route(packet, input);
      const guildId = guildOf(packet);
      const queue = guildId === undefined ? undefined : held.get(guildId);
      if (queue) return void queue.push([packet, input]);
      if (packet.t !== 'GUILD_CREATE' || guildId === undefined) return router.route(packet, input);
      hold(guildId, [packet, input]);
    } catch (err) {
      log.error({ err: { message: (err as Error).message }, t: packet?.t }, 'routing a dispatch failed');
    }
  };
  type Held = [GatewayDispatch, RouteInput];
  const held = new Map<string, Held[]>();
  const hold = (guildId: string, first: Held): void => {
    const queue: Held[] = [first];
    held.set(guildId, queue);
    // discord.js handles the packet (and emits guildCreate) right after 'raw', in the same tick: look after it.
    void Promise.resolve()
      .then(() => {
        const gate = opts.holdGuild!(guildId);
        if (!gate) return;
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            log.warn({ guildId }, 'join rules did not finish in time; routing the guild’s events with the current table');
            resolve();
          }, opts.holdTimeoutMs ?? 5000);
        });
        return Promise.race([gate, late]).finally(() => clearTimeout(timer));
      })
      .catch((err: unknown) => log.warn({ err: { message: (err as Error).message }, guildId }, 'waiting for the join rules failed'))
      .finally(() => {
        held.delete(guildId);
        for (const [packet, input] of queue) {
          try {
            router.route(packet, input);
          } catch (err) {
            input.done?.('rejected');
            log.error({ err: { message: (err as Error).message }, t: packet.t }, 'routing a dispatch failed');
          }
        }
      });
  };
  client.on('raw', onRaw);
  return () => void client.off('raw', onRaw);
}
