/**
 * Chaos: 200 randomized operations (create, register, unregister, extend, destroy, sweep) run
 * concurrently from several SandboxManagers, each with its own pool and Prisma client on the same
 * database, over a few owners, names and guilds so that they collide, with faults (InjectedFault)
 * thrown at random named points. A typed SandboxError is an expected outcome; an internal error
 * not caused by an injected fault, or any raw error, fails the test. The owner limit is checked
 * after every operation (one statement, one snapshot). After a final sweep with a clock past every
 * threshold, the invariants must hold: every live row has its schema and every sandbox-pattern
 * schema has a live row; mappings and claims point only to live sandboxes; no owner is over the
 * limit; no row is stuck; and per sandbox the status_changed audit rows form a path through
 * TRANSITIONS from `pending` to the row's current status.
 *
 * The seed is printed; `CHAOS_SEED=<n> npx vitest run test/fault/chaos.test.ts` replays the same
 * plan and the same faults per operation (the interleaving is up to the scheduler).
 */
import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, createPrisma, type PrismaClient } from '../../src/db/database.ts';
import { silentLogger } from '../../src/logger.ts';
import { ErrorCode, SandboxError } from '../../src/sandbox/errors.ts';
import { InjectedFault, type FaultInjector } from '../../src/sandbox/faults.ts';
import { RecordedGuildDirectory, type GuildDirectory } from '../../src/sandbox/guild-directory.ts';
import { SandboxManager } from '../../src/sandbox/manager.ts';
import type { Actor } from '../../src/sandbox/types.ts';
import { botJoined, createTestDatabase, snowflake, type TestDatabase } from '../support/db.ts';
import { checkInvariants, ownersWithinLimit, prng } from './support/invariants.ts';
import { STUCK_AFTER_MS, sweepAt } from './support/sweep.ts';
import type pg from 'pg';

const SEED = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : randomInt(2 ** 31);
const OPS = 200;
const CONCURRENCY = 8;
const MANAGERS = 3;
const LIMIT = 3;
const FAULT_PROBABILITY = 0.1;
const HOUR = 3_600_000;
/** Sweep clocks: now; past the stuck threshold; past a 1 h TTL (expires); past TTL + grace (destroys). */
const SWEEP_AHEAD = [0, 0, STUCK_AFTER_MS + 60_000, 1.5 * HOUR, 1.5 * HOUR, 2.5 * HOUR];
/** Past every lease and backoff the in-run sweeps can set (2.5 h + 1 h backoff cap). */
const FINAL_AHEAD = 4 * HOUR;

const OWNERS = ['111111111111111111', '222222222222222222', 'cli:carol', 'cli:dave'];
const NAMES = Array.from({ length: 6 }, (_, i) => `chaos-${i}`);
const actorFor = (owner: string): Actor => (owner.startsWith('cli:') ? { kind: 'operator', name: owner.slice(4) } : { kind: 'discord', id: owner });

/** The bot is in the guilds recorded in bot_guilds, and every test user may manage them. */
class PermissiveDirectory implements GuildDirectory {
  constructor(private readonly recorded: RecordedGuildDirectory) {}
  isBotInGuild(guildId: string): Promise<boolean> {
    return this.recorded.isBotInGuild(guildId);
  }
  async canManageGuild(): Promise<boolean> {
    return true;
  }
}

type Op =
  | { kind: 'create'; owner: string; actor: Actor; name: string | undefined; guildIds: string[]; ttlHours: number }
  | { kind: 'destroy' | 'extend'; actor: Actor; name: string; hours: number }
  | { kind: 'register' | 'unregister'; actor: Actor; name: string; guildId: string }
  | { kind: 'sweep'; aheadMs: number };

type Planned = Op & { n: number; manager: number; faultSeed: number };

/** A fault injector with its own PRNG, so one operation's faults do not depend on the others. */
function randomFaults(seed: number, injected: string[]): FaultInjector {
  const r = prng(seed);
  return {
    hit(point) {
      if (r.chance(FAULT_PROBABILITY)) {
        injected.push(point);
        throw new InjectedFault(point);
      }
    },
  };
}

function plan(seed: number, guilds: string[]): Planned[] {
  const r = prng(seed);
  const ops: Planned[] = [];
  for (let n = 0; n < OPS; n++) {
    const roll = r.next();
    const owner = r.pick(OWNERS);
    // Mostly the owner acts; sometimes someone else (refused unless an operator).
    const actor = r.chance(0.8) ? actorFor(owner) : actorFor(r.pick(OWNERS));
    const name = r.pick(NAMES);
    let op: Op;
    if (roll < 0.36) {
      const guildIds = r.chance(0.35) ? [r.pick(guilds)] : [];
      op = { kind: 'create', owner, actor: actorFor(owner), name: r.chance(0.85) ? name : undefined, guildIds, ttlHours: r.chance(0.5) ? 1 : 24 };
    } else if (roll < 0.5) op = { kind: 'destroy', actor, name, hours: 0 };
    else if (roll < 0.64) op = { kind: 'extend', actor, name, hours: 1 + r.int(48) };
    else if (roll < 0.78) op = { kind: 'register', actor, name, guildId: r.pick(guilds) };
    else if (roll < 0.9) op = { kind: 'unregister', actor, name, guildId: r.pick(guilds) };
    else op = { kind: 'sweep', aheadMs: r.pick(SWEEP_AHEAD) };
    ops.push({ ...op, n, manager: r.int(MANAGERS), faultSeed: r.int(2 ** 31) });
  }
  return ops;
}

