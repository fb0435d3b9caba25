import type { Database } from '../../../src/db/database.ts';
import { COUNTED_STATUSES, TRANSITIONS, type SandboxStatus } from '../../../src/sandbox/types.ts';

/**
 * The lifecycle invariants of issue 4, checked against the database itself (exact queries, no
 * Prisma). Each returns human-readable violations; an empty list means the invariant holds.
 */
export async function checkInvariants(db: Database, opts: { maxPerOwner: number }): Promise<string[]> {
  return [
    ...(await liveRowsHaveSchemas(db)),
    ...(await schemasHaveLiveRows(db)),
    ...(await mappingsPointToLiveSandboxes(db)),
    ...(await claimsPointToLiveSandboxes(db)),
    ...(await ownersWithinLimit(db, opts.maxPerOwner)),
    ...(await statusChainsAreAudited(db)),
  ];
}

/** Rows past `creating` that are not destroyed must have their schema (pending/creating/failed may not). */
export async function liveRowsHaveSchemas(db: Database): Promise<string[]> {
  const { rows } = await db.pool.query<{ id: string; status: string; schema_name: string }>(`
    SELECT s.id, s.status::text AS status, s.schema_name FROM sandboxes s
    WHERE s.status IN ('running', 'expired', 'destroying')
      AND NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = s.schema_name)`);
  return rows.map((r) => `live sandbox ${r.id} (${r.status}) has no schema ${r.schema_name}`);
}

export async function schemasHaveLiveRows(db: Database): Promise<string[]> {
  const { rows } = await db.pool.query<{ nspname: string }>(`
    SELECT n.nspname::text AS nspname FROM pg_namespace n
    WHERE is_sandbox_schema_name(n.nspname::text)
      AND NOT EXISTS (SELECT 1 FROM sandboxes s WHERE s.schema_name = n.nspname::text AND s.status <> 'destroyed')`);
  return rows.map((r) => `orphan schema ${r.nspname} has no live row`);
}

export async function mappingsPointToLiveSandboxes(db: Database): Promise<string[]> {
  const { rows } = await db.pool.query<{ guild_id: string; sandbox_id: string; status: string }>(`
    SELECT m.guild_id, m.sandbox_id, s.status::text AS status FROM sandbox_guild_mapping m JOIN sandboxes s ON s.id = m.sandbox_id
    WHERE s.status NOT IN ('running', 'expired')`);
  return rows.map((r) => `guild ${r.guild_id} is mapped to ${r.status} sandbox ${r.sandbox_id}`);
}

export async function claimsPointToLiveSandboxes(db: Database): Promise<string[]> {
  const { rows } = await db.pool.query<{ guild_id: string; sandbox_id: string; status: string }>(`
    SELECT c.guild_id, c.sandbox_id, s.status::text AS status FROM sandbox_guild_claims c JOIN sandboxes s ON s.id = c.sandbox_id
    WHERE s.status = 'destroyed'`);
  return rows.map((r) => `guild ${r.guild_id} is claimed by destroyed sandbox ${r.sandbox_id}`);
}

/** One statement, so one snapshot: safe to run while operations are in flight. */
export async function ownersWithinLimit(db: Database, limit: number): Promise<string[]> {
  const { rows } = await db.pool.query<{ owner: string; n: string; statuses: string }>(
    `SELECT owner, count(*)::text AS n, string_agg(status::text, ',' ORDER BY status::text) AS statuses
     FROM sandboxes WHERE status::text = ANY($1::text[]) GROUP BY owner HAVING count(*) > $2`,
    [[...COUNTED_STATUSES], limit],
  );
  return rows.map((r) => `owner ${r.owner} holds ${r.n} sandboxes (${r.statuses}), over the limit of ${limit}`);
}

/**
 * Per sandbox, the status_changed audit rows (ordered by id) form a path through TRANSITIONS
 * that starts at the status its `created` audit row records (`pending` for old rows) and ends at the row's current status.
 */
export async function statusChainsAreAudited(db: Database): Promise<string[]> {
  const { rows: sandboxes } = await db.pool.query<{ id: string; status: SandboxStatus }>(`SELECT id, status::text AS status FROM sandboxes`);
  // A row starts where its `created` audit row says (`creating` since the single-commit create), else `pending`.
  const { rows: starts } = await db.pool.query<{ sandbox_id: string; status: string | null }>(
    `SELECT sandbox_id, details->>'status' AS status FROM sandbox_audit_log WHERE event_type = 'created'`,
  );
  const startOf = new Map(starts.map((r) => [r.sandbox_id, r.status ?? 'pending']));
  const { rows: events } = await db.pool.query<{ sandbox_id: string; from: string; to: string; audit_id: string }>(`
    SELECT sandbox_id, details->>'from' AS "from", details->>'to' AS "to", id::text AS audit_id FROM sandbox_audit_log
    WHERE event_type = 'status_changed' ORDER BY sandbox_audit_log.id`);
  const bySandbox = new Map<string, { from: string; to: string; audit_id: string }[]>();
  for (const e of events) {
    if (!bySandbox.has(e.sandbox_id)) bySandbox.set(e.sandbox_id, []);
    bySandbox.get(e.sandbox_id)!.push(e);
  }
  const problems: string[] = [];
  const known = new Set(sandboxes.map((s) => s.id));
  for (const id of bySandbox.keys()) if (!known.has(id)) problems.push(`status_changed audit rows for unknown sandbox ${id}`);
  for (const s of sandboxes) {
    let at = startOf.get(s.id) ?? 'pending';
    for (const e of bySandbox.get(s.id) ?? []) {
      if (e.from !== at) problems.push(`sandbox ${s.id}: audit ${e.audit_id} says ${e.from}→${e.to}, but it was ${at}`);
      if (!(TRANSITIONS[e.from as SandboxStatus] ?? []).includes(e.to as SandboxStatus)) {
        problems.push(`sandbox ${s.id}: audit ${e.audit_id} records a forbidden transition ${e.from}→${e.to}`);
      }
      at = e.to;
    }
    if (at !== s.status) problems.push(`sandbox ${s.id}: audited chain ends at ${at}, but the row is ${s.status}`);
  }
  return problems;
}

/** A small seeded PRNG (mulberry32). */
export function prng(seed: number): { next(): number; int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}
