import { headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CliContext } from '../../src/cli/context.ts';
import { silentLogger } from '../../src/logger.ts';
import { parseRoutingConfig } from '../../src/routing/config.ts';
import { runEventsCommand, runRouteCommand } from '../../src/routing/commands.ts';
import { SandboxStreams } from '../../src/routing/streams.ts';
import { createTestDatabase, makeManager, snowflake, type TestDatabase } from '../support/db.ts';
import { deleteStreams, insertSandbox, jetstreamManager, mapGuild, natsConnect, NATS_URL, testTag, waitFor } from './support/routing.ts';

const tag = testTag();
let db: TestDatabase;
let nc: NatsConnection;
let jsm: JetStreamManager;
const made = [`EVENTS_${tag}`];

function ctx(env: Record<string, string> = {}): CliContext {
  const problems: string[] = [];
  const routing = parseRoutingConfig(
    { NATS_URL, EVENTS_SUBJECT_PREFIX: `t${tag}.events`, EVENTS_STREAM: `EVENTS_${tag}`, ROUTER_INGEST_SUBJECT: `t${tag}.ingest.>`, ...env },
    problems,
  );
  expect(problems).toEqual([]);
  return { config: { routing } as CliContext['config'], logger: silentLogger(), db, manager: makeManager(db), actor: { kind: 'operator', name: 'test' }, close: async () => undefined } as CliContext;
}

beforeAll(async () => {
  db = await createTestDatabase();
  nc = await natsConnect();
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  // DISCORD_INGEST (the fixed ingest stream of `sandbox route`) is in `made` only when this file created it.
  await deleteStreams(jsm, made);
  await nc?.close();
  await db?.drop();
});

it('sandbox route routes ingested dispatches until stopped, then sandbox events prints them', async () => {
  const ingestExisted = await jsm.streams.info('DISCORD_INGEST').then(() => true, () => false);
  if (ingestExisted) return; // another install's ingest stream on this shared server: never touch it
  made.push('DISCORD_INGEST');
  const name = `cli-${tag}`;
  const sandbox = await insertSandbox(db, name);
  made.push(`SANDBOX_${sandbox.replaceAll('-', '')}`);
  await new SandboxStreams({ jsm, logger: silentLogger(), maxAgeHours: 1, maxBytes: 1024 * 1024 }).ensure(sandbox);
  const guild = snowflake();
  await mapGuild(db, guild, sandbox);

  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const lines: string[] = [];
  const running = runRouteCommand(ctx(), (l) => lines.push(l), stopped);
  await waitFor(() => lines.length > 0, 'the router to start', 10_000);
  const h = headers();
  h.set('Nats-Msg-Id', `ext-${tag}-1`);
  await jetstream(nc).publish(`t${tag}.ingest.0`, JSON.stringify({ op: 0, t: 'MESSAGE_CREATE', s: 1, d: { guild_id: guild, content: 'via route' } }), { headers: h });
  await waitFor(async () => (await jsm.streams.info(`SANDBOX_${sandbox.replaceAll('-', '')}`)).state.messages === 1, 'the routed message', 10_000);
  stop();
  await running;

  const out: string[] = [];
  await runEventsCommand(ctx(), name, {}, (l) => out.push(l));
  expect(out).toHaveLength(1);
  expect(JSON.parse(out[0]!)).toMatchObject({ subject: `sandbox.${sandbox}.events.MESSAGE_CREATE`, msgId: `ext-${tag}-1`, guildId: guild, dispatch: { d: { content: 'via route' } } });
});

it('sandbox route refuses an ingest subject overlapping its outputs before connecting', async () => {
  const c = ctx();
  c.config.routing.ingestSubject = `t${tag}.events.>`;
  await expect(runRouteCommand(c, () => undefined, Promise.resolve())).rejects.toMatchObject({ code: 'SANDBOX_013' });
});
