import { jetstream, jetstreamManager, DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { HEADER_EVENT, HEADER_GUILD_ID, HEADER_MSG_ID, HEADER_ROUTE_VERSION, HEADER_SANDBOX_ID } from './subjects.ts';

export interface TailOptions {
  nc: NatsConnection;
  stream: string;
  /** Keep waiting for new events (else stop at the last one stored when the tail began). */
  follow: boolean;
  out: (line: string) => void;
  signal?: AbortSignal;
}

/** One JSON line per stored event. */
export function eventLine(stream: string, m: JsMsg): string {
  const text = new TextDecoder().decode(m.data);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = text;
  }
  const h = m.headers;
  return JSON.stringify({
    stream,
    seq: m.seq,
    time: m.time.toISOString(),
    subject: m.subject,
    event: h?.get(HEADER_EVENT) || undefined,
    guildId: h?.get(HEADER_GUILD_ID) || undefined,
    sandboxId: h?.get(HEADER_SANDBOX_ID) || undefined,
    routeVersion: h?.get(HEADER_ROUTE_VERSION) ? Number(h.get(HEADER_ROUTE_VERSION)) : undefined,
    msgId: h?.get(HEADER_MSG_ID) || undefined,
    dispatch: data,
  });
}

/** Prints a stream's events through an ordered (ephemeral) consumer; returns how many were printed. */
export async function tailStream(opts: TailOptions): Promise<number> {
  const jsm = await jetstreamManager(opts.nc);
  const info = await jsm.streams.info(opts.stream);
  const last = info.state.last_seq;
  if (!opts.follow && info.state.messages === 0) return 0;
  const consumer = await jetstream(opts.nc).consumers.get(opts.stream, { deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume();
  const onAbort = () => void messages.close();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let n = 0;
  try {
    for await (const m of messages) {
      opts.out(eventLine(opts.stream, m));
      n++;
      if (!opts.follow && m.seq >= last) break;
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await messages.close().catch(() => undefined);
  }
  return n;
}
