// Provisioning and teardown of a sandbox role by a control role that is NOT a superuser (only
// CREATEROLE, owning its database), as a production install runs. Teardown must end the worker's
// sessions and drop the role even when the worker made tables of its own.
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { silentLogger } from '../../src/logger.ts';
import { SandboxRoles } from '../../src/sandbox/store/roles.ts';
import { ADMIN_URL, dropDatabase, urlFor } from '../support/db.ts';
import { credentials } from './support.ts';

const tag = randomBytes(4).toString('hex');
const CTL = `sdk_ctl_${tag}`;
const DB = `sbx_test_ctl_${tag}`;
const id = randomUUID();
const role = `sandbox_${id.replaceAll('-', '')}`;
let admin: pg.Client;
let db: Database;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE ROLE ${CTL} LOGIN CREATEROLE`);
  await admin.query(`CREATE DATABASE ${DB} OWNER ${CTL}`);
  const url = new URL(urlFor(DB));
  url.username = CTL;
  db = await openDatabase({ databaseUrl: url.toString(), dataDir: '/nonexistent', logger: silentLogger(), poolSize: 3 });
});

afterAll(async () => {
  await db?.close();
  await dropDatabase(admin, DB);
  await admin.query(`DROP ROLE IF EXISTS ${role}`);
  await admin.query(`DROP ROLE IF EXISTS ${CTL}`);
  await admin.end();
});

it('a CREATEROLE control role creates the role, and drops it while the worker is connected', async () => {
  const roles = new SandboxRoles(credentials);
  await db.pool.query(
    `INSERT INTO sandboxes (id, name, owner, status, schema_name, expires_at) VALUES ($1, 'ctl-test', 'cli:test', 'running', sandbox_schema_name($1), now() + interval '1 hour')`,
    [id],
  );
  await db.prisma.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT create_sandbox_schema(${id}::uuid)`;
    await roles.create(tx, id);
  });
  const workerUrl = new URL(urlFor(DB));
  workerUrl.username = role;
  const worker = new pg.Client({ connectionString: workerUrl.toString() });
  const lost: string[] = [];
  worker.on('error', (e) => lost.push((e as { code?: string }).code ?? e.message));
  await worker.connect();
  await worker.query(`CREATE TABLE ${role}.made_by_worker (id int)`);
  expect((await worker.query('SELECT public.sandbox_self_status() AS s')).rows[0].s).toBe('running');
  await expect(worker.query('SELECT * FROM public.sandboxes')).rejects.toMatchObject({ code: '42501' });

  const dropped = await db.prisma.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT drop_sandbox_schema(${id}::uuid)`;
    return roles.drop(tx, id);
  });
  expect(dropped).toBe(true);
  expect((await admin.query('SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1', [role])).rows[0].n).toBe(0);
  await expect(worker.query('SELECT 1')).rejects.toThrow();
  expect(lost).toContain('57P01'); // its session was ended by the teardown
  await worker.end().catch(() => undefined);
});
