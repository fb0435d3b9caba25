import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { RouteTable } from '../../src/routing/route-table.ts';
import { createEmbeddedTestDatabase, snowflake, type TestDatabase } from '../support/db.ts';
import { insertSandbox, mapGuild, unmapGuild, waitFor } from './support/routing.ts';

let db: TestDatabase;
let t: RouteTable | undefined;

beforeAll(async () => {
  db = await createEmbeddedTestDatabase();
});

afterAll(async () => {
  await t?.stop();
  await db?.drop();
});

it('on the embedded database the route feed migration runs and polling applies changes within about a second', async () => {
  t = new RouteTable({ pool: db.pool, logger: silentLogger(), poll: true, pollIntervalMs: 1000, reloadIntervalMs: 3_600_000 });
  await t.start();
  const s = await insertSandbox(db);
  const g = snowflake();
  const before = t.version;
  await mapGuild(db, g, s);
  const started = Date.now();
  await waitFor(() => t!.lookup(g) === s, 'the polled mapping', 3000);
  expect(Date.now() - started).toBeLessThan(2000);
  expect(t.version).toBe(before + 1);
  await unmapGuild(db, g);
  await waitFor(() => t!.lookup(g) === undefined, 'the polled unmap', 3000);
  expect(t.version).toBe(before + 2);
});
