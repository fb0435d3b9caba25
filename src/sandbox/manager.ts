import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Prisma } from '../generated/prisma/client.ts';
import { TX_OPTIONS, type PrismaClient } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import { ErrorCode, SandboxError, isUniqueViolation, toSandboxError } from './errors.ts';
import { noFaults, type FaultInjector, type FaultPoint } from './faults.ts';
import { RecordedGuildDirectory, type GuildDirectory } from './guild-directory.ts';
import { SchemaProvisioner } from './provisioner.ts';
import {
  COUNTED_STATUSES,
  DEFAULT_LIMITS,
  actorLabel,
  canTransition,
  defaultOwner,
  type Actor,
  type CreateInput,
  type CreateResult,
  type GuildRegistration,
  type ListFilter,
  type Sandbox,
  type SandboxHealth,
  type SandboxLimits,
  type SandboxStatus,
} from './types.ts';
import {
  defaultName,
  validateExtendHours,
  validateGuildIds,
  validateMetadata,
  validateName,
  validateOwner,
  validateRef,
  validateSnowflake,
  validateTtlHours,
} from './validation.ts';

type Tx = Prisma.TransactionClient;
type Row = Prisma.SandboxGetPayload<{ include: { guilds: { select: { guildId: true } } } }>;

/** A guild the best-effort create left out: already mapped elsewhere, or not the actor's to manage. */
export interface SkippedGuild {
  guildId: string;
  reason: 'mapped' | 'forbidden';
}

interface GuildPlan {
  map: string[];
  claim: string[];
  forbidden: string[];
}

/** Hooks for metrics; the domain does not depend on prom-client. */
export interface ManagerObserver {
  created?(outcome: 'success' | 'failure', seconds: number): void;
  destroyed?(outcome: 'success' | 'failure', seconds: number): void;
  /** A teardown failed and the row stays `destroying` for a retry with backoff (SANDBOX_006). */
  destroyFailed?(): void;
}

export interface HealthProbe {
  ping(): Promise<unknown>;
}

export interface ManagerDeps {
  prisma: PrismaClient;
  logger: Logger;
  limits?: Partial<SandboxLimits>;
  adminIds?: Iterable<string>;
  guilds?: GuildDirectory;
  /** Redis health probe; absent means Redis is not configured ("disabled"). */
  redis?: HealthProbe | undefined;
  clock?: () => Date;
  newId?: () => string;
  faults?: FaultInjector;
  observer?: ManagerObserver;
}

const HOUR = 3_600_000;
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
});

