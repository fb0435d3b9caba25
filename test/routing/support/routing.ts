import { randomBytes, randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { Database } from '../../../src/db/database.ts';

export const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** A unique tag per test file: subject prefixes and stream names built from it never collide with other files. */
export const testTag = (): string => randomBytes(4).toString('hex');

export async function natsConnect(servers: string = NATS_URL): Promise<NatsConnection> {
  return connect({ servers, waitOnFirstConnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
}

/** Inserts a running sandbox row directly (the route feed only cares about mappings). */
export async function insertSandbox(db: Database, name = `rt-${randomBytes(4).toString('hex')}`): Promise<string> {
  const id = randomUUID();
  await db.pool.query(
    `INSERT INTO sandboxes (id, name, owner, status, schema_name, expires_at) VALUES ($1, $2, 'cli:test', 'running', $3, now() + interval '1 day')`,
    [id, name, `sandbox_${id.replaceAll('-', '')}`],
  );
  return id;
}

export async function mapGuild(db: Database, guildId: string, sandboxId: string): Promise<void> {
  await db.pool.query('INSERT INTO sandbox_guild_mapping (guild_id, sandbox_id) VALUES ($1, $2)', [guildId, sandboxId]);
}

export async function unmapGuild(db: Database, guildId: string): Promise<void> {
  await db.pool.query('DELETE FROM sandbox_guild_mapping WHERE guild_id = $1', [guildId]);
}

export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 5000, everyMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Deletes every stream whose name contains the tag (this file's streams only). */
export async function deleteStreams(jsm: JetStreamManager, names: string[]): Promise<void> {
  for (const n of names) await jsm.streams.delete(n).catch(() => undefined);
}

/** A message as stored on a stream: subject, dispatch type and data, guild and message id headers. */
export interface StoredEvent {
  subject: string;
  t: string;
  guildId: string | undefined;
  msgId: string;
  d: Record<string, unknown>;
}

/** Every message on the stream, oldest first. */
export async function storedEvents(jsm: JetStreamManager, stream: string): Promise<StoredEvent[]> {
  const info = await jsm.streams.info(stream);
  const out: StoredEvent[] = [];
  for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (!m) continue;
    const body = m.json<{ t: string; d: Record<string, unknown> }>();
    out.push({ subject: m.subject, t: body.t, guildId: m.header.get('Discord-Guild-Id') || undefined, msgId: m.header.get('Nats-Msg-Id'), d: body.d });
  }
  return out;
}

export { jetstreamManager };
