import { performance } from 'node:perf_hooks';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import type { Logger } from '../logger.ts';

export type Destination = 'sandbox' | 'production';
export type DropReason = 'buffer_full' | 'too_large' | 'no_stream' | 'already_routed' | 'invalid_event' | 'rejected' | 'shutdown';
export type PublishOutcome = 'stored' | 'duplicate' | DropReason;

export interface OutboundEvent {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs;
  /** Nats-Msg-Id: the stream drops a repeat within its duplicate window. */
  msgId: string;
  destination: Destination;
  /** performance.now() when the dispatch was received. */
  receivedAt: number;
  /** Called once with what became of the event (the external router acks on it). */
  done?: (outcome: PublishOutcome) => void;
}

export interface PublisherObserver {
  routed?(destination: Destination, seconds: number): void;
  dropped?(reason: DropReason): void;
  degraded?(degraded: boolean): void;
}

export interface PublisherOptions {
  /** A connection, or one still being made (events buffer until it is, and the publisher reports degraded). */
  nc: NatsConnection | Promise<NatsConnection>;
  js?: JetStreamClient;
  logger: Logger;
  /** Publishes awaiting their ack at once (default 512). */
  maxInFlight?: number;
  /** Buffered events, oldest dropped beyond it (EVENTS_BUFFER, default 10,000). */
  bufferMessages?: number;
  /** Buffered bytes, oldest dropped beyond it (default 64 MiB). */
  bufferBytes?: number;
  /** Wait for one ack (default 5 s); a timeout is retried with the same message id. */
  publishTimeoutMs?: number;
  /** Pause after a failed publish before trying again (default 500 ms). */
  retryDelayMs?: number;
  /** Minimum time between two drop warnings (default 10 s). */
  warnIntervalMs?: number;
  observer?: PublisherObserver;
  /** Called when a production publish found no stream (the caller may recreate it). */
  onProductionStreamMissing?: () => void;
}

/** Room for our headers and the protocol line when checking an event against the server's max_payload. */
const OVERHEAD = 512;

/**
 * Asynchronous JetStream publishing with a bounded number in flight and a bounded buffer. The gateway never waits:
 * `submit` queues and returns. While NATS is away or slow the buffer holds up to `bufferMessages`/`bufferBytes`,
 * dropping the oldest; every drop is counted by reason and warned about at a limited rate. A failed publish is
 * retried with its message id (so a retry that was in fact stored is deduplicated by the stream); a publish that no
 * stream answers is dropped as `no_stream`, never redirected.
 */
export class EventPublisher {
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private readonly log: Logger;
  private queue: OutboundEvent[] = [];
  private head = 0;
  private bytes = 0;
  private inFlight = 0;
  private connected = true;
  private failing = false;
  private pausedUntil = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastWarn = 0;
  private dropsSinceWarn = new Map<DropReason, number>();
  private idleWaiters: Array<() => void> = [];
  private readonly maxInFlight: number;
  private readonly maxMessages: number;
  private readonly maxBytes: number;
  private readonly timeout: number;
  private readonly retryDelay: number;
  private readonly warnInterval: number;
  private wasDegraded = false;
  /** Counts for tests and status: drops by reason, stored, duplicates. */
  readonly counts = { stored: 0, duplicate: 0, dropped: {} as Partial<Record<DropReason, number>> };

  constructor(private readonly opts: PublisherOptions) {
    this.log = opts.logger.child({ component: 'event-publisher' });
    this.maxInFlight = opts.maxInFlight ?? 512;
    this.maxMessages = opts.bufferMessages ?? 10_000;
    this.maxBytes = opts.bufferBytes ?? 64 * 1024 * 1024;
    this.timeout = opts.publishTimeoutMs ?? 5000;
    this.retryDelay = opts.retryDelayMs ?? 500;
    this.warnInterval = opts.warnIntervalMs ?? 10_000;
    if (opts.nc instanceof Promise) {
      this.connected = false;
      this.wasDegraded = true;
      opts.nc.then(
        (nc) => this.attach(nc),
        (err: unknown) => this.log.error({ err: { message: (err as Error)?.message } }, 'NATS connection failed for good'),
      );
    } else {
      this.attach(opts.nc);
    }
  }

  private attach(nc: NatsConnection): void {
    if (this.closed) return;
    this.nc = nc;
    this.js = this.opts.js ?? jetstream(nc);
    this.connected = !nc.isClosed();
    this.reportDegraded();
    void this.watchStatus(nc);
    this.pump();
  }

  /** True while NATS is away or publishes fail: /readyz says `events: degraded`. */
  get degraded(): boolean {
    return !this.connected || this.failing;
  }

  /** Events waiting to be published (not counting those in flight). */
  get buffered(): number {
    return this.queue.length - this.head;
  }

  get pending(): number {
    return this.buffered + this.inFlight;
  }

  /** Queues an event; never blocks, never throws. */
  submit(ev: OutboundEvent): void {
    if (this.closed) return this.drop(ev, 'shutdown');
    const maxPayload = this.nc?.info?.max_payload ?? 1024 * 1024;
    if (ev.data.length + ev.subject.length + OVERHEAD > maxPayload) return this.drop(ev, 'too_large');
    this.queue.push(ev);
    this.bytes += ev.data.length;
    while (this.buffered > this.maxMessages || (this.bytes > this.maxBytes && this.buffered > 1)) {
      this.drop(this.shift()!, 'buffer_full');
    }
    this.pump();
  }

