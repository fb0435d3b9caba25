/**
 * The `routesChanged` observer hook: called after every committed transaction that changed guild
 * mappings (so the in-process route table catches up at once), and not after ones that did not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { GuildRegistry } from '../../src/sandbox/guild-registry.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import { botJoined, createTestDatabase, makeManager, snowflake, type TestDatabase } from '../support/db.ts';

const op = { kind: 'operator', name: 'routes' } as const;
let db: TestDatabase;
let manager: SandboxManager;
let calls = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  manager = makeManager(db, { observer: { routesChanged: () => void calls++ } });
});
afterAll(async () => {
  await db?.drop();
});

describe('routesChanged', () => {
  it('fires after creates, registrations, unregistrations and destroys that change mappings, and only then', async () => {
    const [a, b] = [snowflake(), snowflake()];
    await botJoined(db, a, b);
    calls = 0;
    const plain = await manager.create({ owner: snowflake() }, op);
    expect(calls).toBe(0); // no guild: no mapping changed
    const mapped = await manager.create({ owner: snowflake(), guildIds: [a] }, op);
    expect(calls).toBe(1);
    await manager.registerGuild(plain.sandbox.id, b, op);
    expect(calls).toBe(2);
    await manager.registerGuild(plain.sandbox.id, b, op); // already mapped: nothing changed
    expect(calls).toBe(2);
    await manager.unregisterGuild(plain.sandbox.id, b, op);
    expect(calls).toBe(3);
    await manager.destroy(plain.sandbox.id, op); // no mappings left
    expect(calls).toBe(3);
    await new GuildRegistry(manager, silentLogger()).onGuildRemoved(a);
    expect(calls).toBe(4);
    await manager.destroy(mapped.sandbox.id, op);
    expect(calls).toBe(4);
  });
});
