/**
 * Found by the chaos test: `unregisterGuild` (and, the same way, the guild registry's unmap when
 * the bot leaves a guild) deleted the mapping row first and only then touched
 * the sandbox row (the audit insert's foreign-key check takes KEY SHARE on it), while a destroy
 * holds the sandbox row FOR UPDATE and then deletes that sandbox's mappings. Opposite lock order,
 * so PostgreSQL aborted one of them as a deadlock: the destroy (or the sweeper's retry of it)
 * failed with SANDBOX_006 and stayed `destroying`, or the unregister failed with an internal error. This forces that interleaving with a
 * table lock on the audit log (no timing): the unregister has deleted the mapping and waits to
 * write its audit row; the destroy then starts. Both must succeed once the audit log is free.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { GuildRegistry } from '../../src/sandbox/guild-registry.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import type { Actor } from '../../src/sandbox/types.ts';
import { botJoined, countRows, createTestDatabase, makeManager, snowflake, type TestDatabase } from '../support/db.ts';

const operator: Actor = { kind: 'operator', name: 'lock-test' };

/** Waits until `n` backends of this database wait for a heavyweight lock. */
async function lockWaiters(db: TestDatabase, n: number): Promise<void> {
  for (;;) {
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
    if (rows[0].n >= n) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('unmapping a guild and destroying its sandbox at once', () => {
  let db: TestDatabase;
  let manager: SandboxManager;
  beforeAll(async () => {
    db = await createTestDatabase({ poolSize: 6 });
    manager = makeManager(db);
  });
  afterAll(async () => {
    await db?.drop();
  });

  const cases: [string, (guildId: string) => Promise<unknown>][] = [
    ['unregisterGuild', (guildId) => manager.unregisterGuild('lock-order', guildId, operator)],
    ['the bot being removed from the guild', (guildId) => new GuildRegistry(manager, silentLogger()).onGuildRemoved(guildId)],
  ];

  it.each(cases)('%s and a destroy take their locks in the same order and both finish', async (_label, unmap) => {
    const guildId = snowflake();
    await botJoined(db, guildId);
    const { sandbox } = await manager.create({ name: 'lock-order', guildIds: [guildId] }, operator);
    // With no external resources a destroy is one teardown transaction: it locks the sandbox row,
    // then deletes its mappings (the same order as the unmap below).
    expect((await manager.getById(sandbox.id))?.status).toBe('running');

    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE sandbox_audit_log IN SHARE MODE'); // readers pass, writers wait
      const unregister = unmap(guildId).then(
        () => 'ok',
        (e: unknown) => e,
      );
      await lockWaiters(db, 1); // the unregister waits to write its audit row
      const destroy = manager.destroy('lock-order', operator).then(
        (s) => s.status,
        (e: unknown) => e,
      );
      await lockWaiters(db, 2); // the destroy waits too
      await blocker.query('COMMIT');
      expect(await unregister).toBe('ok');
      expect(await destroy).toBe('destroyed');
    } finally {
      await blocker.end();
    }
    expect(await countRows(db, 'sandbox_guild_mapping', 'sandbox_id = $1', [sandbox.id])).toBe(0);
    expect(await countRows(db, 'sandbox_audit_log', `sandbox_id = $1 AND event_type = 'destroy_failed'`, [sandbox.id])).toBe(0);
    await manager.destroy(sandbox.id, operator); // frees the name for the next case
  });
});
