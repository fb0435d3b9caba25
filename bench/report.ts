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
    'Create and destroy: full manager operation vs the bare DDL floor (create_/drop_sandbox_schema), interleaved',
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
    pass(p.cleanupOrphans, base?.cleanupOrphans, 'dropped'),
  ]);
  return table(
    'Scale: with N existing sandboxes (p50; "(x)" = ratio to the first size; stmt = statements per call incl. BEGIN/COMMIT)',
    ['existing', 'create p50 ms', 'create vs empty', 'create/floor p50', 'list()', 'sweeper pass', 'findOrphanedSchemas', 'cleanupOrphanedSchemas'],
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

export function render(r: BenchResults): string {
  const h = r.headline;
  return [
    lifecycleTable(r.lifecycle),
    scaleTable(r.scale),
    lookupTable(r.guildLookup),
    ackTable(r.interactionAck),
    `\nHeadline: a full create costs ${times(h.createOverheadP50)} the bare DDL at p50 sequentially (${times(h.createOverheadP50Concurrent)} with ${String(r.config.concurrency)} concurrent).`,
    ...r.notes.map((n) => `Note: ${n}`),
  ].join('\n');
}
