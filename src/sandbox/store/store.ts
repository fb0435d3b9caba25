import { Prisma } from '../../generated/prisma/client.ts';
import { TX_OPTIONS, type PrismaClient } from '../../db/database.ts';
import { ErrorCode, SandboxError } from '../errors.ts';
import { COUNTED_STATUSES, actorLabel, canTransition, type Actor, type Sandbox, type SandboxStatus } from '../types.ts';

/** An interactive transaction. Store methods that must run inside one take it as their first argument. */
export type Tx = Prisma.TransactionClient;
/** Either the client or a transaction: for statements that may run on their own. */
export type Db = Tx | PrismaClient;

type Row = Prisma.SandboxGetPayload<{ include: { guilds: { select: { guildId: true } } } }>;
const include = { guilds: { select: { guildId: true }, orderBy: { createdAt: 'asc' } } } as const;

export const toSandbox = (row: Row): Sandbox => ({
  id: row.id,
  name: row.name,
  owner: row.owner,
  status: row.status,
  schemaName: row.schemaName,
  guildIds: row.guilds.map((g) => g.guildId),
  createdAt: row.createdAt,
  expiresAt: row.expiresAt,
  destroyedAt: row.destroyedAt,
  lastActivityAt: row.lastActivityAt,
  metadata: (row.metadata ?? {}) as Record<string, unknown>,
  templateVersion: row.templateVersion,
  server: row.server,
});

/** An interactive transaction on any of our databases (another placement server's: see lifecycle/on-server.ts), with the same timeouts. */
export const transactionOn = <T>(db: PrismaClient, fn: (tx: Tx) => Promise<T>): Promise<T> => db.$transaction(fn, TX_OPTIONS);

/** One audit row to write. */
export interface AuditEntry {
  sandboxId?: string | null;
  eventType: string;
  actor: Actor;
  details?: Record<string, unknown>;
}

const auditEvent = (e: AuditEntry) => ({ eventType: e.eventType, actor: actorLabel(e.actor), details: e.details ?? {} });

/** A compare-and-set on one sandbox's status that found another status: someone changed it meanwhile. */
const lostRace = (id: string, from: SandboxStatus, to: SandboxStatus): SandboxError =>
  new SandboxError(ErrorCode.Conflict, 'The sandbox was changed by someone else at the same time. Please try again.', { id, from, to });

/** What SandboxStore.tearDownSandbox does (see there). */
export interface TeardownArgs {
  id: string;
  actor: Actor;
  schemaName: string;
  schema: 'drop' | 'keep' | { droppedElsewhere: boolean };
  schemaAudit: 'always' | 'if-dropped';
  dropFirst?: { kind: string; expression: Prisma.Sql }[];
  alsoDropped?: string[];
  change?: { from: SandboxStatus; to: SandboxStatus; details: Record<string, unknown>; extras: StatusExtras };
}

/** Columns a status change may set along with the status. */
export interface StatusExtras {
  /** The time written as status_changed_at (and destroyed_at); default now. */
  at?: Date;
  expiresAt?: Date;
  /** `null` clears the mark so the next expiry is warned again. */
  expiryNotifiedAt?: null;
  nextAttemptAt?: Date | null;
  destroyAttempts?: number;
  /** sandboxes.template_version: the template version the schema now has (create, reset, clone, upgrade). */
  templateVersion?: string;
}

/** What a caller checks under the sandbox row lock. */
export interface LockedRow {
  status: SandboxStatus;
  schemaName: string;
  expiresAt: Date;
  templateVersion: string | null;
  /** The database server holding its schema and role (sandboxes.server). */
  server: string;
}

/** A live claim on a guild, as the join rules read it. */
export interface GuildClaim {
  sandboxId: string;
  claimedBy: string;
  createdAt: Date;
  expiresAt: Date;
  checkAttempts: number;
  sandboxName: string;
  sandboxOwner: string;
}

/** A row a sweeper step selected (not yet changed). */
export interface SelectedRow {
  id: string;
  status: SandboxStatus;
}

/** What create's first commit did: inserted the row, or refused it for a limit or a mapped guild. */
export type InsertCreatingResult =
  | { inserted: true; schemaName: string; at: Date; server: string }
  | { inserted: false; refused: 'owner_limit'; count: number }
  | { inserted: false; refused: 'total_limit'; count: number }
  | { inserted: false; refused: 'guild_mapped'; guildId: string; mappedTo: string };

export interface NewSandboxRow {
  id: string;
  name: string;
  owner: string;
  expiresAt: Date;
  metadata: Record<string, unknown>;
}

/**
 * The one owner of control-table queries (Prisma behind named domain methods). Nothing outside
 * `src/sandbox/store/` runs a Prisma query. Methods that take a `tx` run inside the caller's
 * transaction; the others run on their own.
 *
 * Lock order: advisory key (`sandbox:`/`owner:`/`guild:`), then the sandbox row (lockSandboxRow),
 * then its mappings and claims. The opposite order deadlocks with a destroy.
 */
export class SandboxStore {
  constructor(
    readonly prisma: PrismaClient,
    private readonly clock: () => Date,
  ) {}

