// PostgreSQL isolation, tried as a hostile worker would: logged in as sandbox A's role, every way out
// of A's schema is refused. pg_hba here is trust, so this checks privileges, not authentication.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsolationFixture, type TestSandbox } from './support.ts';

let fx: IsolationFixture;
let a: TestSandbox;
let b: TestSandbox;
let worker: pg.Client;

async function refused(sql: string): Promise<string> {
  try {
    await worker.query(sql);
  } catch (err) {
    return (err as { code?: string }).code ?? 'no code';
  }
  throw new Error(`not refused: ${sql}`);
}

beforeAll(async () => {
  fx = await IsolationFixture.create();
  a = await fx.sandbox();
  b = await fx.sandbox();
  await fx.db.pool.query(`INSERT INTO ${b.schema}.communities (name, discord_guild_id) VALUES ('b-secret', '100000000000000001')`);
  worker = new pg.Client({ connectionString: fx.roleUrl(a.id) });
  await worker.connect();
});

afterAll(async () => {
  await worker?.end().catch(() => undefined);
  await fx?.drop();
});

describe('a sandbox role', () => {
  it('logs in as sandbox_<32 hex> and works in its own schema', async () => {
    const { rows } = await worker.query('SELECT session_user::text AS u');
    expect(rows[0].u).toBe(`sandbox_${a.hex}`);
    await worker.query(`SET search_path = ${a.schema}`);
    await worker.query(`INSERT INTO communities (name, discord_guild_id) VALUES ('a', '100000000000000002')`);
    await worker.query(`CREATE TABLE own_table (id serial PRIMARY KEY, v text)`);
    await worker.query(`INSERT INTO own_table (v) VALUES ('x')`);
    expect((await worker.query('SELECT count(*)::int AS n FROM communities')).rows[0].n).toBe(1);
  });

  it('gets tables and sequences the control role adds to its schema later (default privileges)', async () => {
    await fx.db.pool.query(`CREATE TABLE ${a.schema}.later (id bigserial PRIMARY KEY, v text)`);
    await worker.query(`INSERT INTO ${a.schema}.later (v) VALUES ('y')`);
    expect((await worker.query(`SELECT v FROM ${a.schema}.later`)).rows).toEqual([{ v: 'y' }]);
  });

  it('cannot read control tables', async () => {
    expect(await refused('SELECT * FROM public.sandboxes')).toBe('42501');
    expect(await refused('SELECT * FROM public.sandbox_guild_mapping')).toBe('42501');
    expect(await refused('SELECT * FROM public.sandbox_audit_log')).toBe('42501');
  });

  it("cannot reach sandbox B's schema by search_path or by qualified names", async () => {
    await worker.query(`SET search_path = ${b.schema}`);
    expect(await refused('SELECT * FROM communities')).toBe('42P01'); // no USAGE: B's tables are invisible
    expect(await refused(`SELECT * FROM ${b.schema}.communities`)).toBe('42501');
    expect(await refused(`INSERT INTO ${b.schema}.communities (name) VALUES ('x')`)).toBe('42501');
    expect(await refused(`CREATE TABLE ${b.schema}.planted (id int)`)).toBe('42501');
    await worker.query(`SET search_path = ${a.schema}`);
  });

  it('cannot SET ROLE or SET SESSION AUTHORIZATION to anyone else', async () => {
    expect(await refused('SET ROLE postgres')).toBe('42501');
    expect(await refused(`SET ROLE sandbox_${b.hex}`)).toBe('42501');
    expect(await refused('SET SESSION AUTHORIZATION postgres')).toBe('42501');
  });

  it('cannot create objects in public', async () => {
    expect(await refused('CREATE TABLE public.planted (id int)')).toBe('42501');
    expect(await refused('CREATE FUNCTION public.planted() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$')).toBe('42501');
  });

  it('cannot call the management functions', async () => {
    expect(await refused(`SELECT public.drop_sandbox_role('${b.id}')`)).toBe('42501');
    expect(await refused(`SELECT public.create_sandbox_role('${b.id}', '${'x'.repeat(40)}')`)).toBe('42501');
    expect(await refused(`SELECT public.drop_sandbox_schema('${b.id}')`)).toBe('42501');
    expect(await refused('SELECT * FROM public.list_sandbox_roles()')).toBe('42501');
  });

  it("learns its own sandbox's status, and only its own, through sandbox_self_status()", async () => {
    expect((await worker.query('SELECT public.sandbox_self_status() AS s')).rows[0].s).toBe('running');
    await fx.db.pool.query(`UPDATE sandboxes SET status = 'expired' WHERE id = $1`, [a.id]);
    expect((await worker.query('SELECT public.sandbox_self_status() AS s')).rows[0].s).toBe('expired');
    await fx.db.pool.query(`UPDATE sandboxes SET status = 'running' WHERE id = $1`, [a.id]);
    // Not a sandbox role: NULL, and the function is not executable by PUBLIC at all.
    expect((await fx.db.pool.query('SELECT sandbox_self_status() AS s')).rows[0].s).toBeNull();
    const { rows } = await fx.db.pool.query(`SELECT has_function_privilege('public', 'sandbox_self_status()', 'EXECUTE') AS p`);
    expect(rows[0].p).toBe(false);
  });
});

