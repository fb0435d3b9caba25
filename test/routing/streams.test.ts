import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { SandboxStreams, ensureProductionStream } from '../../src/routing/streams.ts';
import { tailStream } from '../../src/routing/tail.ts';
import { headers } from '@nats-io/transport-node';
import { deleteStreams, jetstreamManager, natsConnect, testTag } from './support/routing.ts';

let nc: NatsConnection;
let jsm: JetStreamManager;
const made: string[] = [];
const tag = testTag();

const hex = (id: string) => id.replaceAll('-', '');

beforeAll(async () => {
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await deleteStreams(jsm, made);
  await nc?.close();
});

describe('SandboxStreams (the stream driver)', () => {
  const driver = () => new SandboxStreams({ jsm, logger: silentLogger(), maxAgeHours: 24, maxBytes: 1024 * 1024 });

  it('ensure makes SANDBOX_<hex> on sandbox.<id>.> with the limits, idempotently; remove deletes it; absent is fine', async () => {
    const id = randomUUID();
    const name = `SANDBOX_${hex(id)}`;
    made.push(name);
    const d = driver();
    expect(d.kind).toBe('stream');
    expect(d.bestEffort).toBe(true);
    expect(await d.exists(id)).toBe(false);
    await d.ensure(id);
    await d.ensure(id);
    const info = await jsm.streams.info(name);
    expect(info.config.subjects).toEqual([`sandbox.${id}.>`]);
    expect(info.config.storage).toBe('file');
    expect(info.config.retention).toBe('limits');
    expect(info.config.discard).toBe('old');
    expect(info.config.max_bytes).toBe(1024 * 1024);
    expect(info.config.max_age).toBe(24 * 3600 * 1e9);
    expect(info.config.duplicate_window).toBeGreaterThanOrEqual(120 * 1e9);
    expect(info.config.description).toContain(id);
    expect(await d.exists(id)).toBe(true);

    await jetstream(nc).publish(`sandbox.${id}.events.MESSAGE_CREATE`, new TextEncoder().encode('{"t":"MESSAGE_CREATE"}'));
    const stats = await d.stats(id);
    expect(stats?.messages).toBe(1);
    expect(stats!.bytes).toBeGreaterThan(0);

    await d.remove(id);
    expect(await d.exists(id)).toBe(false);
    await d.remove(id); // absent is success
    expect(await d.stats(id)).toBeUndefined();
  });

  it('ensure reconfigures an existing stream whose limits differ', async () => {
    const id = randomUUID();
    made.push(`SANDBOX_${hex(id)}`);
    await driver().ensure(id);
    await new SandboxStreams({ jsm, logger: silentLogger(), maxAgeHours: 2, maxBytes: 2 * 1024 * 1024 }).ensure(id);
    const info = await jsm.streams.info(`SANDBOX_${hex(id)}`);
    expect(info.config.max_bytes).toBe(2 * 1024 * 1024);
    expect(info.config.max_age).toBe(2 * 3600 * 1e9);
    await driver().remove(id);
  });

  it('list decodes exactly SANDBOX_<32 hex> names and nothing that merely looks like one', async () => {
    const id = randomUUID();
    made.push(`SANDBOX_${hex(id)}`);
    await driver().ensure(id);
    const lookalikes = [`SANDBOX_${hex(id).slice(0, 31)}${tag.slice(0, 1)}X`, `SANDBOX_${hex(randomUUID())}_${tag}`, `SANDBOXES_${tag}`];
    for (const [i, name] of lookalikes.entries()) {
      made.push(name);
      await jsm.streams.add({ name, subjects: [`lookalike${tag}.${i}.>`] });
    }
    const ids = await driver().list();
    expect(ids).toContain(id);
    for (const got of ids) expect(got).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(ids.filter((x) => x.startsWith(id.slice(0, 30)) && x !== id)).toEqual([]);
    await driver().remove(id);
    expect(await driver().list()).not.toContain(id);
  });
});

describe('production stream', () => {
  it('is created on <prefix>.> when missing and kept when present', async () => {
    const name = `EVENTS_${tag}`;
    made.push(name);
    await ensureProductionStream(jsm, name, `t${tag}.events`, silentLogger());
    await ensureProductionStream(jsm, name, `t${tag}.events`, silentLogger());
    const info = await jsm.streams.info(name);
    expect(info.config.subjects).toEqual([`t${tag}.events.>`]);
  });
});

describe('sandbox events (tail)', () => {
  it('prints one JSON line per stored event and stops at the last one without --follow', async () => {
    const name = `TAIL_${tag}`;
    made.push(name);
    await jsm.streams.add({ name, subjects: [`tail${tag}.>`] });
    const js = jetstream(nc);
    for (let s = 1; s <= 3; s++) {
      const h = headers();
      h.set('Discord-Event', 'MESSAGE_CREATE');
      h.set('Discord-Guild-Id', '123456789012345678');
      await js.publish(`tail${tag}.MESSAGE_CREATE`, JSON.stringify({ op: 0, t: 'MESSAGE_CREATE', s, d: { content: `m${s}` } }), { headers: h, msgID: `0:x:${s}` });
    }
    const lines: string[] = [];
    const n = await tailStream({ nc, stream: name, follow: false, out: (l) => lines.push(l) });
    expect(n).toBe(3);
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed.map((p) => [p.seq, p.event, p.guildId, p.msgId, p.dispatch.d.content])).toEqual([
      [1, 'MESSAGE_CREATE', '123456789012345678', '0:x:1', 'm1'],
      [2, 'MESSAGE_CREATE', '123456789012345678', '0:x:2', 'm2'],
      [3, 'MESSAGE_CREATE', '123456789012345678', '0:x:3', 'm3'],
    ]);
  });
});