  /** An interactive transaction with timeouts that tolerate PGlite running one at a time. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return transactionOn(this.prisma, fn);
  }

  // ------------------------------------------------------------ audit and status

  async audit(db: Db, sandboxId: string | null, eventType: string, actor: Actor, details: Record<string, unknown> = {}): Promise<void> {
    await db.sandboxAuditLog.create({
      data: { sandboxId, eventType, actor: actorLabel(actor), details: details as Prisma.InputJsonValue, createdAt: this.clock() },
    });
  }

  /** Several audit rows in one statement (a teardown's or a provisioning transaction's). */
  async auditMany(db: Db, rows: AuditEntry[]): Promise<void> {
    if (!rows.length) return;
    const createdAt = this.clock();
    await db.sandboxAuditLog.createMany({
      data: rows.map((r) => ({ sandboxId: r.sandboxId ?? null, eventType: r.eventType, actor: actorLabel(r.actor), details: (r.details ?? {}) as Prisma.InputJsonValue, createdAt })),
    });
  }

  /**
   * THE transition function: every status change goes through here. A compare-and-set on the
   * expected status and its `status_changed` audit rows, in one statement inside the caller's
   * transaction. With one id a lost race is SANDBOX_010, never a silent overwrite; with several
   * (a sweeper batch) it returns the ids that moved.
   */
  async changeStatus(
    tx: Db,
    ids: string | string[],
    from: SandboxStatus,
    to: SandboxStatus,
    actor: Actor,
    details: Record<string, unknown> = {},
    extras: StatusExtras = {},
    /** Audit rows of the same step written in the same statement, before and after `status_changed` (single id only). */
    around: { before?: AuditEntry[]; after?: AuditEntry[] } = {},
  ): Promise<string[]> {
    const list = typeof ids === 'string' ? [ids] : ids;
    const change = this.statusChange(list, from, to, actor, details, extras, around);
    if (list.length === 0) return [];
    const moved = await tx.$queryRaw<{ id: string }[]>`WITH ${change} SELECT id::text AS id FROM moved`;
    if (typeof ids === 'string' && moved.length !== 1) throw lostRace(ids, from, to);
    return moved.map((m) => m.id);
  }

  /**
   * The status change itself, as the CTEs `moved` (the compare-and-set UPDATE: its RETURNING id) and
   * `audited` (its audit rows, in order: `around.before`, then the rows of `beforeSql`, a jsonb array
   * computed in the same statement, then `status_changed`, `around.after` and `afterSql`). Only
   * changeStatus, completeCreate and tearDownSandbox use it: no other SQL writes a status.
   */
  private statusChange(
    list: string[],
    from: SandboxStatus,
    to: SandboxStatus,
    actor: Actor,
    details: Record<string, unknown>,
    extras: StatusExtras,
    around: { before?: AuditEntry[]; beforeSql?: Prisma.Sql; after?: AuditEntry[]; afterSql?: Prisma.Sql },
  ): Prisma.Sql {
    if (!canTransition(from, to)) {
      throw new SandboxError(ErrorCode.InvalidTransition, `A sandbox cannot go from ${from} to ${to}.`, { from, to });
    }
    const now = extras.at ?? this.clock();
    const sets: Prisma.Sql[] = [Prisma.sql`status = ${to}::sandbox_status`, Prisma.sql`status_changed_at = ${now}::timestamptz`];
    if (to === 'destroyed') sets.push(Prisma.sql`destroyed_at = ${now}::timestamptz`);
    if (extras.expiresAt !== undefined) sets.push(Prisma.sql`expires_at = ${extras.expiresAt}::timestamptz`);
    if (extras.expiryNotifiedAt === null) sets.push(Prisma.sql`expiry_notified_at = NULL`);
    if (extras.nextAttemptAt !== undefined) sets.push(Prisma.sql`next_attempt_at = ${extras.nextAttemptAt}::timestamptz`);
    if (extras.destroyAttempts !== undefined) sets.push(Prisma.sql`destroy_attempts = ${extras.destroyAttempts}::int`);
    if (extras.templateVersion !== undefined) sets.push(Prisma.sql`template_version = ${extras.templateVersion}`);
    const before = JSON.stringify((around.before ?? []).map(auditEvent));
    const rest = JSON.stringify([{ eventType: 'status_changed', actor: actorLabel(actor), details: { from, to, ...details } }, ...(around.after ?? []).map(auditEvent)]);
    const parts = [Prisma.sql`${before}::jsonb`, ...(around.beforeSql ? [around.beforeSql] : []), Prisma.sql`${rest}::jsonb`, ...(around.afterSql ? [around.afterSql] : [])];
    const events = Prisma.join(parts, ' || ');
    return Prisma.sql`
      moved AS (
        UPDATE sandboxes SET ${Prisma.join(sets, ', ')}
        WHERE id = ANY(${list}::text[]::uuid[]) AND status = ${from}::sandbox_status
        RETURNING id
      ), audited AS (
        INSERT INTO sandbox_audit_log (sandbox_id, event_type, actor, details, created_at)
        SELECT m.id, e.a->>'eventType', e.a->>'actor', e.a->'details', ${now}::timestamptz
        FROM moved m CROSS JOIN jsonb_array_elements(${events}) WITH ORDINALITY AS e(a, ord)
        ORDER BY m.id, e.ord
        RETURNING 1
      )`;
  }

