/**
 * The bot on the embedded database with NATS: NOTIFY cannot reach another connection there, so the route table polls
 * the version. A mapping written by another connection (as the CLI would) reaches routing within the poll bound.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import { deleteStreams, jetstreamManager, natsConnect, NATS_URL, testTag, waitFor } from '../routing/support/routing.ts';
import { addGuild, setupEnv, type Env } from '../e2e/support/harness.ts';

const tag = testTag();
const dataDir = mkdtempSync(join(tmpdir(), 'sbx-routing-embedded-'));
let env: Env;
let app: App;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
  env = await setupEnv();
  app = await env.start({ databaseUrl: undefined }, { DATABASE_URL: '', NATS_URL, SANDBOX_DATA_DIR: dataDir, EVENTS_SUBJECT_PREFIX: `t${tag}.events`, EVENTS_STREAM: `EVENTS_${tag}` });
}, 60_000);

afterAll(async () => {
  await env?.close();
  await deleteStreams(jsm, [`EVENTS_${tag}`]);
  await nc?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

it('polls the route version: a mapping committed on another connection is applied within about a second', async () => {
  expect(app.db.embedded).toBe(true);
  const { guildId } = addGuild(env.fake);
  const { sandbox } = await app.manager.create({ name: `emb-${tag}`, owner: 'cli:emb' }, { kind: 'operator', name: 'tester' });
  await app.db.pool.query('INSERT INTO sandbox_guild_mapping (guild_id, sandbox_id) VALUES ($1, $2)', [guildId, sandbox.id]);
  const committed = Date.now();
  await waitFor(() => app.routing!.routes.lookup(guildId) === sandbox.id, 'the poll to apply the mapping', 3000, 10);
  expect(Date.now() - committed).toBeLessThan(2000);
  await app.manager.destroy(`emb-${tag}`, { kind: 'operator', name: 'tester' });
  expect(app.routing!.routes.lookup(guildId)).toBeUndefined();
  await expect(jsm.streams.info(`SANDBOX_${sandbox.id.replaceAll('-', '')}`)).rejects.toThrow(/not found/i);
}, 30_000);
