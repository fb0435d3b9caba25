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

/** Every sandbox id of a test database (for removeSandboxResources once its bots are stopped). */
export async function sandboxIdsOf(pool: { query(text: string): Promise<{ rows: { id: string }[] }> }): Promise<string[]> {
  return (await pool.query('SELECT id::text AS id FROM sandboxes')).rows.map((r) => r.id);
}

/**
 * What these sandboxes made on the shared servers, gone whatever state a test left them in: their streams
 * (`SANDBOX_<hex>`), Redis ACL users (`sandbox_<hex>`) and keys (`sandbox:<uuid>:…`). For tests whose bots create
 * sandboxes they do not destroy; call it after the bots stopped (a running sweeper re-ensures what is missing).
 */
export async function removeSandboxResources(
  ids: string[],
  servers: { jsm?: JetStreamManager; redis?: { call(...args: string[]): Promise<unknown>; keys(pattern: string): Promise<string[]>; del(...keys: string[]): Promise<number> } },
): Promise<void> {
  for (const id of ids) {
    const hex = id.replace(/-/g, '');
    await servers.jsm?.streams.delete(`SANDBOX_${hex}`).catch(() => undefined);
    if (servers.redis) {
      await servers.redis.call('ACL', 'DELUSER', `sandbox_${hex}`);
      const keys = await servers.redis.keys(`sandbox:${id}:*`);
      if (keys.length) await servers.redis.del(...keys);
    }
  }
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
