import { performance } from 'node:perf_hooks';
import type { Logger } from '../../logger.ts';
import { ErrorCode, SandboxError, isUniqueViolation, toSandboxError } from '../errors.ts';
import type { ExternalResource } from '../resources.ts';
import type { AuditEntry, Tx } from '../store/store.ts';
import { actorLabel, defaultOwner, type Actor, type CreateInput, type CreateResult, type Sandbox } from '../types.ts';
import { defaultName, validateGuildIds, validateMetadata, validateName, validateOwner, validateTtlHours } from '../validation.ts';
import { HOUR, assertUsable, fault, guard, mayActFor, routesChanged, throwGuildMapped, type LifecycleContext } from './context.ts';
import { tearDown } from './destroy.ts';
import { assertCanManageGuild, canManageGuild, claimGuild } from './guilds.ts';
import { getById } from './lookups.ts';
import { createExpressions, preparePostgresResources, regrant } from './postgres-resources.ts';
import { onServer } from './on-server.ts';
import { DEFAULT_SERVER } from '../servers.ts';

/** A guild the best-effort create left out: already mapped elsewhere, or not the actor's to manage. */
export interface SkippedGuild {
  guildId: string;
  /** 'unverified': Discord could not answer whether the actor holds Manage Server (403 Missing Access, 5xx, timeout). */
  reason: 'mapped' | 'forbidden' | 'unverified';
}

interface GuildPlan {
  map: string[];
  claim: string[];
  forbidden: string[];
  unverified: string[];
}

/**
 * Two commits: the row as `creating` (with its schema name and audit row), then, after the
 * external resources are ensured, ONE transaction with the schema DDL (and the role), the mappings, the claims
 * and `creating → running`. A crash in between leaves a `creating` row and no schema, which the
 * sweeper reconciles. With `bestEffortGuilds` (the bot's `/sandbox create` for the current
 * guild), a guild that is already mapped or that the actor may not manage is skipped and reported.
 */
export const create = (
  ctx: LifecycleContext,
  input: CreateInput,
  actor: Actor,
  opts: { bestEffortGuilds?: boolean; /** Clone: the schema is a copy of this sandbox's (see clone.ts), on its server. */ cloneOf?: Pick<Sandbox, 'id' | 'name' | 'server'> } = {},
): Promise<CreateResult & { skippedGuilds: SkippedGuild[] }> =>
  guard(async () => {
    const started = performance.now();
    const owner = validateOwner(input.owner ?? defaultOwner(actor));
    if (!mayActFor(ctx, actor, owner)) throw new SandboxError(ErrorCode.Forbidden, 'You may only create sandboxes for yourself.');
    const name = input.name === undefined ? undefined : validateName(input.name);
    const ttl = validateTtlHours(input.ttlHours ?? ctx.limits.defaultTtlHours, ctx.limits.maxTtlHours);
    const guildIds = validateGuildIds(input.guildIds);
    const metadata = validateMetadata(input.metadata);
    const notices = ttl.capped ? [`TTL capped at the maximum of ${ctx.limits.maxTtlHours} hours (you asked for ${input.ttlHours}).`] : [];
    const bestEffort = opts.bestEffortGuilds ?? false;
    const plan = await planGuilds(ctx, guildIds, actor, bestEffort);

    const requested = guildIds.filter((g) => !plan.forbidden.includes(g) && !plan.unverified.includes(g));
    const servers = await placementCandidates(ctx, opts.cloneOf);
    const row = await insertCreating(ctx, { name, owner, ttlHours: ttl.hours, guildIds: requested, metadata, actor, skipMapped: bestEffort, servers });
    const slog = ctx.log.child({ actor: actorLabel(actor), owner, sandboxId: row.id });
    const ensured: ExternalResource[] = [];
    try {
      await fault(ctx, 'create:after-creating', row.id);
      await ensureExternal(ctx, row.id, ensured, slog);
      const source: SchemaSource = opts.cloneOf ? { kind: 'clone', sourceId: opts.cloneOf.id, sourceName: opts.cloneOf.name } : { kind: 'template', empty: input.empty === true };
      const { skipped: mappedElsewhere, templateVersion } = await provision(ctx, row, plan, actor, bestEffort, source);
      if (plan.map.length > mappedElsewhere.length) await routesChanged(ctx);
      const skippedGuilds: SkippedGuild[] = [
        ...plan.forbidden.map((guildId) => ({ guildId, reason: 'forbidden' as const })),
        ...plan.unverified.map((guildId) => ({ guildId, reason: 'unverified' as const })),
        ...mappedElsewhere.map((guildId) => ({ guildId, reason: 'mapped' as const })),
      ];
      // Everything in it was just written by this create: no read-back.
      const sandbox: Sandbox = {
        id: row.id,
        name: row.name,
        owner,
        status: 'running',
        schemaName: row.schemaName,
        guildIds: plan.map.filter((g) => !mappedElsewhere.includes(g)),
        createdAt: row.createdAt,
        expiresAt: row.expiresAt,
        destroyedAt: null,
        lastActivityAt: row.createdAt,
        metadata,
        templateVersion,
        server: row.server,
      };
      ctx.observer.created?.('success', (performance.now() - started) / 1000);
      slog.info({ name: sandbox.name, schemaName: sandbox.schemaName, server: row.server, ms: Math.round(performance.now() - started) }, 'sandbox created');
      return { sandbox, notices, claimedGuildIds: plan.claim, skippedGuilds };
    } catch (err) {
      ctx.observer.created?.('failure', (performance.now() - started) / 1000);
      const outcome = await compensateCreate(ctx, row.id, actor, err, ensured, slog);
      if (outcome === 'running') return { sandbox: (await getById(ctx, row.id))!, notices, claimedGuildIds: plan.claim, skippedGuilds: [] };
      throw toSandboxError(err);
    }
  });

