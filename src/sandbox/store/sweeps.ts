import type { Actor, SandboxStatus } from '../types.ts';
import type { SandboxStore, SelectedRow } from './store.ts';

/** Discord user ids only: `cli:` and `system:` owners get no DM. */
const DISCORD_OWNER = '^[0-9]{17,20}$';

/**
 * The sweeper's selections. Each is one statement whose predicate matches a partial index
 * (migration 20261128000100_sweeper_indexes), so an idle pass costs the same at 0 and at 50,000
 * sandboxes: nothing due means an empty index range, not a scan.
 */
export class SweepQueries {
  constructor(private readonly store: SandboxStore) {}

  private get db() {
    return this.store.prisma;
  }

  /**
   * running past expires_at → expired, through the transition function. Rows another sweeper
   * holds are skipped (SKIP LOCKED), never processed twice. Returns the ids that expired.
   */
  expireDue(now: Date, batch: number, actor: Actor): Promise<string[]> {
    return this.store.transaction(async (tx) => {
      const due = await tx.$queryRaw<{ id: string }[]>`
        SELECT id::text AS id FROM sandboxes
        WHERE status = 'running' AND expires_at <= ${now}::timestamptz
        ORDER BY expires_at LIMIT ${batch}::int
        FOR UPDATE SKIP LOCKED`;
      if (!due.length) return [];
      return this.store.changeStatus(tx, due.map((d) => d.id), 'running', 'expired', actor, { reason: 'ttl_elapsed' });
    });
  }

  async expiredPastGrace(cutoff: Date, batch: number): Promise<string[]> {
    const rows = await this.db.$queryRaw<{ id: string }[]>`
      SELECT id::text AS id FROM sandboxes
      WHERE status = 'expired' AND expires_at <= ${cutoff}::timestamptz
      ORDER BY expires_at LIMIT ${batch}::int`;
    return rows.map((r) => r.id);
  }

  /**
   * Marks running sandboxes of Discord owners expiring within the horizon as notified, in one
   * compare-and-set statement (two sweepers never DM twice). Returns the marked ids.
   */
  async markExpiryNoticesDue(now: Date, horizon: Date, batch: number): Promise<string[]> {
    const rows = await this.db.$queryRaw<{ id: string }[]>`
      WITH due AS (
        SELECT id FROM sandboxes
        WHERE status = 'running' AND expiry_notified_at IS NULL
          AND expires_at > ${now}::timestamptz AND expires_at <= ${horizon}::timestamptz
          AND owner ~ ${DISCORD_OWNER}
        ORDER BY expires_at
        LIMIT ${batch}::int
        FOR UPDATE SKIP LOCKED
      )
      UPDATE sandboxes s SET expiry_notified_at = ${now}::timestamptz
      FROM due WHERE s.id = due.id AND s.status = 'running' AND s.expiry_notified_at IS NULL
      RETURNING s.id::text AS id`;
    return rows.map((r) => r.id);
  }

  /** creating (or old pending) rows unchanged since the cutoff. */
  stuckCreates(cutoff: Date, batch: number): Promise<(SelectedRow & { status_changed_at: Date })[]> {
    return this.db.$queryRaw<(SelectedRow & { status_changed_at: Date })[]>`
      SELECT id::text AS id, status::text AS status, status_changed_at FROM sandboxes
      WHERE status IN ('pending', 'creating') AND status_changed_at <= ${cutoff}::timestamptz
      ORDER BY status_changed_at LIMIT ${batch}::int`;
  }

  /**
   * destroying rows whose backoff has passed (or that never failed: a crash mid-teardown),
   * leased in one statement by pushing next_attempt_at out, so two sweepers do not retry the same row.
   */
  async leaseDestroyRetries(now: Date, lease: Date, batch: number): Promise<string[]> {
    const rows = await this.db.$queryRaw<{ id: string }[]>`
      WITH due AS (
        SELECT id FROM sandboxes
        WHERE status = 'destroying' AND (next_attempt_at IS NULL OR next_attempt_at <= ${now}::timestamptz)
        ORDER BY status_changed_at
        LIMIT ${batch}::int
        FOR UPDATE SKIP LOCKED
      )
      UPDATE sandboxes s SET next_attempt_at = ${lease}::timestamptz
      FROM due WHERE s.id = due.id AND s.status = 'destroying'
      RETURNING s.id::text AS id`;
    return rows.map((r) => r.id);
  }