describe('role lifecycle', () => {
  it('stores a SCRAM verifier, never the clear password', async () => {
    const c = await fx.sandbox();
    const { rows } = await fx.db.pool.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [c.schema]);
    expect(rows[0].rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(rows[0].rolpassword).not.toContain(credentialsPasswordOf(c.id));
  });

  it('lists roles by the exact pattern, and drops one (with objects it made) idempotently', async () => {
    const c = await fx.sandbox();
    await fx.db.pool.query('CREATE ROLE sandbox_not_a_sandbox_role NOLOGIN').catch(() => undefined);
    try {
      const listed = await fx.roles.list(fx.db.prisma);
      const mine = listed.filter((r) => [a.id, b.id, c.id].includes(r.sandboxId));
      expect(mine.map((r) => r.roleName).sort()).toEqual([a.schema, b.schema, c.schema].sort());
      expect(mine.every((r) => r.connectsHere)).toBe(true);
      expect(listed.some((r) => r.roleName === 'sandbox_not_a_sandbox_role')).toBe(false);

      const w = new pg.Client({ connectionString: fx.roleUrl(c.id) });
      await w.connect();
      await w.query(`CREATE TABLE ${c.schema}.made_by_worker (id int)`);
      await w.end();

      expect(await fx.db.prisma.$transaction(async (tx) => fx.roles.drop(tx, c.id))).toBe(true);
      expect(await fx.roles.exists(fx.db.prisma, c.id)).toBe(false);
      expect(await fx.roles.drop(fx.db.prisma, c.id)).toBe(false);
      // Objects it owned were handed to the control role, not lost with it.
      const { rows } = await fx.db.pool.query(`SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'made_by_worker'`, [c.schema]);
      expect(rows).toEqual([{ tableowner: 'postgres' }]);
    } finally {
      await fx.db.pool.query('DROP ROLE IF EXISTS sandbox_not_a_sandbox_role');
    }
  });

  it('rolls back with the provisioning transaction', async () => {
    const c = await fx.sandbox('running', { role: false });
    await expect(
      fx.db.prisma.$transaction(async (tx) => {
        await fx.roles.create(tx, c.id);
        throw new Error('provisioning failed after the role');
      }),
    ).rejects.toThrow('provisioning failed');
    expect(await fx.roles.exists(fx.db.prisma, c.id)).toBe(false);
  });

  it('connects through one group per control database: the database and function ACLs do not grow with sandboxes', async () => {
    const acl = async () =>
      (
        await fx.db.pool.query<{ db: number; fn: number }>(
          `SELECT (SELECT cardinality(datacl) FROM pg_database WHERE datname = current_database()) AS db,
                  (SELECT cardinality(proacl) FROM pg_proc WHERE proname = 'sandbox_self_status') AS fn`,
        )
      ).rows[0]!;
    const before = await acl();
    const made = await Promise.all([fx.sandbox(), fx.sandbox(), fx.sandbox(), fx.sandbox()]);
    expect(await acl()).toEqual(before);
    const { rows } = await fx.db.pool.query<{ group: string; members: string[] }>(
      `SELECT g.rolname::text AS group, array_agg(r.rolname::text ORDER BY r.rolname) AS members
       FROM pg_roles g JOIN pg_auth_members m ON m.roleid = g.oid JOIN pg_roles r ON r.oid = m.member
       WHERE g.rolname = 'sandbox_connect_' || (SELECT oid FROM pg_database WHERE datname = current_database())::text GROUP BY 1`,
    );
    expect(rows[0]!.members).toEqual(expect.arrayContaining(made.map((m) => m.schema)));
    // Each of them still logs in and reads its own status.
    const w = new pg.Client({ connectionString: fx.roleUrl(made[3]!.id) });
    await w.connect();
    expect((await w.query('SELECT public.sandbox_self_status() AS s')).rows[0].s).toBe('running');
    await w.end();
  });

  it("drops a dropped database's group in the orphan pass, never a live one's", async () => {
    const dead = 'sandbox_connect_4294967295'; // an oid no database has here
    await fx.db.pool.query(`CREATE ROLE ${dead} NOLOGIN`);
    try {
      const live = (await fx.db.pool.query<{ g: string }>(`SELECT 'sandbox_connect_' || oid::text AS g FROM pg_database WHERE datname = current_database()`)).rows[0]!.g;
      const dropped = await fx.roles.dropOrphanGroups(fx.db.prisma);
      expect(dropped).toContain(dead);
      expect(dropped).not.toContain(live);
      const left = await fx.db.pool.query(`SELECT rolname::text AS r FROM pg_roles WHERE rolname IN ($1, $2) ORDER BY 1`, [dead, live]);
      expect(left.rows).toEqual([{ r: live }]);
    } finally {
      await fx.db.pool.query(`DROP ROLE IF EXISTS ${dead}`);
    }
  });

  it('refuses to make a role for a sandbox whose schema does not exist', async () => {
    const c = await fx.sandbox('running', { role: false });
    await fx.db.pool.query('SELECT drop_sandbox_schema($1)', [c.id]);
    await expect(fx.roles.create(fx.db.prisma, c.id)).rejects.toThrow(/does not exist/);
  });
});

function credentialsPasswordOf(id: string): string {
  // The derived password, computed here independently of the product code.
  return createHmacHex('sdk-test-credential-secret-0123456789abcdef', `postgres:${id}`);
}
import { createHmac } from 'node:crypto';
const createHmacHex = (key: string, msg: string): string => createHmac('sha256', key).update(msg).digest('hex');