/** Decides, outside any transaction, which guilds are mapped now and which become claims. */
async function planGuilds(ctx: LifecycleContext, guildIds: string[], actor: Actor, bestEffort: boolean): Promise<GuildPlan> {
  const plan: GuildPlan = { map: [], claim: [], forbidden: [], unverified: [] };
  for (const guildId of guildIds) {
    if (await ctx.guilds.isBotInGuild(guildId)) {
      if (bestEffort) {
        let allowed: boolean;
        try {
          allowed = await canManageGuild(ctx, guildId, actor);
        } catch (err) {
          // A failed member fetch never fails the create: the sandbox is made unmapped and the reply says why.
          ctx.log.warn({ guildId, err }, 'could not check Manage Server; creating the sandbox without this guild');
          plan.unverified.push(guildId);
          continue;
        }
        if (!allowed) {
          plan.forbidden.push(guildId);
          continue;
        }
      }
      await assertCanManageGuild(ctx, guildId, actor);
      plan.map.push(guildId);
    } else {
      plan.claim.push(guildId);
    }
  }
  return plan;
}

/**
 * The servers this create may be placed on, in the configured order (`default` first): those that
 * answer now (a server that is down gets no new sandboxes), and for a clone its source's server
 * only (SANDBOX_011 naming it when that one is down). sandbox_insert_creating picks among them.
 */
async function placementCandidates(ctx: LifecycleContext, cloneOf: Pick<Sandbox, 'server'> | undefined): Promise<string[]> {
  if (cloneOf) {
    if (cloneOf.server !== DEFAULT_SERVER) await ctx.servers.use(cloneOf.server);
    return [cloneOf.server];
  }
  return ctx.servers.several ? ctx.servers.available() : [DEFAULT_SERVER];
}

