import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Database } from '../src/db/database.ts';
import { silentLogger } from '../src/logger.ts';
import type { GuildDirectory } from '../src/sandbox/guild-directory.ts';
import { SandboxManager } from '../src/sandbox/manager.ts';
import { SandboxCredentials, Secret, scramSha256Verifier } from '../src/sandbox/credentials.ts';
import { SandboxRoles } from '../src/sandbox/store/roles.ts';
import type { SandboxServers } from '../src/sandbox/servers.ts';
import type { Actor, Sandbox } from '../src/sandbox/types.ts';
import { GENERATOR_VERSION } from '../src/sandbox/store/template/generator.ts';
import { DEFAULT_TEMPLATE } from '../src/sandbox/store/template/template.ts';

/** The bench acts as an operator, like the CLI. */
export const BENCH_ACTOR: Actor = { kind: 'operator', name: 'bench' };

/**
 * The bot answers "is the bot in this guild" from its gateway cache, without a query; so does
 * this directory (always yes), so every create maps its guild as it would from Discord.
 */
const inEveryGuild: GuildDirectory = { isBotInGuild: async () => true, canManageGuild: async () => true };

/**
 * Isolation is on with a PostgreSQL server, as in production: each create also makes the sandbox's
 * role and grants in its provisioning transaction (BENCH_ISOLATION=off measures without).
 */
export const BENCH_CREDENTIALS = process.env.BENCH_ISOLATION === 'off' ? undefined : new SandboxCredentials(new Secret('bench-credential-secret-0123456789abcdef0123'));

export const benchManager = (db: Database, opts: { isolation?: boolean; /** Placement: several servers (bench/scenarios/placement.ts). */ servers?: SandboxServers } = {}): SandboxManager =>
  new SandboxManager({
    prisma: db.prisma,
    ...(opts.servers ? { servers: opts.servers } : {}),
    logger: silentLogger(),
    guilds: inEveryGuild,
    postgresResources: opts.isolation && BENCH_CREDENTIALS ? [new SandboxRoles(BENCH_CREDENTIALS)] : [],
    // The scale points seed far more sandboxes than the default cap of 500.
    limits: { maxTotal: 10_000_000 },
  });

/** Whether the manager's creates make a role: the floor then includes the same role DDL. */
export const makesRoles = (manager: SandboxManager): boolean => manager.postgresResources.length > 0;

let serial = 0;
/** Fresh owner and guild per create, so the per-owner limit never applies and every create maps a guild. */
const fresh = (): { owner: string; guildIds: string[] } => {
  const n = ++serial;
  return { owner: `cli:bench-${n}`, guildIds: [String(300_000_000_000_000_000n + BigInt(n))] };
};

/** A full create: pending row + audit, creating, schema, guild mapping, running, each audited. */
export const fullCreate = (manager: SandboxManager): Promise<Sandbox> =>
  manager.create(fresh(), BENCH_ACTOR).then((r) => r.sandbox);

export const fullDestroy = (manager: SandboxManager, sandbox: Sandbox): Promise<Sandbox> => manager.destroy(sandbox.id, BENCH_ACTOR);

/**
 * The floor: the bare DDL a create runs, called directly with raw SQL: the default template's cached
 * DDL and seed (what create builds since templates; the templates section compares it with the
 * hand-written create_sandbox_schema), in one autocommit statement. With `withRole` (isolation on) the
 * same statement also makes the role and its grants (FROM runs first: schema, then role), with a
 * SCRAM verifier of its derived password computed the way the manager does. The template cache must
 * be filled (any manager create does it: warmUp).
 */
export const floorCreate = async (pool: pg.Pool, id: string = randomUUID(), withRole = false): Promise<string> => {
  const build = `SELECT sandbox_template_instantiate(sandbox_schema_name($1::uuid), '${DEFAULT_TEMPLATE}', ${GENERATOR_VERSION}, true) AS v`;
  const { rows } =
    withRole && BENCH_CREDENTIALS
      ? await pool.query(`SELECT s.v, create_sandbox_role($1::uuid, $2) FROM (${build}) AS s`, [id, await scramSha256Verifier(BENCH_CREDENTIALS.postgresPassword(id))])
      : await pool.query(build, [id]);
  if (rows[0]?.v == null) throw new Error('floorCreate: the template cache is empty; run a manager create first');
  return id;
};

export const floorDrop = async (pool: pg.Pool, id: string, withRole = false): Promise<void> => {
  if (withRole) await pool.query('SELECT drop_sandbox_schema($1::uuid) FROM (SELECT drop_sandbox_role($1::uuid)) AS r', [id]);
  else await pool.query('SELECT drop_sandbox_schema($1::uuid)', [id]);
};