  async failedDue(now: Date, batch: number): Promise<string[]> {
    const rows = await this.db.$queryRaw<{ id: string }[]>`
      SELECT id::text AS id FROM sandboxes
      WHERE status = 'failed' AND (next_attempt_at IS NULL OR next_attempt_at <= ${now}::timestamptz)
      ORDER BY status_changed_at LIMIT ${batch}::int`;
    return rows.map((r) => r.id);
  }

  /**
   * running/expired sandboxes whose schema is gone, in keyset slices of `batch` rows after
   * `afterId` (the sweeper walks the whole table over successive passes, so a pass costs the
   * same at any size). Returns the slice's last id as the next cursor (null at the end).
   */
  async missingSchemas(afterId: string | null, batch: number): Promise<{ missing: (SelectedRow & { name: string; schema_name: string })[]; next: string | null }> {
    // Only the sandboxes on this (the control) server: the others' schemas are on their own servers (liveSlice).
    const rows = await this.db.$queryRaw<(SelectedRow & { name: string; schema_name: string; present: boolean })[]>`
      WITH slice AS MATERIALIZED (
        SELECT id, status, name, schema_name FROM sandboxes
        WHERE status IN ('running', 'expired') AND server = 'default' AND id > ${afterId ?? '00000000-0000-0000-0000-000000000000'}::uuid
        ORDER BY id LIMIT ${batch}::int
      )
      -- A probe of pg_namespace's name index per row (LATERAL ... LIMIT 1), never a hash of the whole catalog.
      SELECT s.id::text AS id, s.status::text AS status, s.name, s.schema_name, p.present IS NOT NULL AS present
      FROM slice s
      LEFT JOIN LATERAL (SELECT true AS present FROM pg_namespace n WHERE n.nspname = s.schema_name::name LIMIT 1) p ON true
      ORDER BY s.id`;
    const next = rows.length === batch ? rows[rows.length - 1]!.id : null;
    return { missing: rows.filter((r) => !r.present).map(({ present: _p, ...r }) => r), next };
  }

  /**
   * A keyset slice (by id) of running/expired sandboxes placed on `server`, for the per-server drift
   * checks (the schema's existence is then asked of that server). `next` is null at the end.
   */
  async liveSlice(server: string, afterId: string | null, batch: number): Promise<{ rows: (SelectedRow & { name: string; schema_name: string })[]; next: string | null }> {
    const rows = await this.db.$queryRaw<(SelectedRow & { name: string; schema_name: string })[]>`
      SELECT id::text AS id, status::text AS status, name, schema_name FROM sandboxes
      WHERE server = ${server} AND status IN ('running', 'expired') AND id > ${afterId ?? '00000000-0000-0000-0000-000000000000'}::uuid
      ORDER BY id LIMIT ${batch}::int`;
    return { rows, next: rows.length === batch ? rows[rows.length - 1]!.id : null };
  }

  /** Status and server of these ids in this control database (the per-server orphan passes). */
  async placementsOf(ids: string[]): Promise<Map<string, { status: SandboxStatus; server: string }>> {
    if (!ids.length) return new Map();
    const rows = await this.db.$queryRaw<{ id: string; status: SandboxStatus; server: string }[]>`
      SELECT id::text AS id, status::text AS status, server FROM sandboxes WHERE id = ANY(${ids}::text[]::uuid[])`;
    return new Map(rows.map((r) => [r.id, { status: r.status, server: r.server }]));
  }

  /** Statuses of these ids in this control database (for the external-resource orphan pass). */
  async statusesOf(ids: string[]): Promise<Map<string, SandboxStatus>> {
    if (!ids.length) return new Map();
    const rows = await this.db.$queryRaw<{ id: string; status: SandboxStatus }[]>`
      SELECT id::text AS id, status::text AS status FROM sandboxes WHERE id = ANY(${ids}::text[]::uuid[])`;
    return new Map(rows.map((r) => [r.id, r.status]));
  }

  /** A keyset slice of running sandbox ids after `afterId`, for the "ensure missing external" pass. */
  async runningSlice(afterId: string | null, limit: number): Promise<{ ids: string[]; next: string | null }> {
    const rows = await this.db.$queryRaw<{ id: string }[]>`
      SELECT id::text AS id FROM sandboxes
      WHERE status = 'running' AND id > ${afterId ?? '00000000-0000-0000-0000-000000000000'}::uuid
      ORDER BY id LIMIT ${limit}::int`;
    return { ids: rows.map((r) => r.id), next: rows.length === limit ? rows[rows.length - 1]!.id : null };
  }
}