  /**
   * The end of a create's provisioning transaction, in ONE statement: the guilds mapped when free
   * (as mapGuildIfFree, their `guild_registered` rows audited by the status change), creating →
   * running with `before` and those rows audited first, and then, once all of that has run, the
   * `last` expressions (the role and its grants). The mappings' route-feed trigger fires at the end
   * of the statement, so the route version row it locks is held only from there to the commit.
   * Returns the guilds this statement mapped. A lost race on the status is SANDBOX_010 (the
   * caller's transaction rolls back).
   */
  async completeCreate(
    tx: Tx,
    args: { id: string; guildIds: string[]; actor: Actor; templateVersion: string | null; before: AuditEntry[]; last: Prisma.Sql[] },
  ): Promise<{ mapped: string[] }> {
    const { id, actor } = args;
    const now = this.clock();
    const registered = Prisma.sql`(SELECT coalesce(jsonb_agg(jsonb_build_object('eventType', 'guild_registered', 'actor', ${actorLabel(actor)}::text,
      'details', jsonb_build_object('guildId', i.guild_id)) ORDER BY array_position(${args.guildIds}::text[], i.guild_id)), '[]'::jsonb) FROM ins i)`;
    const change = this.statusChange([id], 'creating', 'running', actor, {}, { at: now, ...(args.templateVersion === null ? {} : { templateVersion: args.templateVersion }) }, { before: args.before, beforeSql: registered });
    const last = args.last.length ? Prisma.sql`, ${Prisma.join(args.last.map((e, i) => Prisma.sql`${e} AS ${Prisma.raw(`last_${i}`)}`), ', ')}` : Prisma.empty;
    // FROM (`done`, which reads every CTE) is evaluated before the target list: `last` runs after the rest.
    const [r] = await tx.$queryRaw<{ mapped: string[]; moved: number }[]>`
      WITH ${this.mapGuilds(id, args.guildIds, actor, now)}, ${change},
      done AS MATERIALIZED (
        SELECT ARRAY(SELECT guild_id FROM ins) AS mapped, (SELECT count(*) FROM moved)::int AS moved,
               (SELECT count(*) FROM audited) AS audited, (SELECT count(*) FROM superseded) AS superseded
      )
      SELECT d.mapped, d.moved${last} FROM done d`;
    if (r!.moved !== 1) throw lostRace(id, 'creating', 'running');
    return { mapped: r!.mapped };
  }

  // ------------------------------------------------------------ route change log

  /**
   * Deletes route change-log rows older than `keepSeconds` (never the newest): route tables that fell behind the pruned
   * log see a gap and reload. Returns how many went.
   */
  async pruneRouteChanges(keepSeconds: number): Promise<number> {
    const [row] = await this.prisma.$queryRaw<{ n: number }[]>`SELECT prune_sandbox_route_changes(make_interval(secs => ${keepSeconds})) AS n`;
    return Number(row?.n ?? 0);
  }

  // ------------------------------------------------------------ locks

