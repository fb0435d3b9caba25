import type { MachineInfo } from './machine.ts';
import type { AckResult } from './scenarios/interaction-ack.ts';
import type { LookupResult } from './scenarios/guild-lookup.ts';
import type { Comparison, LifecycleResult } from './scenarios/lifecycle.ts';
import type { PassTiming, ScalePoint } from './scenarios/scale.ts';
import { ms, num, ratio, table, times } from './stats.ts';

export interface BenchResults {
  startedAt: string;
  durationMs: number;
  machine: MachineInfo;
  config: Record<string, unknown>;
  headline: { createOverheadP50: number; createOverheadP50Concurrent: number; createP50At: Record<string, number> };
  lifecycle: LifecycleResult[];
  scale: ScalePoint[];
  guildLookup: LookupResult[];
  interactionAck: AckResult | { skipped: string };
  notes: string[];
}

const lat = (c: Comparison['full']): string => `${ms(c.p50)} / ${ms(c.p95)} / ${ms(c.p99)}`;

function lifecycleTable(rows: LifecycleResult[]): string {
  const body = rows.flatMap((r) =>
    (['create', 'destroy'] as const).map((op) => {
      const c = r[op];
      return [
        op,
        r.mode,
        String(c.full.n),
        lat(c.full),
        num(c.full.opsPerSec),
        lat(c.floor),
        num(c.floor.opsPerSec),
        `${times(c.ratioP50)} / ${times(c.ratioP95)} / ${times(c.ratioP99)}`,
        times(c.throughputRatio),
      ];
    }),
  );
  return table(
    'Create and destroy: full manager operation vs the bare DDL floor (the default template DDL and drop_sandbox_schema, plus the role DDL with isolation on), interleaved',
    ['op', 'mode', 'n', 'full p50/p95/p99 ms', 'full ops/s', 'floor p50/p95/p99 ms', 'floor ops/s', 'full/floor p50/p95/p99', 'floor/full ops/s'],
    body,
  );
}

function scaleTable(points: ScalePoint[]): string {
  const base = points[0];
  const pass = (p: PassTiming, b: PassTiming | undefined, what: string): string =>
    `${ms(p.p50Ms)} ms${b ? ` (${times(ratio(p.p50Ms, b.p50Ms))})` : ''} ${p.statements} stmt, ${p.items} ${what}${p.failures ? `, ${p.failures} FAILED` : ''}`;
  const body = points.map((p) => [
    String(p.existing),
    ms(p.create.full.p50),
    times(ratio(p.create.full.p50, base?.create.full.p50 ?? NaN)),
    times(p.create.ratioP50),
    pass(p.list, undefined, 'rows'),
    pass(p.sweep, base?.sweep, 'actions'),
    pass(p.findOrphans, base?.findOrphans, 'found'),
    pass(p.findOrphansFull, base?.findOrphansFull, 'found'),
    pass(p.cleanupOrphans, base?.cleanupOrphans, 'dropped'),
  ]);
  return table(
    'Scale: with N existing sandboxes (p50; "(x)" = ratio to the first size; stmt = statements per call incl. BEGIN/COMMIT)',
    ['existing', 'create p50 ms', 'create vs empty', 'create/floor p50', 'list()', 'sweeper pass', 'orphan lookup (per-pass slice)', 'orphan lookup (all schemas)', 'cleanupOrphanedSchemas'],
    body,
  );
}

function lookupTable(rows: LookupResult[]): string {
  const body = rows.map((r) => [
    r.mode,
    String(r.mappings),
    num(r.lookup.full.opsPerSec),
    `${ms(r.lookup.full.p50)} / ${ms(r.lookup.full.p99)}`,
    num(r.lookup.floor.opsPerSec),
    `${ms(r.lookup.floor.p50)} / ${ms(r.lookup.floor.p99)}`,
    times(r.lookup.throughputRatio),
    String(r.statementsPerLookup),
  ]);
  return table(
    'Guild lookup: manager.getByGuildId vs one raw SQL join (random seeded guilds)',
    ['mode', 'mappings', 'getByGuildId ops/s', 'p50/p99 ms', 'raw SQL ops/s', 'p50/p99 ms', 'raw/manager ops/s', 'stmt/lookup'],
    body,
  );
}

