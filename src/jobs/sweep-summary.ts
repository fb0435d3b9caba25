/** What one sweeper pass did. Plain data, JSON-serialisable, printed by the CLI and logged by the bot. */

/** Actions a pass takes; also the `action` label of the sweeper metrics. */
export const SWEEP_ACTIONS = [
  'expired',
  'destroyed',
  'notified',
  'stuck_reconciled',
  'destroy_retried',
  'failed_cleaned',
  'orphan_dropped',
  'schema_missing',
  'external_ensured',
  'external_orphan_removed',
  'claim_expired',
  'claim_rechecked',
  'postgres_recreated',
  'postgres_orphan_dropped',
  'route_changes_pruned',
] as const;
export type SweepAction = (typeof SWEEP_ACTIONS)[number];

export interface SweepFailure {
  action: SweepAction;
  /** Absent for failures of a whole step (for example the database being down) and for orphan schemas. */
  sandboxId?: string;
  schemaName?: string;
  /** A SandboxError code (SANDBOX_006 for a destroy that will be retried). */
  code: string;
  message: string;
}

export interface SweepSummary {
  startedAt: string;
  durationMs: number;
  /** Successful actions, by action. */
  counts: Record<SweepAction, number>;
  /** Items another sweeper (or a user) changed first; nothing was done to them, by design. */
  skipped: number;
  failures: SweepFailure[];
  /** Running or expired sandboxes whose schema was missing; now `failed`, cleaned by the next pass. */
  schemaMissing: { sandboxId: string; name: string; schemaName: string }[];
  orphansDropped: string[];
  /** Server-wide resources (external ones and roles) whose id has no row in this control database: reported, never touched. */
  externalUnknown: { kind: string; sandboxId: string }[];
  /** Database servers (SANDBOX_DATABASE_SERVERS) that did not answer: their drift checks were skipped this pass. Absent with one server. */
  serversDown?: string[];
  /** False when no notifier was given (CLI sweep): expiry DMs are left for the bot. */
  notificationsEnabled: boolean;
}

export function emptySummary(startedAt: Date, notificationsEnabled: boolean): SweepSummary {
  return {
    startedAt: startedAt.toISOString(),
    durationMs: 0,
    counts: Object.fromEntries(SWEEP_ACTIONS.map((a) => [a, 0])) as Record<SweepAction, number>,
    skipped: 0,
    failures: [],
    schemaMissing: [],
    orphansDropped: [],
    externalUnknown: [],
    notificationsEnabled,
  };
}

/** A few human lines for the CLI's non-JSON output. */
export function formatSweepSummary(s: SweepSummary): string {
  const done = Object.entries(s.counts)
    .filter(([, n]) => n > 0)
    .map(([a, n]) => `${a.replaceAll('_', ' ')}: ${n}`);
  const lines = [`Sweep finished in ${s.durationMs} ms. ${done.length ? done.join(', ') : 'Nothing to do.'}`];
  if (s.skipped) lines.push(`Skipped ${s.skipped} item(s) changed by someone else meanwhile.`);
  for (const m of s.schemaMissing) lines.push(`Schema missing: ${m.name} (${m.sandboxId}) lost ${m.schemaName}; marked failed, cleaned next pass.`);
  for (const o of s.orphansDropped) lines.push(`Orphan schema dropped: ${o}`);
  for (const u of s.externalUnknown) lines.push(`Unknown ${u.kind} for ${u.sandboxId}: no row here; left alone.`);
  for (const f of s.failures) lines.push(`FAILED ${f.action}${f.sandboxId ? ` ${f.sandboxId}` : ''}${f.schemaName ? ` ${f.schemaName}` : ''}: ${f.code} ${f.message}`);
  if (!s.notificationsEnabled) lines.push('Expiry DMs are left to the bot (no notifier in this process).');
  return lines.join('\n');
}