/** Whether the error chain contains one of our injected faults. */
function isInjected(err: unknown): boolean {
  for (let e = err, i = 0; e && i < 8; i++, e = (e as { cause?: unknown }).cause) if (e instanceof InjectedFault) return true;
  return false;
}

/** Expected: a user-facing SandboxError, or anything caused by an injected fault. */
function isExpected(err: unknown): boolean {
  if (isInjected(err)) return true;
  return err instanceof SandboxError && err.isUserError && err.code !== ErrorCode.Unavailable;
}

describe('chaos: concurrent operations with injected faults', () => {
  let db: TestDatabase;
  const clients: { pool: pg.Pool; prisma: PrismaClient }[] = [];

  beforeAll(async () => {
    console.log(`CHAOS_SEED=${SEED}`);
    db = await createTestDatabase({ poolSize: 4 });
    for (let i = 0; i < MANAGERS; i++) {
      const pool = createPool(db.url, silentLogger(), 4);
      clients.push({ pool, prisma: createPrisma(pool, silentLogger()) });
    }
  });
  afterAll(async () => {
    for (const c of clients) {
      await c.prisma.$disconnect();
      await c.pool.end();
    }
    await db?.drop();
  });

  it(`keeps every invariant (seed ${SEED})`, async () => {
    const guilds = Array.from({ length: 5 }, () => snowflake());
    await botJoined(db, ...guilds.slice(0, 4)); // the fifth becomes claims
    const ops = plan(SEED, guilds);
    const unexpected: string[] = [];
    const overLimit: string[] = [];
    const outcomes = new Map<string, number>();
    const injected: string[] = [];
    const count = (key: string): void => void outcomes.set(key, (outcomes.get(key) ?? 0) + 1);

    const run = async (op: Planned): Promise<void> => {
      const { prisma } = clients[op.manager]!;
      const faults = randomFaults(op.faultSeed, injected);
      const manager = new SandboxManager({ prisma, logger: silentLogger(), limits: { maxPerOwner: LIMIT }, guilds: new PermissiveDirectory(new RecordedGuildDirectory(prisma)), faults });
      switch (op.kind) {
        case 'create':
          await manager.create({ name: op.name, owner: op.owner, guildIds: op.guildIds, ttlHours: op.ttlHours }, op.actor);
          return;
        case 'destroy':
          await manager.destroy(op.name, op.actor);
          return;
        case 'extend':
          await manager.extendTtl(op.name, op.hours, op.actor);
          return;
        case 'register':
          await manager.registerGuild(op.name, op.guildId, op.actor);
          return;
        case 'unregister':
          await manager.unregisterGuild(op.name, op.guildId, op.actor);
          return;
        case 'sweep': {
          const summary = await sweepAt({ prisma, limits: { maxPerOwner: LIMIT } }, { aheadMs: op.aheadMs, faults });
          for (const f of summary.failures) {
            // A sweeper failure must come from an injected fault (directly or through a failed teardown).
            if (!/injected fault/.test(f.message) && f.code !== ErrorCode.CleanupFailed) unexpected.push(`#${op.n} sweep: ${JSON.stringify(f)}`);
            count(`sweep-failure ${f.code}`);
          }
          return;
        }
      }
    };

    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < ops.length) {
        const op = ops[next++]!;
        try {
          await run(op);
          count(`${op.kind} ok`);
        } catch (err) {
          count(`${op.kind} ${err instanceof SandboxError ? err.code : isInjected(err) ? 'injected' : 'raw'}`);
          if (!isExpected(err)) {
            const e = err as Error & { code?: string };
            unexpected.push(`#${op.n} ${JSON.stringify(op)}: ${e?.name} ${e?.code ?? ''} ${e?.message} ${(e?.cause as Error | undefined)?.message ?? ''}`);
          }
        }
        overLimit.push(...(await ownersWithinLimit(db, LIMIT)));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    const final = await sweepAt({ prisma: db.prisma, limits: { maxPerOwner: LIMIT } }, { aheadMs: FINAL_AHEAD });
    console.log(`CHAOS_SEED=${SEED} outcomes`, Object.fromEntries([...outcomes].sort()), `injected faults: ${injected.length}`, 'final sweep', final.counts);

    expect(unexpected, `seed ${SEED}`).toEqual([]);
    expect(overLimit, `seed ${SEED}`).toEqual([]);
    expect(final.failures, `seed ${SEED}`).toEqual([]);
    const { rows: stuck } = await db.pool.query(`SELECT id, status::text AS status FROM sandboxes WHERE status IN ('pending', 'creating', 'destroying', 'failed')`);
    expect(stuck, `seed ${SEED}: rows left stuck after the final sweep`).toEqual([]);
    expect(await checkInvariants(db, { maxPerOwner: LIMIT }), `seed ${SEED}`).toEqual([]);
    // Every recorded teardown failure was one we injected (not a deadlock or a lost race).
    const { rows: teardownFailures } = await db.pool.query<{ error: string }>(`SELECT details->>'error' AS error FROM sandbox_audit_log WHERE event_type = 'destroy_failed'`);
    expect(teardownFailures.filter((r) => !/injected fault/.test(r.error)), `seed ${SEED}`).toEqual([]);
    // The run did exercise what it claims to: successes, conflicts and injected faults.
    expect(outcomes.get('create ok') ?? 0).toBeGreaterThan(0);
    expect(injected.length).toBeGreaterThan(0);
  });
});
