import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Database } from '../src/db/database.ts';
import { silentLogger } from '../src/logger.ts';
import type { GuildDirectory } from '../src/sandbox/guild-directory.ts';
import { SandboxManager } from '../src/sandbox/manager.ts';
import type { Actor, Sandbox } from '../src/sandbox/types.ts';

/** The bench acts as an operator, like the CLI. */
export const BENCH_ACTOR: Actor = { kind: 'operator', name: 'bench' };

/**
 * The bot answers "is the bot in this guild" from its gateway cache, without a query; so does
 * this directory (always yes), so every create maps its guild as it would from Discord.
 */
const inEveryGuild: GuildDirectory = { isBotInGuild: async () => true, canManageGuild: async () => true };

/** SANDBOX_MAX_TOTAL is raised: the scale points seed far more sandboxes than the default cap of 500. */
export const benchManager = (db: Database): SandboxManager =>
  new SandboxManager({ prisma: db.prisma, logger: silentLogger(), guilds: inEveryGuild, limits: { maxTotal: 10_000_000 } });

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

/** The floor: the bare schema DDL, called directly with raw SQL. */
export const floorCreate = async (pool: pg.Pool, id: string = randomUUID()): Promise<string> => {
  await pool.query('SELECT create_sandbox_schema($1::uuid)', [id]);
  return id;
};

export const floorDrop = async (pool: pg.Pool, id: string): Promise<void> => {
  await pool.query('SELECT drop_sandbox_schema($1::uuid)', [id]);
};
