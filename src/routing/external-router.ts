import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../logger.ts';
import { ErrorCode, SandboxError } from '../sandbox/errors.ts';
import type { EventPublisher, PublishOutcome } from './publisher.ts';
import type { EventRouter } from './router.ts';
import { isStreamNotFound, STREAM_TAG } from './streams.ts';
import { HEADER_MSG_ID, HEADER_ROUTE_VERSION, SANDBOX_SUBJECT_ROOT, filtersOverlap, productionFilter } from './subjects.ts';
import type { GatewayDispatch } from './types.ts';

export const INGEST_STREAM = 'DISCORD_INGEST';
export const ROUTER_DURABLE = 'sandbox-router';

export interface ExternalRouterOptions {
  nc: NatsConnection;
  js?: JetStreamClient;
  jsm?: JetStreamManager;
  logger: Logger;
  router: EventRouter;
  publisher: Pick<EventPublisher, 'drop'>;
  /** ROUTER_INGEST_SUBJECT (default discord.ingest.>) */
  ingestSubject: string;
  /** EVENTS_SUBJECT_PREFIX */
  prefix: string;
  ingestStream?: string;
  durable?: string;
  /** Unacked inputs per consumer and per pull (default 1,000). */
  maxAckPending?: number;
  ackWaitMs?: number;
  /** Counts drops of already-routed inputs etc.; same observer the publisher uses. */
}

/** The filters a router's input must never overlap: its own outputs. */
export function outputFilters(prefix: string): string[] {
  return [productionFilter(prefix), `${SANDBOX_SUBJECT_ROOT}.>`];
}

/** Throws SANDBOX config error when any input filter overlaps an output: such a router would consume what it publishes. */
export function assertNoLoop(inputs: string[], prefix: string): void {
  for (const input of inputs) {
    for (const out of outputFilters(prefix)) {
      if (filtersOverlap(input, out)) {
        throw new SandboxError(
          ErrorCode.Config,
          `The router's input ${input} overlaps its output ${out}: it would consume what it publishes. Choose a ROUTER_INGEST_SUBJECT outside ${outputFilters(prefix).join(' and ')}.`,
        );
      }
    }
  }
}

/**
 * `sandbox route`: reads raw dispatches from the work-queue stream DISCORD_INGEST through one durable pull consumer
 * (shared by every route process), routes each as the built-in ingest does, and acks an input only once its output
 * is stored (or dropped for good). An input that already carries Sandbox-Route-Version is dropped and counted.
 */
export class ExternalRouter {
  private readonly log: Logger;
  private readonly js: JetStreamClient;
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  readonly counts = { received: 0, acked: 0, naked: 0 };

  constructor(private readonly opts: ExternalRouterOptions) {
    this.log = opts.logger.child({ component: 'external-router' });
    this.js = opts.js ?? jetstream(opts.nc);
  }

  get ingestStream(): string {
    return this.opts.ingestStream ?? INGEST_STREAM;
  }

  /** Refuses an overlapping configuration, makes the ingest stream and consumer when missing, and starts pulling. */
  async start(): Promise<void> {
    assertNoLoop([this.opts.ingestSubject], this.opts.prefix);
    const jsm = this.opts.jsm ?? (await jetstreamManager(this.opts.nc));
    const stream = this.ingestStream;
    try {
      const info = await jsm.streams.info(stream);
      assertNoLoop(info.config.subjects ?? [], this.opts.prefix);
      if (!(info.config.subjects ?? []).some((s) => filtersOverlap(s, this.opts.ingestSubject))) {
        throw new SandboxError(ErrorCode.Config, `Stream ${stream} exists but does not take ${this.opts.ingestSubject} (it takes ${(info.config.subjects ?? []).join(', ')}).`);
      }
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
      await jsm.streams.add({
        name: stream,
        subjects: [this.opts.ingestSubject],
        description: `${STREAM_TAG} ingest`,
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        duplicate_window: nanos(2 * 60_000),
      });
      this.log.info({ stream, subject: this.opts.ingestSubject }, 'ingest stream created');
    }
    const durable = this.opts.durable ?? ROUTER_DURABLE;
    const maxAckPending = this.opts.maxAckPending ?? 1000;
    try {
      await jsm.consumers.info(stream, durable);
    } catch (err) {
      if (!(err instanceof Error && /consumer not found/i.test(err.message))) throw err;
      // One filter subject per consumer (nats-server 2.9 ignores filter_subjects).
      await jsm.consumers
        .add(stream, {
          durable_name: durable,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          filter_subject: this.opts.ingestSubject,
          max_ack_pending: maxAckPending,
          ack_wait: nanos(this.opts.ackWaitMs ?? 30_000),
        })
        .catch(async (e: unknown) => {
          // Another route process made it first.
          await jsm.consumers.info(stream, durable).catch(() => {
            throw e;
          });
        });
    }
    const consumer = await this.js.consumers.get(stream, durable);
    this.messages = await consumer.consume({ max_messages: Math.min(maxAckPending, 1000) });
    this.loop = this.run(this.messages);
    this.log.info({ stream, durable, subject: this.opts.ingestSubject }, 'external router started');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      this.counts.received++;
      try {
        this.handle(m);
      } catch (err) {
        this.log.error({ err: { message: (err as Error).message }, seq: m.seq }, 'routing an ingest message failed');
        m.nak(1000);
      }
    }
  }

  private handle(m: JsMsg): void {
    if (m.headers?.has(HEADER_ROUTE_VERSION)) {
      // Already routed once: routing it again could loop.
      this.opts.publisher.drop(undefined, 'already_routed');
      m.term();
      this.counts.acked++;
      return;
    }
    let packet: GatewayDispatch;
    try {
      packet = JSON.parse(new TextDecoder().decode(m.data)) as GatewayDispatch;
      if (packet === null || typeof packet !== 'object') throw new Error('not an object');
    } catch {
      this.opts.publisher.drop(undefined, 'invalid_event');
      m.term();
      this.counts.acked++;
      return;
    }
    const msgId = m.headers?.get(HEADER_MSG_ID) || `${this.ingestStream}:${m.seq}`;
    this.opts.router.route(packet, {
      msgId,
      body: m.data,
      done: (outcome: PublishOutcome) => {
        if (outcome === 'buffer_full' || outcome === 'shutdown') {
          this.counts.naked++;
          if (!this.stopping) m.nak(1000);
          return;
        }
        this.counts.acked++;
        m.ack();
      },
    });
  }
}
