import { performance } from 'node:perf_hooks';
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { EventPublisher, PublishOutcome } from './publisher.ts';
import type { RouteTable } from './route-table.ts';
import {
  HEADER_EVENT,
  HEADER_GUILD_ID,
  HEADER_MSG_ID,
  HEADER_ROUTE_VERSION,
  HEADER_SANDBOX_ID,
  guildOf,
  isEventType,
  productionSubject,
  sandboxSubject,
} from './subjects.ts';
import type { GatewayDispatch } from './types.ts';

export interface RouterOptions {
  routes: Pick<RouteTable, 'lookup' | 'version'>;
  publisher: Pick<EventPublisher, 'submit' | 'drop'>;
  /** EVENTS_SUBJECT_PREFIX */
  prefix: string;
}

export interface RouteInput {
  /** Nats-Msg-Id of the output: `<shard>:<session>:<s>` for the built-in ingest, the input's id for the external router. */
  msgId: string;
  /** The body as received, when the caller has it (the external router); else the packet is serialized. */
  body?: Uint8Array;
  /** performance.now() at receipt (default now). */
  receivedAt?: number;
  done?: (outcome: PublishOutcome) => void;
}

export interface RouteDecision {
  subject: string;
  sandboxId: string | undefined;
  guildId: string | undefined;
}

const encoder = new TextEncoder();

/** Decides where a dispatch goes (one Map get) and hands it to the publisher with its headers. No discord.js here. */
export class EventRouter {
  constructor(private readonly opts: RouterOptions) {}

  decide(packet: Pick<GatewayDispatch, 't' | 'd'>): RouteDecision | undefined {
    if (!isEventType(packet.t)) return undefined;
    const guildId = guildOf(packet);
    const sandboxId = guildId === undefined ? undefined : this.opts.routes.lookup(guildId);
    const subject = sandboxId ? sandboxSubject(sandboxId, packet.t) : productionSubject(this.opts.prefix, packet.t);
    return { subject, sandboxId, guildId };
  }

  /** Routes one dispatch (op 0); anything else is ignored. */
  route(packet: GatewayDispatch, input: RouteInput): void {
    const decision = packet.op === 0 ? this.decide(packet) : undefined;
    if (!decision) {
      this.opts.publisher.drop({ done: input.done }, 'invalid_event');
      return;
    }
    const h = natsHeaders();
    h.set(HEADER_MSG_ID, input.msgId);
    h.set(HEADER_EVENT, packet.t!);
    h.set(HEADER_ROUTE_VERSION, String(this.opts.routes.version));
    if (decision.guildId) h.set(HEADER_GUILD_ID, decision.guildId);
    if (decision.sandboxId) h.set(HEADER_SANDBOX_ID, decision.sandboxId);
    this.opts.publisher.submit({
      subject: decision.subject,
      data: input.body ?? encoder.encode(JSON.stringify(packet)),
      headers: h,
      msgId: input.msgId,
      destination: decision.sandboxId ? 'sandbox' : 'production',
      receivedAt: input.receivedAt ?? performance.now(),
      done: input.done,
    });
  }
}