/** Inserts and commits the row directly as `creating` (with its schema name and server) before any DDL, in one statement. */
async function insertCreating(
  ctx: LifecycleContext,
  args: { name: string | undefined; owner: string; ttlHours: number; guildIds: string[]; metadata: Record<string, unknown>; actor: Actor; skipMapped: boolean; servers: string[] },
): Promise<CreatingRow> {
  for (let attempt = 1; ; attempt++) {
    const id = ctx.newId();
    const name = args.name ?? defaultName(args.owner);
    try {
      const expiresAt = new Date(ctx.clock().getTime() + args.ttlHours * HOUR);
      const freeGuilds = args.skipMapped ? [] : args.guildIds;
      // ONE statement, its own transaction: the owner's key and the installation-wide key (the global
      // cap, SANDBOX_MAX_TOTAL), the limit and free-guild checks counted after both are granted, the
      // row as `creating` with its schema name from sandbox_schema_name(), and its `created` audit row.
      // With no external resource, nothing outside this database is made between this commit and
      // the provisioning transaction, whose synchronous commit also flushes this one (WAL is flushed
      // in order). A server crash in between loses only a row that has no schema yet, so this commit
      // need not wait for its own flush. With external resources it must: a stream or ACL user must
      // never exist without its row.
      const result = await ctx.store.insertCreatingSandbox(
        { id, name, owner: args.owner, expiresAt, metadata: args.metadata },
        args.actor,
        { name, owner: args.owner, ttlHours: args.ttlHours, guildIds: args.guildIds },
        // A schema on another server is made outside this database: the row must be durable first.
        { cap: ctx.limits.maxPerOwner, freeGuilds, maxTotal: ctx.limits.maxTotal, asyncCommit: ctx.resources.length === 0 && !ctx.servers.several, servers: args.servers },
      );
      if (!result.inserted) {
        if (result.refused === 'owner_limit') {
          throw new SandboxError(
            ErrorCode.LimitExceeded,
            `${args.owner} already has ${result.count} sandboxes; the limit is ${ctx.limits.maxPerOwner}. Destroy one first.`,
            { owner: args.owner, count: result.count, limit: ctx.limits.maxPerOwner },
          );
        }
        if (result.refused === 'total_limit') {
          throw new SandboxError(
            ErrorCode.LimitExceeded,
            `This installation already has ${ctx.limits.maxTotal} sandboxes, the most allowed. Destroy one, or ask an operator to raise SANDBOX_MAX_TOTAL.`,
            { limit: ctx.limits.maxTotal, scope: 'total' },
          );
        }
        throw new SandboxError(ErrorCode.GuildMapped, `Guild ${result.guildId} is already registered to sandbox ${result.mappedTo}.`, { guildId: result.guildId });
      }
      return { id, schemaName: result.schemaName, name, owner: args.owner, createdAt: result.at, expiresAt, server: result.server };
    } catch (err) {
      if (isUniqueViolation(err, 'uq_sandboxes_live_name')) {
        if (args.name === undefined && attempt < 5) continue;
        throw new SandboxError(ErrorCode.NameExists, `A sandbox named ${name} already exists. Pick another name.`, { name });
      }
      if (isUniqueViolation(err, 'sandboxes_schema_name_key') || isUniqueViolation(err, 'sandboxes_pkey')) {
        ctx.log.warn({ sandboxId: id, attempt }, 'sandbox id or schema name collision; retrying with a new id');
        await ctx.store.audit(ctx.store.prisma, null, 'schema_name_collision', args.actor, { sandboxId: id, attempt }).catch(() => undefined);
        if (attempt < 5) continue;
        throw new SandboxError(ErrorCode.SchemaFailed, 'Could not allocate a unique schema name.', {}, { cause: err });
      }
      throw err;
    }
  }
}

/** ensure() on each external resource; a best-effort one may fail softly (the sweeper re-ensures it). */
async function ensureExternal(ctx: LifecycleContext, id: string, ensured: ExternalResource[], log: Logger): Promise<void> {
  for (const r of ctx.resources) {
    try {
      await r.ensure(id);
      ensured.push(r);
    } catch (err) {
      if (!r.bestEffort) throw err;
      log.warn({ kind: r.kind, err }, 'best-effort resource could not be created; the sweeper will retry');
    }
  }
}

/** What the provisioning transaction builds the schema from: the template, or (clone) a source sandbox's schema. */
export type SchemaSource = { kind: 'template'; empty: boolean } | { kind: 'clone'; sourceId: string; sourceName: string };

/** What create's first commit recorded. */
interface CreatingRow {
  id: string;
  schemaName: string;
  name: string;
  owner: string;
  createdAt: Date;
  expiresAt: Date;
  server: string;
}

/**
 * The schema, the guild mappings, the claims and creating → running commit together. On another
 * server than `default`, the schema and role are made in that server's transaction, committed
 * inside this one (see onServer) under the sandbox's key; a failure after it is compensated by
 * the teardown, which drops them on the recorded server.
 */
