import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { parseRoutingConfig } from '../../src/routing/config.ts';
import { RoutingService } from '../../src/routing/service.ts';
import { TcpProxy } from '../fault/support/tcp-proxy.ts';
import { createTestDatabase, snowflake, type TestDatabase } from '../support/db.ts';
import { deleteStreams, insertSandbox, jetstreamManager, mapGuild, natsConnect, testTag, waitFor } from './support/routing.ts';

const tag = testTag();
let db: TestDatabase;
let nc: NatsConnection;
let jsm: JetStreamManager;
let proxy: TcpProxy;
let service: RoutingService | undefined;
const made = [`EVENTS_${tag}`];

beforeAll(async () => {
  db = await createTestDatabase();
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
  proxy = await TcpProxy.start({ host: '127.0.0.1', port: 4222 });
});

afterAll(async () => {
  await service?.close();
  await proxy?.close();
  await deleteStreams(jsm, made);
  await nc?.close();
  await db?.drop();
});

it('starts with NATS unreachable (degraded, events buffered), then creates the production stream and delivers once NATS answers', async () => {
  await proxy.down('reset');
  const problems: string[] = [];
  const config = parseRoutingConfig(
    { NATS_URL: `nats://127.0.0.1:${proxy.port}`, EVENTS_SUBJECT_PREFIX: `t${tag}.events`, EVENTS_STREAM: `EVENTS_${tag}`, SANDBOX_EVENTS_MAX_BYTES: String(1024 * 1024) },
    problems,
  );
  expect(problems).toEqual([]);
  const registry = new Registry();
  service = new RoutingService({ config, pool: db.pool, databaseUrl: db.url, embedded: false, logger: silentLogger(), registry });
  await service.start(); // does not wait for NATS
  expect(service.health()).toBe('degraded');

  const sandbox = await insertSandbox(db);
  const guild = snowflake();
  await mapGuild(db, guild, sandbox);
  await service.routesChanged();
  service.router.route({ op: 0, t: 'MESSAGE_CREATE', s: 1, d: { guild_id: snowflake() } }, { msgId: `0:${tag}:1` });
  await new Promise((r) => setTimeout(r, 300));
  expect(service.publisher.pending).toBe(1);
  expect(service.health()).toBe('degraded');

  await proxy.up();
  await waitFor(() => service!.health() === 'ok', 'NATS to connect', 15_000, 50);
  await service.publisher.flush();
  expect((await jsm.streams.info(`EVENTS_${tag}`)).state.messages).toBe(1);

  // The stream resource works once connected; a mapped guild's events reach the sandbox stream.
  const streams = service.streamResource();
  made.push(`SANDBOX_${sandbox.replaceAll('-', '')}`);
  await streams.ensure(sandbox);
  expect(await streams.exists(sandbox)).toBe(true);
  service.router.route({ op: 0, t: 'MESSAGE_CREATE', s: 2, d: { guild_id: guild } }, { msgId: `0:${tag}:2` });
  await service.publisher.flush();
  expect((await jsm.streams.info(`SANDBOX_${sandbox.replaceAll('-', '')}`)).state.messages).toBe(1);

  const text = await registry.metrics();
  expect(text).toMatch(/sandbox_events_routed_total\{destination="production"\} 1/);
  expect(text).toMatch(/sandbox_events_routed_total\{destination="sandbox"\} 1/);
  expect(text).toMatch(/sandbox_route_table_entries 1/);
  expect(text).toMatch(/sandbox_event_publish_seconds_count 2/);
  await streams.remove(sandbox);
  expect(await streams.exists(sandbox)).toBe(false);
});
