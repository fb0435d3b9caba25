// The SDK's event iterator on the real NATS server: a durable consumer on the sandbox's own stream,
// explicit ack, redelivery of unacked events, and resumption after a restart. The stream is made
// here as routing makes it (SANDBOX_<32 hex>, subjects sandbox.<uuid>.>) and deleted afterwards.
import { randomUUID } from 'node:crypto';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSandbox, type SandboxEvent } from '../../src/sdk/index.ts';
import { NATS_URL } from './support.ts';

const ID = randomUUID();
const STREAM = `SANDBOX_${ID.replaceAll('-', '')}`;
const GUILD = '200000000000000001';
let nc: NatsConnection;
let jsm: JetStreamManager;
let seq = 0;

/** Publishes a dispatch exactly as the router does. */
async function publish(t: string, d: unknown): Promise<void> {
  const h = headers();
  h.set('Discord-Guild-Id', GUILD);
  h.set('Discord-Event', t);
  h.set('Sandbox-Id', ID);
  seq += 1;
  await jetstream(nc).publish(`sandbox.${ID}.events.${t}`, JSON.stringify({ t, s: seq, op: 0, d }), { headers: h, msgID: `test:${ID}:${seq}` });
}

async function waitForConsumer(name: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await jsm.consumers.info(STREAM, name).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('consumer never appeared');
}

const env = (consumer: string): Record<string, string> => ({ SANDBOX_ID: ID, SANDBOX_NATS_URL: NATS_URL, SANDBOX_NATS_CONSUMER: consumer });

beforeAll(async () => {
  nc = await connect({ servers: NATS_URL });
  jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: [`sandbox.${ID}.>`], max_bytes: 1024 * 1024, description: 'sdk events test' });
});

afterAll(async () => {
  await jsm?.streams.delete(STREAM).catch(() => undefined);
  await nc?.close();
});

describe('events', () => {
  it('yields new events with type, guild and data, and acks them', async () => {
    await publish('MESSAGE_CREATE', { content: 'before the consumer existed' });
    const sb = await connectSandbox({ env: env('worker-a') });
    const it = sb.events[Symbol.asyncIterator]();
    const first = it.next();
    await waitForConsumer('worker-a');
    await publish('MESSAGE_CREATE', { content: 'one', guild_id: GUILD });
    await publish('GUILD_MEMBER_ADD', { user: { id: '300000000000000001' }, guild_id: GUILD });

    const got: SandboxEvent[] = [(await first).value as SandboxEvent, (await it.next()).value as SandboxEvent];
    expect(got.map((e) => [e.type, e.guildId, e.data])).toEqual([
      ['MESSAGE_CREATE', GUILD, { content: 'one', guild_id: GUILD }],
      ['GUILD_MEMBER_ADD', GUILD, { user: { id: '300000000000000001' }, guild_id: GUILD }],
    ]);
    expect(got.map((e) => e.sequence)).toEqual([2, 3]);
    for (const e of got) e.ack();

    const info = await jsm.consumers.info(STREAM, 'worker-a');
    expect(info.config.durable_name).toBe('worker-a');
    expect(info.config.ack_policy).toBe('explicit');
    expect(info.config.filter_subject).toBe(`sandbox.${ID}.events.>`);
    let pending = info.num_ack_pending;
    for (let i = 0; i < 50 && pending > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      pending = (await jsm.consumers.info(STREAM, 'worker-a')).num_ack_pending;
    }
    expect(pending).toBe(0);
    await sb.close();
    const after = await jsm.consumers.info(STREAM, 'worker-a');
    expect(after.ack_floor.stream_seq).toBe(3);
  });

  it('redelivers an event that was not acked, and a restarted worker resumes where it stopped', async () => {
    const sb = await connectSandbox({ env: env('worker-b'), ackWaitSeconds: 1 });
    const it = sb.events[Symbol.asyncIterator]();
    const first = it.next();
    await waitForConsumer('worker-b');
    await publish('MESSAGE_CREATE', { content: 'unacked' });
    const once = (await first).value as SandboxEvent;
    expect(once.deliveryCount).toBe(1);
    const again = (await it.next()).value as SandboxEvent;
    expect(again.data).toEqual({ content: 'unacked' });
    expect(again.deliveryCount).toBe(2);
    again.ack();
    await sb.close();

    await publish('MESSAGE_CREATE', { content: 'while stopped' });
    const restarted = await connectSandbox({ env: env('worker-b') });
    for await (const ev of restarted.events) {
      expect(ev.data).toEqual({ content: 'while stopped' });
      ev.ack();
      break;
    }
    await restarted.close();
  });

  it('says so when the stream does not exist', async () => {
    const sb = await connectSandbox({ env: { SANDBOX_ID: randomUUID(), SANDBOX_NATS_URL: NATS_URL } });
    await expect(sb.events[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'SDK_STREAM_MISSING' });
    await sb.close();
  });
});
