/**
 * The sweeper's generic missing/orphan passes with the real stream driver on the real nats-server, and the CLI's
 * StreamAccess (NATS on first use): create makes the stream, status shows it, destroy removes it.
 */
import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sweeper } from '../../src/jobs/sweeper.ts';
import { silentLogger } from '../../src/logger.ts';
import { parseRoutingConfig } from '../../src/routing/config.ts';
import { jetstream } from '@nats-io/jetstream';
import { StreamAccess } from '../../src/routing/stream-probe.ts';
import { SandboxStreams } from '../../src/routing/streams.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import { createTestDatabase, makeManager, type TestDatabase } from '../support/db.ts';
import { deleteStreams, jetstreamManager, natsConnect, NATS_URL } from './support/routing.ts';

const op = { kind: 'operator', name: 'tester' } as const;
const streamOf = (id: string) => `SANDBOX_${id.replaceAll('-', '')}`;
let db: TestDatabase;
let nc: NatsConnection;
let jsm: JetStreamManager;
let access: StreamAccess;
let manager: SandboxManager;
const made: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
  const problems: string[] = [];
  access = new StreamAccess(parseRoutingConfig({ NATS_URL, SANDBOX_EVENTS_MAX_BYTES: String(1024 * 1024) }, problems), silentLogger());
  expect(problems).toEqual([]);
  manager = makeManager(db, { resources: [access.resource()], events: access });
});

afterAll(async () => {
  await access?.close();
  await deleteStreams(jsm, made);
  await nc?.close();
  await db?.drop();
});

const exists = (id: string) => jsm.streams.info(streamOf(id)).then(() => true, () => false);

describe('sandbox streams in the lifecycle and the sweeper', () => {
  it('create makes the stream (1 MiB, 2-minute duplicate window), status shows its counts, destroy removes it', async () => {
    const { sandbox } = await manager.create({ name: 'streamed', owner: 'cli:s' }, op);
    made.push(streamOf(sandbox.id));
    const info = await jsm.streams.info(streamOf(sandbox.id));
    expect(info.config).toMatchObject({ subjects: [`sandbox.${sandbox.id}.>`], max_bytes: 1024 * 1024, duplicate_window: 120_000_000_000 });
    expect((await manager.getStatus('streamed', op)).health.events).toEqual({ state: 'ok', messages: 0, bytes: 0 });
    await manager.destroy('streamed', op);
    expect(await exists(sandbox.id)).toBe(false);
  });

  it('a reset through the lazily connected stream resource empties the sandbox’s stream', async () => {
    const { sandbox } = await manager.create({ name: 'reset-streamed', owner: 'cli:s' }, op);
    made.push(streamOf(sandbox.id));
    const js = jetstream(nc);
    await js.publish(`sandbox.${sandbox.id}.events.MESSAGE_CREATE`, '{}');
    await js.publish(`sandbox.${sandbox.id}.events.MESSAGE_CREATE`, '{}');
    expect((await jsm.streams.info(streamOf(sandbox.id))).state.messages).toBe(2);
    await manager.reset('reset-streamed', op);
    expect((await jsm.streams.info(streamOf(sandbox.id))).state.messages).toBe(0);
  });

  it('the sweeper makes a live sandbox’s lost stream again, removes a destroyed one’s, and leaves an unknown id’s alone', async () => {
    const { sandbox: live } = await manager.create({ name: 'lost-stream', owner: 'cli:s' }, op);
    const { sandbox: gone } = await manager.create({ name: 'gone', owner: 'cli:s' }, op);
    made.push(streamOf(live.id), streamOf(gone.id));
    await jsm.streams.delete(streamOf(live.id));
    expect((await manager.getStatus('lost-stream', op)).health).toMatchObject({ healthy: false, events: { state: 'missing' } });
    // A destroyed row whose stream survived (its removal failed), and a stream no row here knows (another install's).
    await manager.destroy('gone', op);
    const direct = new SandboxStreams({ jsm, logger: silentLogger(), maxAgeHours: 1, maxBytes: 1024 * 1024 });
    await direct.ensure(gone.id);
    const stranger = randomUUID();
    made.push(streamOf(stranger));
    await direct.ensure(stranger);

    const summary = await new Sweeper({ manager, logger: silentLogger() }).runPass();
    expect(await exists(live.id)).toBe(true);
    expect(await exists(gone.id)).toBe(false);
    expect(await exists(stranger)).toBe(true);
    expect(summary.counts.external_ensured).toBeGreaterThanOrEqual(1);
    expect(summary.externalUnknown).toContainEqual({ kind: 'stream', sandboxId: stranger });
    expect((await manager.getStatus('lost-stream', op)).health.events.state).toBe('ok');
  });
});
