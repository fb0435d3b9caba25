import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { SandboxConnectError } from './errors.ts';
import type { DeliverFrom, ResolvedSettings } from './settings.ts';

/** One Discord gateway event, as the router published it. */
export interface SandboxEvent<D = unknown> {
  /** The dispatch type (`MESSAGE_CREATE`, …). */
  type: string;
  /** The guild it came from (undefined for events without a guild). */
  guildId: string | undefined;
  /** The dispatch's `d`. */
  data: D;
  /** The gateway sequence number `s`, when present. */
  sequence: number | undefined;
  subject: string;
  /** How many times it was delivered (1 the first time). */
  deliveryCount: number;
  /** Done with it: it will not be delivered again. Unacked events come back after ackWait. */
  ack(): void;
  /** Deliver it again (after delayMs, when given). */
  nak(delayMs?: number): void;
  /** Never deliver it again, without processing. */
  term(): void;
}

export interface SandboxEvents extends AsyncIterable<SandboxEvent> {
  readonly stream: string;
  readonly consumer: string;
  /** Stops iteration (a running for-await ends) and releases the consumer's pull; the durable consumer stays. */
  stop(): Promise<void>;
}

const DELIVER: Record<DeliverFrom, DeliverPolicy> = { new: DeliverPolicy.New, all: DeliverPolicy.All, last: DeliverPolicy.Last };

export async function openNats(s: ResolvedSettings, url: string): Promise<NatsConnection> {
  try {
    return await connect({ servers: url, name: `sandbox-sdk:${s.sandboxId ?? 'production'}`, timeout: 5000 });
  } catch (err) {
    throw new SandboxConnectError('SDK_CONFIG', `${s.label}: cannot connect to NATS: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The sandbox's events through a durable pull consumer with explicit ack. A new consumer starts at
 * `deliver` (default: new events only); an existing one resumes where it stopped, its filter kept
 * on the sandbox's subject. One filter subject per consumer (nats-server 2.9 ignores filter_subjects).
 */
export function createEvents(nc: NatsConnection, s: ResolvedSettings): SandboxEvents {
  let messages: ConsumerMessages | undefined;
  let stopped = false;
  let active = false;

  async function ensureConsumer(): Promise<void> {
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(s.stream);
    } catch (err) {
      throw new SandboxConnectError(
        'SDK_STREAM_MISSING',
        `${s.label}: event stream ${s.stream} does not exist (routing is off, or the stream is not made yet: the sweeper retries)`,
        { cause: err },
      );
    }
    let existing;
    try {
      existing = await jsm.consumers.info(s.stream, s.consumer);
    } catch {
      existing = undefined;
    }
    if (!existing) {
      try {
        await jsm.consumers.add(s.stream, {
          durable_name: s.consumer,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DELIVER[s.deliver],
          filter_subject: s.subject,
          ack_wait: s.ackWaitSeconds * 1_000_000_000,
          max_ack_pending: s.maxAckPending,
        });
        return;
      } catch (err) {
        // Another copy of the worker made it first: use theirs.
        existing = await jsm.consumers.info(s.stream, s.consumer).catch(() => {
          throw err;
        });
      }
    }
    if (existing.config.filter_subject !== s.subject || existing.config.ack_policy !== AckPolicy.Explicit) {
      await jsm.consumers.update(s.stream, s.consumer, { filter_subject: s.subject, ack_wait: s.ackWaitSeconds * 1_000_000_000, max_ack_pending: s.maxAckPending });
      if (existing.config.ack_policy !== AckPolicy.Explicit) {
        throw new SandboxConnectError('SDK_CONFIG', `${s.label}: consumer ${s.consumer} on ${s.stream} exists without explicit ack; delete it or use another name`);
      }
    }
  }

  function toEvent(m: JsMsg): SandboxEvent | undefined {
    let body: { t?: unknown; s?: unknown; d?: unknown };
    try {
      body = m.json();
    } catch {
      return undefined;
    }
    const type = m.headers?.get('Discord-Event') || (typeof body.t === 'string' ? body.t : '');
    if (!type) return undefined;
    const d = body.d as { guild_id?: unknown } | null | undefined;
    const guildHeader = m.headers?.get('Discord-Guild-Id') || (d && typeof d === 'object' && typeof d.guild_id === 'string' ? d.guild_id : '');
    return {
      type,
      guildId: guildHeader ? guildHeader : undefined,
      data: body.d,
      sequence: typeof body.s === 'number' ? body.s : undefined,
      subject: m.subject,
      deliveryCount: m.info.deliveryCount,
      ack: () => m.ack(),
      nak: (delayMs?: number) => m.nak(delayMs),
      term: () => m.term(),
    };
  }

  let current: AsyncGenerator<SandboxEvent, void, undefined> | undefined;

  async function* iterate(): AsyncGenerator<SandboxEvent, void, undefined> {
    if (active) throw new Error(`${s.label}: events are already being iterated; one loop per connection`);
    active = true;
    try {
      await ensureConsumer();
      if (stopped) return;
      const js = jetstream(nc);
      const consumer = await js.consumers.get(s.stream, s.consumer);
      messages = await consumer.consume({ max_messages: Math.min(256, s.maxAckPending) });
      for await (const m of messages) {
        const ev = toEvent(m);
        // Not a gateway dispatch (nothing the router publishes): drop it for good rather than loop on it.
        if (!ev) {
          m.term();
          continue;
        }
        yield ev;
        if (stopped) break;
      }
    } finally {
      active = false;
      current = undefined;
      const m = messages;
      messages = undefined;
      // Not awaited: close() settles when the pull loop ends, which may wait on this very generator.
      void m?.close().catch(() => undefined);
    }
  }

  return {
    stream: s.stream,
    consumer: s.consumer,
    [Symbol.asyncIterator]() {
      current = iterate();
      return current;
    },
    async stop() {
      stopped = true;
      void messages?.close().catch(() => undefined);
      // A loop parked at `yield` (the worker stopped pulling) is ended here, running its cleanup.
      const gen = current;
      if (gen) await Promise.race([gen.return(undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    },
  };
}