  /** Counts and reports an event that will not be published (also for callers that drop before submitting). */
  drop(ev: Pick<OutboundEvent, 'done'> | undefined, reason: DropReason): void {
    this.counts.dropped[reason] = (this.counts.dropped[reason] ?? 0) + 1;
    this.opts.observer?.dropped?.(reason);
    this.dropsSinceWarn.set(reason, (this.dropsSinceWarn.get(reason) ?? 0) + 1);
    const now = Date.now();
    if (now - this.lastWarn >= this.warnInterval) {
      this.lastWarn = now;
      const drops = Object.fromEntries(this.dropsSinceWarn);
      this.dropsSinceWarn.clear();
      this.log.warn({ drops, buffered: this.buffered, connected: this.connected }, 'events dropped');
    }
    ev?.done?.(reason);
  }

  /** Resolves when nothing is buffered or in flight, or after `timeoutMs`. */
  async flush(timeoutMs = 10_000): Promise<boolean> {
    if (this.pending === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const r = await Promise.race([idle, late]);
    clearTimeout(timer);
    return r;
  }

  /** Flushes for up to `timeoutMs`, then drops what is left (`shutdown`). Does not close the connection. */
  async close(timeoutMs = 5000): Promise<void> {
    await this.flush(timeoutMs);
    this.closed = true;
    clearTimeout(this.retryTimer);
    while (this.buffered > 0) this.drop(this.shift()!, 'shutdown');
  }

  private shift(): OutboundEvent | undefined {
    if (this.head >= this.queue.length) return undefined;
    const ev = this.queue[this.head]!;
    this.queue[this.head] = undefined as unknown as OutboundEvent;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.bytes -= ev.data.length;
    return ev;
  }

  private unshift(ev: OutboundEvent): void {
    if (this.head > 0) this.queue[--this.head] = ev;
    else this.queue.unshift(ev);
    this.bytes += ev.data.length;
    while (this.buffered > this.maxMessages) this.drop(this.shift()!, 'buffer_full');
  }

  private pump(): void {
    if (this.pending === 0) return this.notifyIdle();
    if (!this.connected || this.closed || !this.js) return;
    if (this.pausedUntil > Date.now()) return;
    while (this.inFlight < this.maxInFlight && this.buffered > 0) {
      const ev = this.shift()!;
      this.inFlight++;
      this.js!.publish(ev.subject, ev.data, { msgID: ev.msgId, headers: ev.headers, timeout: this.timeout }).then(
        (ack) => this.acked(ev, ack),
        (err: unknown) => this.failed(ev, err),
      );
    }
  }

  private acked(ev: OutboundEvent, ack: PubAck): void {
    this.inFlight--;
    if (this.failing) {
      this.failing = false;
      this.reportDegraded();
    }
    if (ack.duplicate) this.counts.duplicate++;
    else this.counts.stored++;
    this.opts.observer?.routed?.(ev.destination, (performance.now() - ev.receivedAt) / 1000);
    ev.done?.(ack.duplicate ? 'duplicate' : 'stored');
    this.pump();
  }

  private failed(ev: OutboundEvent, err: unknown): void {
    this.inFlight--;
    const name = (err as Error)?.name;
    if (name === 'JetStreamNotEnabled' || /no responders/i.test((err as Error)?.message ?? '')) {
      // No stream listens on the subject: a sandbox whose stream could not be made, or a missing production stream.
      if (ev.destination === 'production') this.opts.onProductionStreamMissing?.();
      this.drop(ev, 'no_stream');
      this.pump();
      return;
    }
    if (name === 'JetStreamApiError' || name === 'JetStreamError') {
      // The stream refused this message for good (e.g. a limit): retrying would not help.
      this.log.debug({ err: { message: (err as Error).message }, subject: ev.subject }, 'publish refused');
      this.drop(ev, 'rejected');
      this.pump();
      return;
    }
    // Timeout, disconnect, closed connection: keep it (first in line) and retry after a pause.
    this.unshift(ev);
    if (!this.failing) {
      this.failing = true;
      this.reportDegraded();
      this.log.warn({ err: { message: (err as Error)?.message, name } }, 'event publishing failing; buffering');
    }
    this.pausedUntil = Date.now() + this.retryDelay;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.pump(), this.retryDelay);
    this.retryTimer.unref();
  }

  private notifyIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  private reportDegraded(): void {
    const d = this.degraded;
    if (d === this.wasDegraded) return;
    this.wasDegraded = d;
    this.opts.observer?.degraded?.(d);
    if (!d) this.log.info({ buffered: this.buffered }, 'event publishing resumed');
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    try {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.connected = false;
          this.reportDegraded();
          this.log.warn('NATS disconnected; buffering events');
        } else if (s.type === 'reconnect') {
          this.connected = true;
          this.pausedUntil = 0;
          this.reportDegraded();
          this.pump();
        } else if (s.type === 'close') {
          this.connected = false;
          this.reportDegraded();
        }
      }
    } catch {
      // The status iterator ends with the connection.
    }
  }
}
