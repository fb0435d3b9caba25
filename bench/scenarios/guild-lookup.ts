import { randomInt } from 'node:crypto';
import type pg from 'pg';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import type { QueryCounter } from '../database.ts';
import { Recorder, runBatch } from '../measure.ts';
import { seedGuildId } from '../seed.ts';
import { compare, type Comparison } from './lifecycle.ts';

export interface LookupResult {
  mode: string;
  concurrency: number;
  mappings: number;
  /** full = manager.getByGuildId, floor = one raw SQL join returning the same fields. */
  lookup: Comparison;
  statementsPerLookup: number;
}

/** The same answer as getByGuildId (the sandbox and its guild ids) in one hand-written statement. */
const RAW_LOOKUP = `
  SELECT s.*, ARRAY(SELECT g.guild_id FROM sandbox_guild_mapping g WHERE g.sandbox_id = s.id ORDER BY g.created_at) AS guild_ids
  FROM sandbox_guild_mapping m JOIN sandboxes s ON s.id = m.sandbox_id
  WHERE m.guild_id = $1`;

/**
 * getByGuildId over the seeded mappings (random hits), next to the raw SQL floor, in alternating
 * blocks so both see the same machine.
 */
export async function runGuildLookup(
  manager: SandboxManager,
  counter: QueryCounter,
  floorPool: pg.Pool,
  opts: { mode: string; lookups: number; concurrency: number; mappings: number },
): Promise<LookupResult> {
  if (opts.mappings < 1) throw new Error('guild lookup needs seeded mappings');
  const pick = (): string => seedGuildId(1 + randomInt(opts.mappings));
  const check = await counter.count(() => manager.getByGuildId(pick()));
  if (!check.result) throw new Error('a seeded guild did not resolve to a sandbox');
  const full = new Recorder();
  const floor = new Recorder();
  const block = 250;
  for (let done = 0, round = 0; done < opts.lookups; done += block, round++) {
    const ids = Array.from({ length: Math.min(block, opts.lookups - done) }, pick);
    const viaManager = () => runBatch(ids, opts.concurrency, (id) => manager.getByGuildId(id), full);
    const viaSql = () => runBatch(ids, opts.concurrency, (id) => floorPool.query(RAW_LOOKUP, [id]), floor);
    if (round % 2 === 0) {
      await viaSql();
      await viaManager();
    } else {
      await viaManager();
      await viaSql();
    }
  }
  return { mode: opts.mode, concurrency: opts.concurrency, mappings: opts.mappings, lookup: compare(full, floor), statementsPerLookup: check.statements };
}