  /** Serialises a transaction against every other one touching the same key (owner, sandbox, guild). */
  async lockKey(tx: Tx, key: string): Promise<void> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${key}, 0))`;
  }

  /** Locks the sandbox row (FOR UPDATE): first in the lock order, before its mappings and claims. */
  async lockSandboxRow(tx: Tx, id: string): Promise<LockedRow | undefined> {
    const [row] = await tx.$queryRaw<LockedRow[]>`
      SELECT status::text AS status, schema_name AS "schemaName", expires_at AS "expiresAt", template_version AS "templateVersion", server FROM sandboxes WHERE id = ${id}::uuid FOR UPDATE`;
    return row;
  }

  /** Takes the sandbox's advisory key, then its row lock, in one statement (the same order as lockKey + lockSandboxRow). */
  async lockSandboxKeyAndRow(tx: Tx, id: string, opts: { /** Another key taken first (clone: the new sandbox's, then the source's). */ firstKey?: string } = {}): Promise<LockedRow | undefined> {
    const first = opts.firstKey ?? `sandbox:${id}`;
    const [row] = await tx.$queryRaw<LockedRow[]>`
      SELECT s.status::text AS status, s.schema_name AS "schemaName", s.expires_at AS "expiresAt", s.template_version AS "templateVersion", s.server
      FROM (SELECT pg_advisory_xact_lock(hashtextextended(${first}, 0)) AS a, pg_advisory_xact_lock(hashtextextended(${`sandbox:${id}`}, 0)) AS b) AS k, sandboxes s
      WHERE s.id = ${id}::uuid FOR UPDATE OF s`;
    return row;
  }

  /** Locks the row of the sandbox a guild is mapped to (found through the mapping), keeping the lock order. */
  async lockSandboxRowOfGuild(tx: Tx, guildId: string): Promise<void> {
    await tx.$queryRaw`SELECT 1 FROM sandboxes WHERE id = (SELECT sandbox_id FROM sandbox_guild_mapping WHERE guild_id = ${guildId}) FOR UPDATE`;
  }

  // ------------------------------------------------------------ sandbox rows

  /** One statement (Prisma's include would send two): every read of a sandbox by id goes through here. */
  async findSandboxById(id: string): Promise<Sandbox | null> {
    const [row] = await this.prisma.$queryRaw<Sandbox[]>`
      SELECT s.id::text AS id, s.name, s.owner, s.status::text AS status, s.schema_name AS "schemaName",
             ARRAY(SELECT g.guild_id FROM sandbox_guild_mapping g WHERE g.sandbox_id = s.id ORDER BY g.created_at) AS "guildIds",
             s.created_at AS "createdAt", s.expires_at AS "expiresAt", s.destroyed_at AS "destroyedAt",
             s.last_activity_at AS "lastActivityAt", s.metadata, s.template_version AS "templateVersion", s.server
      FROM sandboxes s WHERE s.id = ${id}::uuid`;
    return row ?? null;
  }

  async findStatus(id: string): Promise<SandboxStatus | null> {
    const row = await this.prisma.sandbox.findUnique({ where: { id }, select: { status: true } });
    return row?.status ?? null;
  }

  /** The live sandbox with this name, or else the most recently destroyed one. */
  async findSandboxByName(name: string): Promise<Sandbox | null> {
    const row =
      (await this.prisma.sandbox.findFirst({ where: { name, status: { not: 'destroyed' } }, include })) ??
      (await this.prisma.sandbox.findFirst({ where: { name }, include, orderBy: { destroyedAt: 'desc' } }));
    return row ? toSandbox(row) : null;
  }

  /** The event-routing hot path: one statement rather than Prisma's three. */
  async findSandboxByGuild(guildId: string): Promise<Sandbox | null> {
    const [row] = await this.prisma.$queryRaw<Sandbox[]>`
      SELECT s.id::text AS id, s.name, s.owner, s.status::text AS status, s.schema_name AS "schemaName",
             ARRAY(SELECT g.guild_id FROM sandbox_guild_mapping g WHERE g.sandbox_id = s.id ORDER BY g.created_at) AS "guildIds",
             s.created_at AS "createdAt", s.expires_at AS "expiresAt", s.destroyed_at AS "destroyedAt",
             s.last_activity_at AS "lastActivityAt", s.metadata, s.template_version AS "templateVersion", s.server
      FROM sandbox_guild_mapping m JOIN sandboxes s ON s.id = m.sandbox_id
      WHERE m.guild_id = ${guildId}`;
    return row ?? null;
  }

  async listSandboxes(filter: { owner?: string; status?: SandboxStatus; includeDestroyed?: boolean; limit: number }): Promise<Sandbox[]> {
    const where: Prisma.SandboxWhereInput = {};
    if (filter.owner !== undefined) where.owner = filter.owner;
    if (filter.status !== undefined) where.status = filter.status;
    else if (!filter.includeDestroyed) where.status = { not: 'destroyed' };
    const rows = await this.prisma.sandbox.findMany({ where, include, orderBy: { createdAt: 'desc' }, take: filter.limit });
    return rows.map(toSandbox);
  }

  async findSandboxesByIds(ids: string[]): Promise<Sandbox[]> {
    const rows = await this.prisma.sandbox.findMany({ where: { id: { in: ids } }, include });
    return rows.map(toSandbox);
  }

  /** Autocomplete: live sandboxes whose name starts with `prefix` (an owner's, or everyone's), one indexed query, at most `limit`. */
  async searchLiveSandboxes(owner: string | null, prefix: string, limit: number): Promise<{ name: string; status: SandboxStatus }[]> {
    // A byte-order range (text_pattern_ops operators) so even a generic plan reads an index range.
    const upper = `${prefix}\u{10FFFF}`;
    return owner === null
      ? this.prisma.$queryRaw`
          SELECT name, status::text AS status FROM sandboxes
          WHERE status <> 'destroyed' AND name ~>=~ ${prefix} AND name ~<~ ${upper}
          ORDER BY name USING ~<~ LIMIT ${limit}::int`
      : this.prisma.$queryRaw`
          SELECT name, status::text AS status FROM sandboxes
          WHERE status <> 'destroyed' AND owner = ${owner} AND name ~>=~ ${prefix} AND name ~<~ ${upper}
          ORDER BY owner, name USING ~<~ LIMIT ${limit}::int`;
  }

  /**
   * Create's first commit, in ONE statement that is its own transaction (sandbox_insert_creating):
   * under the owner's advisory key and then, with `maxTotal`, the installation-wide key, the row is
   * inserted directly as `creating` (no `pending` commit), with its schema name derived by
   * sandbox_schema_name() and its `created` audit row, only if the owner holds fewer than `cap`
   * counted sandboxes, fewer than `maxTotal` count in all, and none of `freeGuilds` is mapped. The
   * function counts after its locks are granted (fresh snapshot per statement), so every limit is
   * exact under concurrency. Returns the schema name and the timestamp written, or why nothing was
   * inserted. With `asyncCommit` the commit does not wait for its WAL flush (see create.ts).
   */
  async insertCreatingSandbox(
    row: NewSandboxRow,
    actor: Actor,
    auditDetails: Record<string, unknown>,
    conditions: { cap: number; freeGuilds: string[]; maxTotal?: number; asyncCommit: boolean; /** Where it may go (see sandbox_insert_creating's placement rule); default the control server. */ servers?: string[] },
  ): Promise<InsertCreatingResult> {
    const now = this.clock();
    type Result = { r_schema_name: string | null; r_refused: string | null; r_count: number | null; r_guild_id: string | null; r_mapped_name: string | null; r_server: string | null };
    const run = (sql: Db) => sql.$queryRaw<Result[]>`
      SELECT * FROM sandbox_insert_creating(
        ${row.id}::uuid, ${row.name}, ${row.owner}, ${now}::timestamptz, ${row.expiresAt}::timestamptz, ${JSON.stringify(row.metadata)}::jsonb,
        ${actorLabel(actor)}, ${JSON.stringify(auditDetails)}::jsonb, ${[...COUNTED_STATUSES]}::text[]::sandbox_status[], ${conditions.cap}::int,
        ${conditions.freeGuilds}::text[], ${conditions.maxTotal ?? null}::int, ${conditions.asyncCommit}::boolean, ${conditions.servers ?? ['default']}::text[])`;
    const [r] = await run(this.prisma);
    if (r?.r_schema_name) return { inserted: true, schemaName: r.r_schema_name, at: now, server: r.r_server ?? 'default' };
    switch (r?.r_refused) {
      case 'owner_limit':
        return { inserted: false, refused: 'owner_limit', count: r.r_count ?? conditions.cap };
      case 'total_limit':
        return { inserted: false, refused: 'total_limit', count: r.r_count ?? conditions.maxTotal ?? 0 };
      case 'guild_mapped':
        return { inserted: false, refused: 'guild_mapped', guildId: r.r_guild_id!, mappedTo: r.r_mapped_name! };
      default:
        throw new SandboxError(ErrorCode.Conflict, 'The sandbox could not be recorded; please try again.');
    }
  }

  /**
   * On a placement server (not `default`), in that server's transaction: the sandbox's row as that
   * server's sandbox_self_status() reads it, so a worker logged in there as the sandbox's role learns
   * that it is live (the SDK checks this). Only what that function needs; always `running` (an expired
   * sandbox is connectable too; a destroyed one has no role left to log in with). The control
   * database's row stays the truth for everything else.
   */
  async recordPlacement(tx: Tx, row: { id: string; name: string; owner: string; schemaName: string; createdAt: Date; expiresAt: Date; server: string }): Promise<void> {
    await tx.$executeRaw`
      INSERT INTO sandboxes (id, name, owner, status, schema_name, created_at, expires_at, last_activity_at, status_changed_at, server)
      VALUES (${row.id}::uuid, ${row.name}, ${row.owner}, 'running', ${row.schemaName}, ${row.createdAt}, ${row.expiresAt}, ${row.createdAt}, ${row.createdAt}, ${row.server})
      ON CONFLICT (id) DO UPDATE SET status = 'running'`;
  }

  /** Removes what recordPlacement wrote (in the placement server's teardown transaction). Idempotent. */
  async removePlacement(tx: Tx, id: string): Promise<void> {
    await tx.$executeRaw`DELETE FROM sandboxes WHERE id = ${id}::uuid`;
  }

  /** Records the template version a running or expired sandbox's schema now has (reset, upgrade); no status change. */
  async setTemplateVersion(tx: Tx, id: string, templateVersion: string): Promise<void> {
    const { count } = await tx.sandbox.updateMany({ where: { id, status: { in: ['running', 'expired'] } }, data: { templateVersion } });
    if (count !== 1) throw new SandboxError(ErrorCode.Conflict, 'The sandbox was changed at the same time. Please try again.');
  }

  /** Moves the expiry of a running sandbox (no status change) and clears the expiry-DM mark. */
  async setRunningExpiry(tx: Tx, id: string, expiresAt: Date): Promise<void> {
    const { count } = await tx.sandbox.updateMany({ where: { id, status: 'running' }, data: { expiresAt, expiryNotifiedAt: null } });
    if (count !== 1) throw new SandboxError(ErrorCode.Conflict, 'The sandbox was changed at the same time. Please try again.');
  }

  /** Counts a failed teardown and schedules its retry; the status is left as it is. */
  async recordTeardownFailure(tx: Tx, id: string, backoffMs: (attempts: number) => number): Promise<number> {
    const row = await tx.sandbox.findUnique({ where: { id }, select: { destroyAttempts: true } });
    const attempts = (row?.destroyAttempts ?? 0) + 1;
    await tx.sandbox.updateMany({
      where: { id, status: { in: ['destroying', 'failed'] } },
      data: { destroyAttempts: attempts, nextAttemptAt: new Date(this.clock().getTime() + backoffMs(attempts)) },
    });
    return attempts;
  }

  /** Running sandboxes of an owner (at most `take`), for the guild owner rule. */
  async findRunningSandboxesOf(tx: Tx, owner: string, take: number): Promise<{ id: string; name: string }[]> {
    return tx.sandbox.findMany({ where: { owner, status: 'running' }, select: { id: true, name: true }, take });
  }

  /** A keyset slice of live (running/expired) sandbox ids after `afterId`: rotate-credentials and the role drift pass. */
  async liveSandboxIds(afterId: string | null, limit: number, server?: string): Promise<{ ids: string[]; next: string | null }> {
    const onServer = server === undefined ? Prisma.empty : Prisma.sql`AND server = ${server}`;
    const rows = await this.prisma.$queryRaw<{ id: string }[]>`
      SELECT id::text AS id FROM sandboxes
      WHERE status IN ('running', 'expired') AND id > ${afterId ?? '00000000-0000-0000-0000-000000000000'}::uuid ${onServer}
      ORDER BY id LIMIT ${limit}::int`;
    return { ids: rows.map((r) => r.id), next: rows.length === limit ? rows[rows.length - 1]!.id : null };
  }

  // ------------------------------------------------------------ mappings and claims

  async findMapping(db: Db, guildId: string): Promise<{ sandboxId: string } | null> {
    return db.sandboxGuildMapping.findUnique({ where: { guildId }, select: { sandboxId: true } });
  }

  /** The name of the sandbox a guild is mapped to, for error messages. */
  async findMappedSandboxName(db: Db, guildId: string): Promise<string | null> {
    const m = await db.sandboxGuildMapping.findUnique({ where: { guildId }, include: { sandbox: { select: { name: true } } } });
    return m?.sandbox.name ?? null;
  }

  /**
   * Maps a guild if it is free (ON CONFLICT DO NOTHING) and drops its claims, in one statement;
   * true when this call mapped it. Other sandboxes' claims on the guild are audited
   * `guild_claim_superseded` (by `actor`, default the guild-join job).
   */
  async mapGuildIfFree(tx: Tx, sandboxId: string, guildId: string, actor: Actor = { kind: 'system', job: 'guild-join' }): Promise<boolean> {
    const [r] = await tx.$queryRaw<{ n: number }[]>`
      WITH ${this.mapGuilds(sandboxId, [guildId], actor, this.clock())}
      SELECT count(*)::int AS n FROM ins`;
    return r!.n === 1;
  }

  /**
   * The CTEs that map each free guild of `guildIds` to the sandbox (ON CONFLICT DO NOTHING; `ins`
   * returns those it mapped) and drop their claims, auditing other sandboxes' claims
   * `guild_claim_superseded` (`superseded`).
   */
  private mapGuilds(sandboxId: string, guildIds: string[], actor: Actor, now: Date): Prisma.Sql {
    return Prisma.sql`
      ins AS (
        INSERT INTO sandbox_guild_mapping (guild_id, sandbox_id, created_at)
        SELECT g, ${sandboxId}::uuid, ${now}::timestamptz FROM unnest(${guildIds}::text[]) WITH ORDINALITY AS u(g, ord) ORDER BY ord
        ON CONFLICT (guild_id) DO NOTHING
        RETURNING guild_id
      ), unclaimed AS (
        DELETE FROM sandbox_guild_claims WHERE guild_id IN (SELECT guild_id FROM ins) RETURNING sandbox_id, guild_id, claimed_by
      ), superseded AS (
        INSERT INTO sandbox_audit_log (sandbox_id, event_type, actor, details, created_at)
        SELECT sandbox_id, 'guild_claim_superseded', ${actorLabel(actor)},
               jsonb_build_object('guildId', guild_id, 'claimedBy', claimed_by, 'mappedTo', ${sandboxId}::text), ${now}::timestamptz
        FROM unclaimed WHERE sandbox_id <> ${sandboxId}::uuid RETURNING 1
      )`;
  }

  /** Unmaps a guild; returns the sandbox it was mapped to. The caller holds that sandbox's row lock. */
  async unmapGuild(tx: Tx, guildId: string): Promise<string | null> {
    const [mapping] = await tx.$queryRaw<{ sandbox_id: string }[]>`
      DELETE FROM sandbox_guild_mapping WHERE guild_id = ${guildId} RETURNING sandbox_id::text AS sandbox_id`;
    return mapping?.sandbox_id ?? null;
  }

  /** Removes a guild from one sandbox: its mapping and its claim. */
  async releaseGuild(tx: Tx, sandboxId: string, guildId: string): Promise<{ unmapped: boolean; unclaimed: boolean }> {
    const mapped = await tx.sandboxGuildMapping.deleteMany({ where: { guildId, sandboxId } });
    const claimed = await tx.sandboxGuildClaim.deleteMany({ where: { guildId, sandboxId } });
    return { unmapped: mapped.count > 0, unclaimed: claimed.count > 0 };
  }

  /**
   * A teardown's control-side work in ONE statement (the caller holds the sandbox's key and row lock):
   * first `dropFirst` (the sandbox's other PostgreSQL objects, e.g. its role, as boolean expressions:
   * before the schema drop, so the role's sessions end first), then its schema dropped (`schema`:
   * 'drop'; 'keep' leaves it; `{ droppedElsewhere }` records a drop done on another server), every
   * mapping and claim deleted, their audit rows, and with `change` the status change. Audit rows in
   * order: guild_unregistered…, guild_claim_removed…, schema_dropped (with `schemaAudit: 'if-dropped'`
   * only when one was), `<kind>_dropped` for each kind dropped (`alsoDropped`, then `dropFirst`'s),
   * then status_changed and, to `destroyed`, `destroyed` with the guilds unmapped. Returns those
   * guilds. A lost race on the status is SANDBOX_010.
   */
  async tearDownSandbox(tx: Tx, args: TeardownArgs): Promise<{ mapped: string[] }> {
    const { id, change } = args;
    const actor = actorLabel(args.actor);
    const dropFirst = args.dropFirst ?? [];
    const first = dropFirst.length ? Prisma.sql`ARRAY[${Prisma.join(dropFirst.map((d) => d.expression))}]::boolean[]` : Prisma.sql`ARRAY[]::boolean[]`;
    const drop =
      args.schema === 'drop' ? Prisma.sql`drop_sandbox_schema(${id}::uuid)` : args.schema === 'keep' ? Prisma.sql`false` : Prisma.sql`${args.schema.droppedElsewhere}::boolean`;
    const kinds = [...(args.alsoDropped ?? []), ...dropFirst.map((d) => d.kind)];
    const kindDropped = [...(args.alsoDropped ?? []).map(() => true)];
    const entry = (eventType: Prisma.Sql, details: Prisma.Sql) => Prisma.sql`jsonb_build_object('eventType', ${eventType}, 'actor', ${actor}::text, 'details', ${details})`;
    const before = Prisma.sql`
      (SELECT coalesce(jsonb_agg(${entry(Prisma.sql`'guild_unregistered'`, Prisma.sql`jsonb_build_object('guildId', guild_id, 'reason', 'sandbox_destroyed')`)} ORDER BY created_at), '[]'::jsonb) FROM gone_maps)
      || (SELECT coalesce(jsonb_agg(${entry(Prisma.sql`'guild_claim_removed'`, Prisma.sql`jsonb_build_object('guildId', guild_id, 'reason', 'sandbox_destroyed')`)} ORDER BY created_at), '[]'::jsonb) FROM gone_claims)
      || CASE WHEN ${args.schemaAudit === 'always'}::boolean OR d.dropped
           THEN jsonb_build_array(${entry(Prisma.sql`'schema_dropped'`, Prisma.sql`jsonb_build_object('schemaName', ${args.schemaName}::text, 'dropped', d.dropped)`)}) ELSE '[]'::jsonb END
      || (SELECT coalesce(jsonb_agg(${entry(Prisma.sql`k || '_dropped'`, Prisma.sql`'{}'::jsonb`)} ORDER BY ord), '[]'::jsonb)
          FROM unnest(${kinds}::text[], ${kindDropped}::boolean[] || d.first) WITH ORDINALITY AS u(k, done, ord) WHERE done)`;
    const after = Prisma.sql`CASE WHEN ${change?.to === 'destroyed'}::boolean THEN jsonb_build_array(${entry(
      Prisma.sql`'destroyed'`,
      Prisma.sql`jsonb_build_object('schemaName', ${args.schemaName}::text, 'guildIds', (SELECT coalesce(jsonb_agg(guild_id ORDER BY created_at), '[]'::jsonb) FROM gone_maps))`,
    )}) ELSE '[]'::jsonb END`;
    const now = change?.extras.at ?? this.clock();
    const write = change
      ? this.statusChange([id], change.from, change.to, args.actor, change.details, change.extras, {
          beforeSql: Prisma.sql`(SELECT before FROM events)`,
          afterSql: Prisma.sql`(SELECT after FROM events)`,
        })
      : Prisma.sql`
      moved AS (SELECT ${id}::uuid AS id),
      audited AS (
        INSERT INTO sandbox_audit_log (sandbox_id, event_type, actor, details, created_at)
        SELECT ${id}::uuid, e.a->>'eventType', e.a->>'actor', e.a->'details', ${now}::timestamptz
        FROM events, jsonb_array_elements(events.before) WITH ORDINALITY AS e(a, ord) ORDER BY e.ord
        RETURNING 1
      )`;
    // `d` (read first, by the main query's FROM) evaluates `f`, the dropFirst expressions, before the schema drop.
    const [row] = await tx.$queryRaw<{ mapped: string[]; moved: number }[]>`
      WITH f AS MATERIALIZED (SELECT ${first} AS first),
      d AS MATERIALIZED (SELECT f.first, ${drop} AS dropped FROM f),
      gone_maps AS (DELETE FROM sandbox_guild_mapping WHERE sandbox_id = ${id}::uuid RETURNING guild_id, created_at),
      gone_claims AS (DELETE FROM sandbox_guild_claims WHERE sandbox_id = ${id}::uuid RETURNING guild_id, created_at),
      events AS MATERIALIZED (SELECT ${before} AS before, ${after} AS after FROM d),
      ${write}
      SELECT ARRAY(SELECT guild_id FROM gone_maps ORDER BY created_at) AS mapped,
             (SELECT count(*) FROM moved)::int AS moved, (SELECT count(*) FROM audited) AS audited
      FROM d`;
    if (change && row!.moved !== 1) throw lostRace(id, change.from, change.to);
    return { mapped: row!.mapped };
  }

  /** Guild ids mapped anywhere that are not in `listed`. */
  async findMappedGuildsNotIn(listed: string[]): Promise<string[]> {
    const rows = await this.prisma.sandboxGuildMapping.findMany({ where: { guildId: { notIn: listed } }, select: { guildId: true } });
    return rows.map((r) => r.guildId);
  }

  /** A guild's live claims (not expired), oldest first, with their sandbox's name and owner. */
  async findClaims(db: Db, guildId: string): Promise<GuildClaim[]> {
    const rows = await db.sandboxGuildClaim.findMany({
      where: { guildId, expiresAt: { gt: this.clock() } },
      include: { sandbox: { select: { name: true, owner: true } } },
      orderBy: [{ createdAt: 'asc' }, { sandboxId: 'asc' }],
    });
    return rows.map((c) => ({
      sandboxId: c.sandboxId,
      claimedBy: c.claimedBy,
      createdAt: c.createdAt,
      expiresAt: c.expiresAt,
      checkAttempts: c.checkAttempts,
      sandboxName: c.sandbox.name,
      sandboxOwner: c.sandbox.owner,
    }));
  }

  /** Whether a guild has a live claim that the join rules should (still) look at. */
  async hasPendingClaims(guildId: string, maxCheckAttempts: number): Promise<boolean> {
    const n = await this.prisma.sandboxGuildClaim.count({ where: { guildId, expiresAt: { gt: this.clock() }, checkAttempts: { lt: maxCheckAttempts } } });
    return n > 0;
  }

  /**
   * Records a claim, or refreshes the expiry of this sandbox's existing claim on the guild. A
   * claim never replaces another sandbox's. A new claim is refused ('limit') when the claimant
   * already holds `cap` live claims (null: no cap); the caller holds the claimant's advisory key,
   * so the count is exact under concurrency.
   */
  async insertClaim(tx: Tx, sandboxId: string, guildId: string, claimedBy: string, expiresAt: Date, cap: number | null): Promise<'inserted' | 'refreshed' | 'limit'> {
    const now = this.clock();
    const refreshed = await tx.sandboxGuildClaim.updateMany({ where: { guildId, sandboxId }, data: { expiresAt, claimedBy, checkAttempts: 0 } });
    if (refreshed.count > 0) return 'refreshed';
    if (cap !== null && (await this.countLiveClaimsOf(tx, claimedBy, cap)) >= cap) return 'limit';
    await tx.sandboxGuildClaim.create({ data: { guildId, sandboxId, claimedBy, createdAt: now, expiresAt } });
    return 'inserted';
  }

  /** A claimant's live claims, counted with LIMIT cap+1 so the check stays flat. */
  async countLiveClaimsOf(tx: Db, claimedBy: string, cap: number): Promise<number> {
    const [row] = await tx.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM (
        SELECT 1 FROM sandbox_guild_claims WHERE claimed_by = ${claimedBy} AND expires_at > ${this.clock()}::timestamptz LIMIT ${cap + 1}::int
      ) c`;
    return row!.n;
  }

  async deleteClaim(tx: Tx, sandboxId: string, guildId: string): Promise<boolean> {
    const { count } = await tx.sandboxGuildClaim.deleteMany({ where: { guildId, sandboxId } });
    return count > 0;
  }

  /** A join check of this claim was deferred by a transient error; returns the attempts so far. */
  async recordClaimCheckDeferred(tx: Tx, sandboxId: string, guildId: string): Promise<number> {
    const [row] = await tx.$queryRaw<{ n: number }[]>`
      UPDATE sandbox_guild_claims SET check_attempts = check_attempts + 1
      WHERE guild_id = ${guildId} AND sandbox_id = ${sandboxId}::uuid RETURNING check_attempts AS n`;
    return row?.n ?? 0;
  }

  /** Expired claims, deleted and audited `guild_claim_expired`, in one statement (at most `batch`). */
  async deleteExpiredClaims(now: Date, batch: number, actor: Actor): Promise<number> {
    const [row] = await this.prisma.$queryRaw<{ n: number }[]>`
      WITH due AS (
        SELECT guild_id, sandbox_id FROM sandbox_guild_claims WHERE expires_at <= ${now}::timestamptz
        ORDER BY expires_at LIMIT ${batch}::int FOR UPDATE SKIP LOCKED
      ), gone AS (
        DELETE FROM sandbox_guild_claims c USING due WHERE c.guild_id = due.guild_id AND c.sandbox_id = due.sandbox_id
        RETURNING c.guild_id, c.sandbox_id, c.claimed_by, c.expires_at
      ), audited AS (
        INSERT INTO sandbox_audit_log (sandbox_id, event_type, actor, details, created_at)
        SELECT sandbox_id, 'guild_claim_expired', ${actorLabel(actor)},
               jsonb_build_object('guildId', guild_id, 'claimedBy', claimed_by, 'expiresAt', expires_at), ${now}::timestamptz
        FROM gone RETURNING 1
      )
      SELECT count(*)::int AS n FROM gone`;
    return row!.n;
  }

  /** Guilds the bot is in, unmapped, whose live claims had a check deferred and may be retried. */
  async findGuildsWithDeferredClaims(now: Date, maxCheckAttempts: number, batch: number): Promise<string[]> {
    const rows = await this.prisma.$queryRaw<{ guild_id: string }[]>`
      SELECT DISTINCT c.guild_id FROM sandbox_guild_claims c
      JOIN bot_guilds b ON b.guild_id = c.guild_id AND b.left_at IS NULL
      WHERE c.expires_at > ${now}::timestamptz AND c.check_attempts > 0 AND c.check_attempts < ${maxCheckAttempts}::int
        AND NOT EXISTS (SELECT 1 FROM sandbox_guild_mapping m WHERE m.guild_id = c.guild_id)
      LIMIT ${batch}::int`;
    return rows.map((r) => r.guild_id);
  }

  /** The sandbox a guild is mapped to, with its owner (for release messages and audits). */
  async findMappingHolder(db: Db, guildId: string): Promise<{ sandboxId: string; owner: string; name: string } | null> {
    const m = await db.sandboxGuildMapping.findUnique({ where: { guildId }, include: { sandbox: { select: { name: true, owner: true } } } });
    return m ? { sandboxId: m.sandboxId, owner: m.sandbox.owner, name: m.sandbox.name } : null;
  }

  // ------------------------------------------------------------ bot_guilds

  async findBotGuild(guildId: string): Promise<{ leftAt: Date | null } | null> {
    return this.prisma.botGuild.findUnique({ where: { guildId }, select: { leftAt: true } });
  }

  /** Inside a transaction (the caller holds the guild's key): is the bot in this guild per bot_guilds. */
  async isGuildPresent(db: Db, guildId: string): Promise<boolean> {
    const row = await db.botGuild.findUnique({ where: { guildId }, select: { leftAt: true } });
    return row !== null && row.leftAt === null;
  }

  async markGuildPresent(db: Db, guildId: string): Promise<void> {
    await db.botGuild.upsert({ where: { guildId }, create: { guildId, firstSeenAt: this.clock() }, update: { leftAt: null } });
  }

  async markGuildLeft(db: Db, guildId: string): Promise<void> {
    const now = this.clock();
    await db.botGuild.upsert({ where: { guildId }, create: { guildId, firstSeenAt: now, leftAt: now }, update: { leftAt: now } });
  }

  /** Marks as left the guilds recorded present that are not listed, among those `owns` accepts (this process's shards). */
  async markGuildsLeftExcept(listed: string[], owns: (guildId: string) => boolean): Promise<void> {
    const rows = await this.prisma.botGuild.findMany({ where: { guildId: { notIn: listed }, leftAt: null }, select: { guildId: true } });
    const left = rows.map((r) => r.guildId).filter(owns);
    if (left.length) await this.prisma.botGuild.updateMany({ where: { guildId: { in: left }, leftAt: null }, data: { leftAt: this.clock() } });
  }
}