/** Serialises a transaction against every other one touching the same key (owner, sandbox, guild). */
export const lockKey = (tx: Tx, key: string): Promise<number> => tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${key}, 0))`;

/** Backoff for failed destroys: 30 s, 1 min, 2 min, ... capped at 1 h. */
export const destroyBackoffMs = (attempts: number): number => Math.min(30_000 * 2 ** Math.max(0, attempts - 1), HOUR);

/**
 * The sandbox lifecycle. Every adapter (bot, CLI, jobs) goes through here, so authorization,
 * validation and auditing cannot be skipped. Every state change is a compare-and-set in a
 * transaction that also writes its audit row.
 */
export class SandboxManager {
  readonly provisioner: SchemaProvisioner;
  readonly limits: SandboxLimits;
  readonly prisma: PrismaClient;
  private readonly log: Logger;
  private readonly admins: Set<string>;
  private readonly guilds: GuildDirectory;
  private readonly clock: () => Date;
  private readonly newId: () => string;
  private readonly faults: FaultInjector;
  private readonly observer: ManagerObserver;
  private readonly redis: HealthProbe | undefined;

  constructor(deps: ManagerDeps) {
    this.prisma = deps.prisma;
    this.log = deps.logger.child({ component: 'sandbox-manager' });
    this.provisioner = new SchemaProvisioner(deps.prisma, deps.logger.child({ component: 'schema-provisioner' }));
    this.limits = { ...DEFAULT_LIMITS, ...deps.limits };
    this.admins = new Set(deps.adminIds ?? []);
    this.guilds = deps.guilds ?? new RecordedGuildDirectory(deps.prisma);
    this.clock = deps.clock ?? (() => new Date());
    this.newId = deps.newId ?? randomUUID;
    this.faults = deps.faults ?? noFaults;
    this.observer = deps.observer ?? {};
    this.redis = deps.redis;
  }

  now(): Date {
    return this.clock();
  }

  isAdmin(actor: Actor): boolean {
    return actor.kind !== 'discord' || this.admins.has(actor.id);
  }

  /** Admins act for anyone; a Discord user only for themselves. */
  private mayActFor(actor: Actor, owner: string): boolean {
    return this.isAdmin(actor) || (actor.kind === 'discord' && owner === actor.id);
  }

  private fault(point: FaultPoint, sandboxId?: string): Promise<void> | void {
    return this.faults.hit(point, sandboxId ? { sandboxId } : {});
  }

  /** Public operations never leak raw driver errors: everything leaves as a SandboxError. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toSandboxError(err);
    }
  }

  /** An interactive transaction with timeouts that tolerate PGlite running one at a time. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(fn, TX_OPTIONS);
  }

  async audit(tx: Tx | PrismaClient, sandboxId: string | null, eventType: string, actor: Actor, details: Record<string, unknown> = {}): Promise<void> {
    await tx.sandboxAuditLog.create({
      data: { sandboxId, eventType, actor: actorLabel(actor), details: details as Prisma.InputJsonValue, createdAt: this.clock() },
    });
  }

  /**
   * Compare-and-set of the status inside a transaction, with its audit row. A lost race is
   * SANDBOX_010, never a silent overwrite.
   */
  async transitionIn(
    tx: Tx,
    id: string,
    from: SandboxStatus,
    to: SandboxStatus,
    actor: Actor,
    details: Record<string, unknown> = {},
    extra: Prisma.SandboxUpdateManyMutationInput = {},
  ): Promise<void> {
    if (!canTransition(from, to)) {
      throw new SandboxError(ErrorCode.InvalidTransition, `A sandbox cannot go from ${from} to ${to}.`, { from, to });
    }
    const now = this.clock();
    const { count } = await tx.sandbox.updateMany({
      where: { id, status: from },
      data: { status: to, statusChangedAt: now, ...(to === 'destroyed' ? { destroyedAt: now } : {}), ...extra },
    });
    if (count !== 1) {
      throw new SandboxError(ErrorCode.Conflict, 'The sandbox was changed by someone else at the same time. Please try again.', { id, from, to });
    }
    await this.audit(tx, id, 'status_changed', actor, { from, to, ...details });
  }

  transition(
    id: string,
    from: SandboxStatus,
    to: SandboxStatus,
    actor: Actor,
    details: Record<string, unknown> = {},
    extra: Prisma.SandboxUpdateManyMutationInput = {},
  ): Promise<void> {
    return this.transaction((tx) => this.transitionIn(tx, id, from, to, actor, details, extra));
  }

  // ---------------------------------------------------------------- lookups

  async getById(id: string): Promise<Sandbox | null> {
    return this.guard(async () => {
      const ref = validateRef(id);
      if (ref.kind !== 'id') return null;
      const row = await this.prisma.sandbox.findUnique({ where: { id: ref.value }, include });
      return row ? toSandbox(row) : null;
    });
  }

  /** The live sandbox with this name, or else the most recently destroyed one. */
  async getByName(name: string): Promise<Sandbox | null> {
    return this.guard(async () => {
      validateName(name);
      const row =
        (await this.prisma.sandbox.findFirst({ where: { name, status: { not: 'destroyed' } }, include })) ??
        (await this.prisma.sandbox.findFirst({ where: { name }, include, orderBy: { destroyedAt: 'desc' } }));
      return row ? toSandbox(row) : null;
    });
  }

  async getByGuildId(guildId: string): Promise<Sandbox | null> {
    return this.guard(async () => {
      validateSnowflake(guildId);
      // The event-routing hot path: one statement rather than Prisma's three.
      const [row] = await this.prisma.$queryRaw<Sandbox[]>`
        SELECT s.id::text AS id, s.name, s.owner, s.status::text AS status, s.schema_name AS "schemaName",
               ARRAY(SELECT g.guild_id FROM sandbox_guild_mapping g WHERE g.sandbox_id = s.id ORDER BY g.created_at) AS "guildIds",
               s.created_at AS "createdAt", s.expires_at AS "expiresAt", s.destroyed_at AS "destroyedAt",
               s.last_activity_at AS "lastActivityAt", s.metadata
        FROM sandbox_guild_mapping m JOIN sandboxes s ON s.id = m.sandbox_id
        WHERE m.guild_id = ${guildId}`;
      return row ?? null;
    });
  }

  /** Resolves a name or id; throws SANDBOX_004 when there is none. */
  async resolve(ref: string): Promise<Sandbox> {
    const parsed = validateRef(ref);
    const found = parsed.kind === 'id' ? await this.getById(parsed.value) : await this.getByName(parsed.value);
    if (!found) throw new SandboxError(ErrorCode.NotFound, `No sandbox named or with id ${JSON.stringify(ref)}.`, { ref });
    return found;
  }

  /** Like resolve, but only for actors allowed to use this sandbox (its owner or an admin); others get SANDBOX_009. */
  async resolveFor(ref: string, actor: Actor): Promise<Sandbox> {
    const sandbox = await this.resolve(ref);
    if (!this.mayActFor(actor, sandbox.owner)) {
      throw new SandboxError(ErrorCode.Forbidden, `${sandbox.name} belongs to someone else; only its owner or a bot admin may use it.`, { ref });
    }
    return sandbox;
  }

  /**
   * Lists sandboxes, newest first. A non-admin Discord user sees only their own; asking for
   * anyone else's is refused.
   */
  async list(filter: ListFilter = {}, actor?: Actor): Promise<Sandbox[]> {
    return this.guard(async () => {
      let owner = filter.owner === undefined ? undefined : validateOwner(filter.owner);
      if (actor && !this.isAdmin(actor)) {
        const self = (actor as { id: string }).id;
        if (filter.allOwners || (owner !== undefined && owner !== self)) {
          throw new SandboxError(ErrorCode.Forbidden, 'Only bot admins may list other users’ sandboxes.');
        }
        owner = self;
      }
      const where: Prisma.SandboxWhereInput = {};
      if (owner !== undefined) where.owner = owner;
      if (filter.status !== undefined) where.status = filter.status;
      else if (!filter.includeDestroyed) where.status = { not: 'destroyed' };
      const rows = await this.prisma.sandbox.findMany({ where, include, orderBy: { createdAt: 'desc' }, take: filter.limit ?? 1000 });
      return rows.map(toSandbox);
    });
  }

  // ---------------------------------------------------------------- create

  /**
   * With `bestEffortGuilds` (the bot's `/sandbox create` for the current guild), a guild that is
   * already mapped or that the actor may not manage is skipped and reported instead of failing
   * the whole create.
   */
  async create(input: CreateInput, actor: Actor, opts: { bestEffortGuilds?: boolean } = {}): Promise<CreateResult & { skippedGuilds: SkippedGuild[] }> {
    return this.guard(async () => {
      const started = performance.now();
      const owner = validateOwner(input.owner ?? defaultOwner(actor));
      if (!this.mayActFor(actor, owner)) {
        throw new SandboxError(ErrorCode.Forbidden, 'You may only create sandboxes for yourself.');
      }
      const name = input.name === undefined ? undefined : validateName(input.name);
      const ttl = validateTtlHours(input.ttlHours ?? this.limits.defaultTtlHours, this.limits.maxTtlHours);
      const guildIds = validateGuildIds(input.guildIds);
      const metadata = validateMetadata(input.metadata);
      const notices = ttl.capped ? [`TTL capped at the maximum of ${this.limits.maxTtlHours} hours (you asked for ${input.ttlHours}).`] : [];
      const bestEffort = opts.bestEffortGuilds ?? false;
      const plan = await this.planGuilds(guildIds, actor, bestEffort);

      const log = this.log.child({ actor: actorLabel(actor), owner });
      const requested = guildIds.filter((g) => !plan.forbidden.includes(g));
      const row = await this.insertPending({ name, owner, ttlHours: ttl.hours, guildIds: requested, metadata, actor, skipMapped: bestEffort });
      const slog = log.child({ sandboxId: row.id });
      try {
        const mappedElsewhere = await this.provision(row.id, row.schemaName, plan, actor, bestEffort);
        const skippedGuilds = [...plan.forbidden.map((guildId) => ({ guildId, reason: 'forbidden' as const })), ...mappedElsewhere.map((guildId) => ({ guildId, reason: 'mapped' as const }))];
        const sandbox = (await this.getById(row.id))!;
        this.observer.created?.('success', (performance.now() - started) / 1000);
        slog.info({ name: sandbox.name, schemaName: sandbox.schemaName, ms: Math.round(performance.now() - started) }, 'sandbox created');
        return { sandbox, notices, claimedGuildIds: plan.claim, skippedGuilds };
      } catch (err) {
        this.observer.created?.('failure', (performance.now() - started) / 1000);
        const outcome = await this.compensateCreate(row.id, actor, err, slog);
        if (outcome === 'running') {
          const sandbox = (await this.getById(row.id))!;
          return { sandbox, notices, claimedGuildIds: plan.claim, skippedGuilds: [] };
        }
        throw toSandboxError(err);
      }
    });
  }

  /** Decides, outside any transaction, which guilds are mapped now and which become claims. */
  private async planGuilds(guildIds: string[], actor: Actor, bestEffort: boolean): Promise<GuildPlan> {
    const plan: GuildPlan = { map: [], claim: [], forbidden: [] };
    for (const guildId of guildIds) {
      if (await this.guilds.isBotInGuild(guildId)) {
        if (bestEffort && !(await this.canManageGuild(guildId, actor))) {
          plan.forbidden.push(guildId);
          continue;
        }
        await this.assertCanManageGuild(guildId, actor);
        plan.map.push(guildId);
      } else {
        plan.claim.push(guildId);
      }
    }
    return plan;
  }

  private async canManageGuild(guildId: string, actor: Actor): Promise<boolean> {
    return this.isAdmin(actor) || this.guilds.canManageGuild(guildId, (actor as { id: string }).id);
  }

  private async assertCanManageGuild(guildId: string, actor: Actor): Promise<void> {
    if (!(await this.canManageGuild(guildId, actor))) {
      throw new SandboxError(ErrorCode.Forbidden, `You need the Manage Server permission in guild ${guildId} to register it.`, { guildId });
    }
  }

  /** Inserts and commits the pending row (with its schema name) before any DDL. */
  private async insertPending(args: {
    name: string | undefined;
    owner: string;
    ttlHours: number;
    guildIds: string[];
    metadata: Record<string, unknown>;
    actor: Actor;
    skipMapped: boolean;
  }): Promise<{ id: string; schemaName: string }> {
    for (let attempt = 1; ; attempt++) {
      const id = this.newId();
      const name = args.name ?? defaultName(args.owner);
      try {
        return await this.transaction(async (tx) => {
          await lockKey(tx, `owner:${args.owner}`);
          const count = await tx.sandbox.count({ where: { owner: args.owner, status: { in: [...COUNTED_STATUSES] } } });
          if (count >= this.limits.maxPerOwner) {
            throw new SandboxError(
              ErrorCode.LimitExceeded,
              `${args.owner} already has ${count} sandboxes; the limit is ${this.limits.maxPerOwner}. Destroy one first.`,
              { owner: args.owner, count, limit: this.limits.maxPerOwner },
            );
          }
          if (args.guildIds.length && !args.skipMapped) await this.assertGuildsFree(tx, args.guildIds);
          const schemaName = await this.provisioner.schemaNameFor(id, tx);
          const now = this.clock();
          await tx.sandbox.create({
            data: {
              id,
              name,
              owner: args.owner,
              status: 'pending',
              schemaName,
              createdAt: now,
              expiresAt: new Date(now.getTime() + args.ttlHours * HOUR),
              lastActivityAt: now,
              statusChangedAt: now,
              metadata: args.metadata as Prisma.InputJsonValue,
            },
          });
          await this.audit(tx, id, 'created', args.actor, { name, owner: args.owner, ttlHours: args.ttlHours, guildIds: args.guildIds, schemaName });
          await this.fault('create:after-insert', id);
          return { id, schemaName };
        });
      } catch (err) {
        if (isUniqueViolation(err, 'uq_sandboxes_live_name')) {
          if (args.name === undefined && attempt < 5) continue;
          throw new SandboxError(ErrorCode.NameExists, `A sandbox named ${name} already exists. Pick another name.`, { name });
        }
        if (isUniqueViolation(err, 'sandboxes_schema_name_key') || isUniqueViolation(err, 'sandboxes_pkey')) {
          this.log.warn({ sandboxId: id, attempt }, 'sandbox id or schema name collision; retrying with a new id');
          await this.audit(this.prisma, null, 'schema_name_collision', args.actor, { sandboxId: id, attempt }).catch(() => undefined);
          if (attempt < 5) continue;
          throw new SandboxError(ErrorCode.SchemaFailed, 'Could not allocate a unique schema name.', {}, { cause: err });
        }
        throw err;
      }
    }
  }

  private async assertGuildsFree(tx: Tx, guildIds: string[]): Promise<void> {
    const taken = await tx.sandboxGuildMapping.findMany({ where: { guildId: { in: guildIds } }, include: { sandbox: { select: { name: true } } } });
    const first = taken[0];
    if (first) {
      throw new SandboxError(ErrorCode.GuildMapped, `Guild ${first.guildId} is already registered to sandbox ${first.sandbox.name}.`, {
        guildId: first.guildId,
      });
    }
  }

  /**
   * pending → creating is committed first, so a crash is visible as a stuck row. Then the schema,
   * the guild mappings and creating → running commit together: a crash or failure in between
   * leaves no schema behind.
   */
  private async provision(id: string, schemaName: string, plan: GuildPlan, actor: Actor, skipMapped: boolean): Promise<string[]> {
    await this.transition(id, 'pending', 'creating', actor);
    await this.fault('create:after-creating', id);
    return this.transaction(async (tx) => {
      await lockKey(tx, `sandbox:${id}`);
      const created = await this.provisioner.createSchema(id, tx);
      if (created !== schemaName) {
        throw new SandboxError(ErrorCode.SchemaFailed, 'The created schema does not match the recorded one.', { created, recorded: schemaName });
      }
      await this.audit(tx, id, 'schema_created', actor, { schemaName });
      await this.fault('create:after-schema', id);
      const skipped: string[] = [];
      for (const guildId of plan.map) {
        const inserted = await this.insertMapping(tx, id, guildId);
        if (inserted) await this.audit(tx, id, 'guild_registered', actor, { guildId });
        else if (skipMapped) skipped.push(guildId);
        else await this.throwGuildMapped(tx, guildId);
      }
      for (const guildId of plan.claim) await this.upsertClaim(tx, id, guildId, actor);
      await this.fault('create:before-running', id);
      await this.transitionIn(tx, id, 'creating', 'running', actor);
      return skipped;
    });
  }

  /** Maps a guild if it is free (ON CONFLICT DO NOTHING) and drops its claim; true when this call mapped it. */
  async insertMapping(tx: Tx, sandboxId: string, guildId: string): Promise<boolean> {
    const n = await tx.$executeRaw`
      INSERT INTO sandbox_guild_mapping (guild_id, sandbox_id, created_at) VALUES (${guildId}, ${sandboxId}::uuid, ${this.clock()})
      ON CONFLICT (guild_id) DO NOTHING`;
    if (n === 1) await tx.sandboxGuildClaim.deleteMany({ where: { guildId } });
    return n === 1;
  }

  private async throwGuildMapped(tx: Tx, guildId: string): Promise<never> {
    const holder = await tx.sandboxGuildMapping.findUnique({ where: { guildId }, include: { sandbox: { select: { name: true } } } });
    throw new SandboxError(ErrorCode.GuildMapped, `Guild ${guildId} is already registered to sandbox ${holder?.sandbox.name ?? 'another sandbox'}.`, { guildId });
  }

  private async upsertClaim(tx: Tx, sandboxId: string, guildId: string, actor: Actor): Promise<void> {
    const previous = await tx.sandboxGuildClaim.findUnique({ where: { guildId } });
    await tx.sandboxGuildClaim.upsert({
      where: { guildId },
      create: { guildId, sandboxId, claimedBy: actorLabel(actor), createdAt: this.clock() },
      update: { sandboxId, claimedBy: actorLabel(actor), createdAt: this.clock() },
    });
    await this.audit(tx, sandboxId, 'guild_claimed', actor, { guildId, ...(previous && previous.sandboxId !== sandboxId ? { replacedSandboxId: previous.sandboxId } : {}) });
  }

  /**
   * After a failed create: creating/pending → failed (audited with the reason), then torn down.
   * Audit rows are kept. Returns 'running' if the create had in fact committed.
   */
  private async compensateCreate(id: string, actor: Actor, err: unknown, log: Logger): Promise<'compensated' | 'running' | 'left-for-sweeper'> {
    const error = toSandboxError(err);
    log.warn({ err, code: error.code }, 'sandbox creation failed; compensating');
    try {
      const current = await this.prisma.sandbox.findUnique({ where: { id } });
      if (!current) return 'compensated';
      if (current.status === 'running') return 'running';
      if (current.status === 'pending' || current.status === 'creating') {
        await this.transaction(async (tx) => {
          await this.transitionIn(tx, id, current.status, 'failed', actor, { reason: 'creation_failed' });
          await this.audit(tx, id, 'creation_failed', actor, { code: error.code, message: error.message });
        });
      }
      // Our schema transaction rolled back, so any schema of that name is not ours: never drop it here.
      const collision = error.details.collision === true;
      await this.destroyFailed(id, actor, { dropSchema: !collision });
      return 'compensated';
    } catch (compErr) {
      log.error({ err: compErr }, 'compensation did not finish; the sweeper will reconcile this sandbox');
      return 'left-for-sweeper';
    }
  }

  /** failed → destroying → destroyed. Used by compensation and by the reconciler. */
  async destroyFailed(id: string, actor: Actor, opts: { dropSchema?: boolean } = {}): Promise<void> {
    const row = await this.prisma.sandbox.findUnique({ where: { id } });
    if (!row || row.status === 'destroyed') return;
    await this.finishDestroy(id, actor, { ...opts, fromFailed: {} });
  }

  // ---------------------------------------------------------------- destroy

  /** Idempotent: destroying a destroyed sandbox returns it unchanged. */
  async destroy(ref: string, actor: Actor): Promise<Sandbox> {
    return this.guard(async () => {
      const started = performance.now();
      const sandbox = await this.resolveFor(ref, actor);
      if (sandbox.status === 'destroyed') return sandbox;
      if (sandbox.status === 'pending' || sandbox.status === 'creating') {
        throw new SandboxError(ErrorCode.InvalidTransition, `${sandbox.name} is still being created; try again in a moment.`, { status: sandbox.status });
      }
      try {
        if (sandbox.status !== 'destroying' && sandbox.status !== 'failed') {
          await this.transition(sandbox.id, sandbox.status, 'destroying', actor, { reason: 'destroy_requested' });
        }
        await this.fault('destroy:after-destroying', sandbox.id);
        await this.finishDestroy(sandbox.id, actor, { fromFailed: { reason: 'destroy_requested' } });
        this.observer.destroyed?.('success', (performance.now() - started) / 1000);
        this.log.info({ sandboxId: sandbox.id, actor: actorLabel(actor), ms: Math.round(performance.now() - started) }, 'sandbox destroyed');
        return (await this.getById(sandbox.id))!;
      } catch (err) {
        this.observer.destroyed?.('failure', (performance.now() - started) / 1000);
        throw toSandboxError(err);
      }
    });
  }

  /**
   * destroying → destroyed in one transaction: unmap guilds, drop claims, drop the schema, set
   * destroyed_at, each step audited. On failure the row stays `destroying` with a backoff for
   * the sweeper, and SANDBOX_006 is thrown.
   */
  async finishDestroy(id: string, actor: Actor, opts: { dropSchema?: boolean; fromFailed?: Record<string, unknown> } = {}): Promise<void> {
    try {
      await this.transaction(async (tx) => {
        await lockKey(tx, `sandbox:${id}`);
        const row = await this.lockRow(tx, id);
        if (!row || row.status === 'destroyed') return;
        if (row.status === 'failed' && opts.fromFailed) {
          // `failed` does not count against the owner's limit and `destroying` does, so failed → destroying
          // commits with the teardown: a failed sandbox never re-enters the count (a failed teardown leaves it failed).
          await this.transitionIn(tx, id, 'failed', 'destroying', actor, opts.fromFailed);
        } else if (row.status !== 'destroying') {
          throw new SandboxError(ErrorCode.InvalidTransition, `Cannot finish destroying a ${row.status} sandbox.`, { status: row.status });
        }
        const mappings = await tx.sandboxGuildMapping.findMany({ where: { sandboxId: id } });
        await tx.sandboxGuildMapping.deleteMany({ where: { sandboxId: id } });
        for (const m of mappings) await this.audit(tx, id, 'guild_unregistered', actor, { guildId: m.guildId, reason: 'sandbox_destroyed' });
        const claims = await tx.sandboxGuildClaim.findMany({ where: { sandboxId: id } });
        await tx.sandboxGuildClaim.deleteMany({ where: { sandboxId: id } });
        for (const c of claims) await this.audit(tx, id, 'guild_claim_removed', actor, { guildId: c.guildId, reason: 'sandbox_destroyed' });
        const dropped = opts.dropSchema === false ? false : await this.provisioner.dropSchema(id, tx);
        await this.audit(tx, id, 'schema_dropped', actor, { schemaName: row.schemaName, dropped });
        await this.fault('destroy:after-drop', id);
        await this.transitionIn(tx, id, 'destroying', 'destroyed', actor, {}, { destroyAttempts: 0, nextAttemptAt: null });
        await this.audit(tx, id, 'destroyed', actor, { schemaName: row.schemaName, guildIds: mappings.map((m) => m.guildId) });
      });
    } catch (err) {
      if (err instanceof SandboxError && err.code === ErrorCode.InvalidTransition) throw err;
      await this.recordDestroyFailure(id, actor, err);
      throw new SandboxError(ErrorCode.CleanupFailed, 'Cleanup failed; it will be retried automatically.', { id }, { cause: err });
    }
  }

  private async recordDestroyFailure(id: string, actor: Actor, err: unknown): Promise<void> {
    this.observer.destroyFailed?.();
    try {
      await this.transaction(async (tx) => {
        const row = await tx.sandbox.findUnique({ where: { id }, select: { destroyAttempts: true } });
        const attempts = (row?.destroyAttempts ?? 0) + 1;
        await tx.sandbox.updateMany({
          where: { id, status: { in: ['destroying', 'failed'] } },
          data: { destroyAttempts: attempts, nextAttemptAt: new Date(this.clock().getTime() + destroyBackoffMs(attempts)) },
        });
        await this.audit(tx, id, 'destroy_failed', actor, { attempts, error: (err as Error)?.message ?? String(err) });
      });
    } catch (recordErr) {
      this.log.error({ sandboxId: id, err: recordErr }, 'could not record the destroy failure');
    }
    this.log.error({ sandboxId: id, actor: actorLabel(actor), err }, 'destroy failed; left for the sweeper to retry with backoff');
  }

  // ---------------------------------------------------------------- extend

  /** New expiry: min(max(expires_at, now) + hours, now + max TTL). Revives an expired sandbox. */
  async extendTtl(ref: string, hours: number, actor: Actor): Promise<{ sandbox: Sandbox; notices: string[] }> {
    return this.guard(async () => {
      const h = validateExtendHours(hours, this.limits.maxTtlHours);
      const target = await this.resolveFor(ref, actor);
      const notices: string[] = [];
      await this.transaction(async (tx) => {
        const row = await this.lockRow(tx, target.id);
        if (!row || (row.status !== 'running' && row.status !== 'expired')) {
          throw new SandboxError(ErrorCode.InvalidTransition, `${target.name} is ${row?.status ?? 'gone'}; only running or expired sandboxes can be extended.`, {
            status: row?.status,
          });
        }
        await this.fault('extend:before-update', target.id);
        const now = this.clock().getTime();
        const wanted = Math.max(row.expiresAt.getTime(), now) + h * HOUR;
        const ceiling = now + this.limits.maxTtlHours * HOUR;
        const expiresAt = new Date(Math.min(wanted, ceiling));
        if (wanted > ceiling) notices.push(`Expiry capped at ${this.limits.maxTtlHours} hours from now.`);
        if (row.status === 'expired') {
          await this.transitionIn(tx, target.id, 'expired', 'running', actor, { reason: 'extended' }, { expiresAt, expiryNotifiedAt: null });
        } else {
          const { count } = await tx.sandbox.updateMany({ where: { id: target.id, status: 'running' }, data: { expiresAt, expiryNotifiedAt: null } });
          if (count !== 1) throw new SandboxError(ErrorCode.Conflict, 'The sandbox was changed at the same time. Please try again.');
        }
        await this.audit(tx, target.id, 'ttl_extended', actor, { hours: h, previousExpiresAt: row.expiresAt.toISOString(), expiresAt: expiresAt.toISOString(), capped: wanted > ceiling });
      });
      return { sandbox: (await this.getById(target.id))!, notices };
    });
  }

  // ---------------------------------------------------------------- guilds

  /**
   * Maps a guild to a sandbox when the bot is in it (the invoker needs Manage Server there),
   * otherwise records a pending claim that is applied when the bot joins.
   */
  async registerGuild(ref: string, guildId: string, actor: Actor): Promise<{ sandbox: Sandbox; outcome: GuildRegistration }> {
    return this.guard(async () => {
      validateSnowflake(guildId);
      const target = await this.resolveFor(ref, actor);
      const inGuild = await this.guilds.isBotInGuild(guildId);
      if (inGuild) await this.assertCanManageGuild(guildId, actor);
      const outcome = await this.transaction(async (tx): Promise<GuildRegistration> => {
        await this.lockLiveSandbox(tx, target.id, target.name, ['running']);
        await this.fault('register:before-insert', target.id);
        const existing = await tx.sandboxGuildMapping.findUnique({ where: { guildId } });
        if (existing?.sandboxId === target.id) return 'already-mapped';
        if (existing) await this.throwGuildMapped(tx, guildId);
        if (!inGuild) {
          await this.upsertClaim(tx, target.id, guildId, actor);
          return 'claimed';
        }
        if (!(await this.insertMapping(tx, target.id, guildId))) await this.throwGuildMapped(tx, guildId);
        await this.audit(tx, target.id, 'guild_registered', actor, { guildId });
        return 'mapped';
      });
      return { sandbox: (await this.getById(target.id))!, outcome };
    });
  }

  async unregisterGuild(ref: string, guildId: string, actor: Actor, reason = 'requested'): Promise<Sandbox> {
    return this.guard(async () => {
      validateSnowflake(guildId);
      const target = await this.resolveFor(ref, actor);
      await this.transaction(async (tx) => {
        await this.lockRow(tx, target.id);
        const mapped = await tx.sandboxGuildMapping.deleteMany({ where: { guildId, sandboxId: target.id } });
        const claimed = await tx.sandboxGuildClaim.deleteMany({ where: { guildId, sandboxId: target.id } });
        if (mapped.count + claimed.count === 0) {
          throw new SandboxError(ErrorCode.NotFound, `Guild ${guildId} is not registered to ${target.name}.`, { guildId });
        }
        await this.audit(tx, target.id, mapped.count ? 'guild_unregistered' : 'guild_claim_removed', actor, { guildId, reason });
      });
      return (await this.getById(target.id))!;
    });
  }

  /**
   * Locks the sandbox row (FOR UPDATE) and returns what a caller checks under that lock.
   * The lock order is always: sandbox row first, then its mappings and claims. Every change to
   * those goes through here first; the opposite order deadlocks with a destroy.
   */
  async lockRow(tx: Tx, id: string): Promise<{ status: SandboxStatus; schemaName: string; expiresAt: Date } | undefined> {
    const [row] = await tx.$queryRaw<{ status: SandboxStatus; schemaName: string; expiresAt: Date }[]>`
      SELECT status::text AS status, schema_name AS "schemaName", expires_at AS "expiresAt" FROM sandboxes WHERE id = ${id}::uuid FOR UPDATE`;
    return row;
  }

  /** Takes the sandbox row lock and checks its status, so a concurrent destroy cannot interleave. */
  async lockLiveSandbox(tx: Tx, id: string, name: string, allowed: SandboxStatus[]): Promise<void> {
    const row = await this.lockRow(tx, id);
    if (!row || !allowed.includes(row.status)) {
      throw new SandboxError(ErrorCode.InvalidTransition, `${name} is ${row?.status ?? 'gone'}; this needs a ${allowed.join(' or ')} sandbox.`, {
        status: row?.status,
      });
    }
  }

  // ---------------------------------------------------------------- activity, health, env

  async updateActivity(ref: string): Promise<void> {
    return this.guard(async () => {
      const target = await this.resolve(ref);
      await this.prisma.sandbox.updateMany({ where: { id: target.id, status: 'running' }, data: { lastActivityAt: this.clock() } });
    });
  }

  async getHealth(ref: string, actor: Actor): Promise<SandboxHealth> {
    return (await this.getStatus(ref, actor)).health;
  }

  /** A sandbox and its health, resolved once (CLI `status`, `/sandbox status`). */
  async getStatus(ref: string, actor: Actor): Promise<{ sandbox: Sandbox; health: SandboxHealth }> {
    return this.guard(async () => {
      const sandbox = await this.resolveFor(ref, actor);
      return { sandbox, health: await this.healthOf(sandbox) };
    });
  }

  /** Real checks: the schema and its exact row counts, the guilds, the TTL left, a Redis PING. */
  private async healthOf(sandbox: Sandbox): Promise<SandboxHealth> {
    let schema: SandboxHealth['schema'];
    try {
      const stats = await this.provisioner.getSchemaStats(sandbox.id);
      schema = { ...stats, state: stats.exists ? 'ok' : 'missing' };
    } catch (err) {
      schema = { exists: false, tables: [], totalRows: 0, state: 'error' };
      this.log.warn({ sandboxId: sandbox.id, err }, 'schema stats failed');
    }
    let redis: SandboxHealth['redis'] = { state: 'disabled' };
    if (this.redis) {
      try {
        await this.redis.ping();
        redis = { state: 'ok' };
      } catch (err) {
        redis = { state: 'error', detail: (err as Error).message };
      }
    }
    return {
      sandboxId: sandbox.id,
      status: sandbox.status,
      healthy: sandbox.status === 'running' && schema.state === 'ok' && schema.tables.length === 3 && redis.state !== 'error',
      schema,
      guildCount: sandbox.guildIds.length,
      ttlRemainingMs: Math.max(0, sandbox.expiresAt.getTime() - this.clock().getTime()),
      redis,
      checkedAt: this.clock(),
    };
  }

  /** Environment for code under test. Never credentials. */
  async getConnectionDetails(ref: string, actor: Actor): Promise<Record<string, string>> {
    return this.guard(async () => {
      const s = await this.resolveFor(ref, actor);
      return {
        SANDBOX_ID: s.id,
        SANDBOX_NAME: s.name,
        SANDBOX_SCHEMA: s.schemaName,
        SANDBOX_REDIS_PREFIX: `sandbox:${s.id}:`,
        SANDBOX_NATS_PREFIX: `sandbox.${s.id}.`,
        SANDBOX_GUILD_IDS: s.guildIds.join(','),
      };
    });
  }
}