function ackTable(r: BenchResults['interactionAck']): string {
  if ('skipped' in r) return `\nInteraction acknowledgement: SKIPPED (${r.skipped})`;
  return table(
    'Interaction acknowledgement through the fake Discord (real bot, /sandbox list and /sandbox status alternating)',
    ['commands', 'INTERACTION_CREATE → defer p50 / p99 ms', '→ final edit p50 / p99 ms', 'not deferred'],
    [[String(r.commands), `${ms(r.ack.p50)} / ${ms(r.ack.p99)}`, `${ms(r.final.p50)} / ${ms(r.final.p99)}`, String(r.notDeferred)]],
  );
}

/** One gated ratio: what was measured, its target, and whether it holds. */
export interface Target {
  measure: string;
  value: number;
  limit: number;
  ok: boolean;
}

/**
 * The issue's gates, as ratios within this run: create ≤ 1.3× and destroy ≤ 2× the bare DDL at p50
 * (sequential and concurrent), and the idle sweeper pass and the orphan lookup at 5,000 sandboxes
 * ≤ 1.5× their cost at 0. Gated with NATS and Redis unset (the control plane alone).
 */
export function targets(r: BenchResults): Target[] {
  const out: Target[] = [];
  const gate = (measure: string, value: number, limit: number): void => {
    out.push({ measure, value, limit, ok: Number.isFinite(value) && value <= limit });
  };
  for (const l of r.lifecycle) {
    gate(`create/DDL p50, ${l.mode}`, l.create.ratioP50, 1.3);
    gate(`destroy/drop p50, ${l.mode}`, l.destroy.ratioP50, 2);
  }
  const at = (n: number) => r.scale.find((p) => p.existing === n);
  const zero = at(0);
  const five = at(5000);
  if (zero && five) {
    gate('idle sweeper pass, 5,000 vs 0', ratio(five.sweep.p50Ms, zero.sweep.p50Ms), 1.5);
    gate('orphan lookup per pass, 5,000 vs 0', ratio(five.findOrphans.p50Ms, zero.findOrphans.p50Ms), 1.5);
  }
  return out;
}

function targetsTable(r: BenchResults): string {
  const zero = r.scale.find((p) => p.existing === 0);
  const big = r.scale.filter((p) => p.existing > 5000);
  const body = targets(r).map((t) => [t.measure, times(t.value), `≤ ${t.limit}×`, t.ok ? 'ok' : 'MISSED']);
  for (const p of big) {
    if (!zero) break;
    body.push([`idle sweeper pass, ${p.existing} vs 0 (reported)`, times(ratio(p.sweep.p50Ms, zero.sweep.p50Ms)), '-', '-']);
    body.push([`orphan lookup per pass, ${p.existing} vs 0 (reported)`, times(ratio(p.findOrphans.p50Ms, zero.findOrphans.p50Ms)), '-', '-']);
    body.push([`orphan lookup all schemas, ${p.existing} vs 0 (reported)`, times(ratio(p.findOrphansFull.p50Ms, zero.findOrphansFull.p50Ms)), '-', '-']);
  }
  const ext = process.env.NATS_URL || process.env.REDIS_URL ? ' (NATS_URL/REDIS_URL set: not a gating run)' : ' (NATS and Redis unset)';
  return table(`Targets${ext}`, ['measure', 'got', 'target', ''], body);
}

export function render(r: BenchResults): string {
  const h = r.headline;
  return [
    targetsTable(r),
    lifecycleTable(r.lifecycle),
    scaleTable(r.scale),
    lookupTable(r.guildLookup),
    ackTable(r.interactionAck),
    `\nHeadline: a full create costs ${times(h.createOverheadP50)} the bare DDL at p50 sequentially (${times(h.createOverheadP50Concurrent)} with ${String(r.config.concurrency)} concurrent).`,
    ...r.notes.map((n) => `Note: ${n}`),
  ].join('\n');
}