async function provision(ctx: LifecycleContext, row: CreatingRow, plan: GuildPlan, actor: Actor, skipMapped: boolean, source: SchemaSource): Promise<{ skipped: string[]; templateVersion: string | null }> {
  const { id, schemaName, server } = row;
  const local = server === DEFAULT_SERVER;
  // The role's SCRAM verifier is computed off the event loop while the schema DDL runs.
  const prepared = preparePostgresResources(ctx, id);
  return ctx.store.transaction(async (tx) => {
    // On default the build statement takes the key itself; elsewhere the key must be taken here, in the control database.
    if (!local && source.kind === 'template') await ctx.store.lockKey(tx, `sandbox:${id}`);
    const built = await onServer(ctx, server, tx, async (stx) => {
      const b =
        source.kind === 'template'
          ? await ctx.schemas.buildSchema(id, stx, { ...(local ? { advisoryKey: `sandbox:${id}` } : {}), empty: source.empty, template: ctx.template })
          : await cloneInto(ctx, tx, stx, id, source);
      if (b.schemaName !== schemaName) {
        throw new SandboxError(ErrorCode.SchemaFailed, 'The created schema does not match the recorded one.', { created: b.schemaName, recorded: schemaName });
      }
      await fault(ctx, 'create:after-schema', id);
      if (!local) {
        // On another server the role goes with the schema, in that server's transaction, committed
        // before the control side.
        await regrant(ctx, stx, id, prepared);
        await ctx.store.recordPlacement(stx, { id, name: row.name, owner: row.owner, schemaName, createdAt: row.createdAt, expiresAt: row.expiresAt, server });
      }
      return b;
    });
    const templateVersion = built.templateVersion;
    const details = source.kind === 'clone' ? { schemaName, templateVersion, clonedFrom: source.sourceId } : { schemaName, templateVersion, ...(source.empty ? { empty: true } : {}) };
    const audits: AuditEntry[] = [{ sandboxId: id, eventType: source.kind === 'clone' ? 'schema_cloned' : 'schema_created', actor, details: local ? details : { ...details, server } }];
    for (const r of ctx.postgresResources) audits.push({ sandboxId: id, eventType: `${r.kind}_created`, actor, details: {} });
    for (const guildId of plan.claim) await claimGuild(ctx, tx, id, guildId, actor);
    await fault(ctx, 'create:before-running', id);
    // ONE statement: the mappings, creating → running (schema_created, role_created and guild_registered
    // audited before status_changed), and last the role (isolation on): made for a new schema, or
    // re-granted on a clone's copied objects. (On another server it was made there.)
    const { mapped } = await ctx.store.completeCreate(tx, { id, guildIds: plan.map, actor, templateVersion, before: audits, last: local ? await createExpressions(ctx, id, prepared) : [] });
    const skipped = plan.map.filter((g) => !mapped.includes(g));
    if (skipped.length && !skipMapped) await throwGuildMapped(ctx, tx, skipped[0]!);
    return { skipped, templateVersion };
  });
}

/**
 * Clone: under the new sandbox's key and then the source's (a fresh id first, so no cycle with a
 * destroy of the source, which takes only its own), taken in the control transaction `tx`, the
 * source must be running or expired; its schema is copied as it is now (structure, rows,
 * sequences) in `stx` (its server's transaction) and its template version recorded.
 */
async function cloneInto(ctx: LifecycleContext, tx: Tx, stx: Tx, id: string, source: { sourceId: string; sourceName: string }): Promise<{ schemaName: string; templateVersion: string | null }> {
  const row = await ctx.store.lockSandboxKeyAndRow(tx, source.sourceId, { firstKey: `sandbox:${id}` });
  assertUsable(row, source.sourceName, 'cloned');
  // `stx` is a transaction on the source's server, where the new sandbox was placed.
  const { schemaName } = await ctx.schemas.cloneSchema(source.sourceId, id, stx);
  await fault(ctx, 'clone:after-schema', id);
  return { schemaName, templateVersion: row.templateVersion };
}

/**
 * After a failed create: the external resources this create ensured are removed, creating →
 * failed (audited with the reason), then torn down. Audit rows are kept. Returns 'running' if
 * the create had in fact committed.
 */
async function compensateCreate(ctx: LifecycleContext, id: string, actor: Actor, err: unknown, ensured: ExternalResource[], log: Logger): Promise<'compensated' | 'running' | 'left-for-sweeper'> {
  const error = toSandboxError(err);
  log.warn({ err, code: error.code }, 'sandbox creation failed; compensating');
  try {
    const status = await ctx.store.findStatus(id);
    if (!status) return 'compensated';
    if (status === 'running') return 'running';
    for (const r of ensured) await r.remove(id);
    if (status === 'pending' || status === 'creating') {
      await ctx.store.transaction(async (tx) => {
        await ctx.store.changeStatus(tx, id, status, 'failed', actor, { reason: 'creation_failed' });
        await ctx.store.audit(tx, id, 'creation_failed', actor, { code: error.code, message: error.message });
      });
    }
    // Our schema transaction rolled back, so any schema of that name is not ours: never drop it here.
    await tearDown(ctx, id, actor, { keepSchema: error.details.collision === true });
    return 'compensated';
  } catch (compErr) {
    log.error({ err: compErr }, 'compensation did not finish; the sweeper will reconcile this sandbox');
    return 'left-for-sweeper';
  }
}
