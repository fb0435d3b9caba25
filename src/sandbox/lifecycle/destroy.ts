import { performance } from 'node:perf_hooks';
import { ErrorCode, SandboxError, toSandboxError } from '../errors.ts';
import type { TeardownArgs, Tx } from '../store/store.ts';
import { actorLabel, type Actor, type Sandbox, type SandboxStatus } from '../types.ts';
import { HOUR, fault, guard, routesChanged, type LifecycleContext } from './context.ts';
import { getById, resolveFor } from './lookups.ts';
import { dropExpressions } from './postgres-resources.ts';
import { onServer } from './on-server.ts';
import { DEFAULT_SERVER } from '../servers.ts';

/** Backoff for failed teardowns: 30 s, 1 min, 2 min, ... capped at 1 h. */
export const destroyBackoffMs = (attempts: number): number => Math.min(30_000 * 2 ** Math.max(0, attempts - 1), HOUR);

export interface TeardownOptions {
  /** Audit reason on the status change. */
  reason?: string;
  /** Only tear down a row in one of these statuses; otherwise SANDBOX_010 (someone else won, e.g. an extend). */
  onlyFrom?: SandboxStatus[];
  /** Leave the schema alone (compensation after a collision: that schema is not ours). */
  keepSchema?: boolean;
  /** The status the caller just read, to spare a read (the teardown transaction re-checks it under the row lock). */
  knownStatus?: SandboxStatus;
  /** The time to record as destroyed_at (default now). */
  at?: Date;
}

/** Idempotent: destroying a destroyed sandbox returns it unchanged. */
export const destroy = (ctx: LifecycleContext, ref: string, actor: Actor): Promise<Sandbox> =>
  guard(async () => {
    const started = performance.now();
    const sandbox = await resolveFor(ctx, ref, actor);
    if (sandbox.status === 'destroyed') return sandbox;
    if (sandbox.status === 'pending' || sandbox.status === 'creating') {
      throw new SandboxError(ErrorCode.InvalidTransition, `${sandbox.name} is still being created; try again in a moment.`, { status: sandbox.status });
    }
    try {
      const at = ctx.clock();
      const didIt = await tearDown(ctx, sandbox.id, actor, { reason: 'destroy_requested', knownStatus: sandbox.status, at });
      ctx.observer.destroyed?.('success', (performance.now() - started) / 1000);
      ctx.log.info({ sandboxId: sandbox.id, actor: actorLabel(actor), ms: Math.round(performance.now() - started) }, 'sandbox destroyed');
      // One-phase teardowns wrote exactly this; after two phases, read it back.
      return ctx.resources.length || !didIt ? (await getById(ctx, sandbox.id))! : { ...sandbox, status: 'destroyed', destroyedAt: at, guildIds: [] };
    } catch (err) {
      ctx.observer.destroyed?.('failure', (performance.now() - started) / 1000);
      throw toSandboxError(err);
    }
  });

/**
 * The one teardown, for destroy, compensation and every sweeper step. Returns false when
 * there was nothing to do (already destroyed, e.g. by a concurrent sweeper).
 * - No ExternalResource configured (or a `failed` row, whose external resources are removed
 *   first so that it never re-enters the owner count): ONE transaction unmaps, drops claims and
 *   the schema, and moves straight to `destroyed`.
 * - Otherwise two phases: that transaction moves to `destroying`; then remove() on each external
 *   resource; then `destroying → destroyed`.
 * On failure the row is left (or parked) in `destroying` (a `failed` row stays `failed`) with a
 * backoff for the sweeper, and SANDBOX_006 is thrown: a failed teardown is never left silently.
 */
export async function tearDown(ctx: LifecycleContext, id: string, actor: Actor, opts: TeardownOptions = {}): Promise<boolean> {
  try {
    const status = opts.knownStatus ?? (await ctx.store.findStatus(id));
    if (!status || status === 'destroyed') return false;
    if (status === 'destroying' || status === 'failed') await removeExternal(ctx, id);
    const twoPhase = ctx.resources.length > 0 && (status === 'running' || status === 'expired');
    const reached = await teardownTransaction(ctx, id, actor, twoPhase ? 'destroying' : 'destroyed', opts);
    if (reached === 'already-destroyed') return false;
    if (reached !== 'destroying') return true;
    await fault(ctx, 'destroy:after-destroying', id);
    await removeExternal(ctx, id);
    // Someone else (a sweeper whose lease had run out) finished it first: not ours to count.
    return (await teardownTransaction(ctx, id, actor, 'destroyed', opts)) !== 'already-destroyed';
  } catch (err) {
    if (err instanceof SandboxError && (err.code === ErrorCode.InvalidTransition || err.code === ErrorCode.Conflict)) throw err;
    // Its database server is down: this attempt's transactions rolled back. Said as such (SANDBOX_011
    // naming the server); the row stays as it was (running, or destroying with its lease) for a later retry.
    if (err instanceof SandboxError && err.code === ErrorCode.Unavailable && err.details.server !== undefined) throw err;
    await recordTeardownFailure(ctx, id, actor, err);
    throw new SandboxError(ErrorCode.CleanupFailed, 'Cleanup failed; it will be retried automatically.', { id }, { cause: err });
  }
}

/** remove() on every external resource; idempotent, so a retry repeats it safely. */
async function removeExternal(ctx: LifecycleContext, id: string): Promise<void> {
  for (const r of ctx.resources) await r.remove(id);
}

/** Unmaps guilds, drops claims and the schema (each audited), and moves the row to `to`, in one transaction. */
async function teardownTransaction(ctx: LifecycleContext, id: string, actor: Actor, to: 'destroying' | 'destroyed', opts: TeardownOptions): Promise<SandboxStatus | 'already-destroyed'> {
  let unmapped = false;
  const reached = await ctx.store.transaction(async (tx: Tx) => {
    const row = await ctx.store.lockSandboxKeyAndRow(tx, id);
    if (!row || row.status === 'destroyed') return 'already-destroyed' as const;
    if (opts.onlyFrom && !opts.onlyFrom.includes(row.status) && row.status !== 'destroying') {
      throw new SandboxError(ErrorCode.Conflict, 'The sandbox was changed at the same time.', { id, status: row.status });
    }
    if (row.status === 'pending' || row.status === 'creating') {
      throw new SandboxError(ErrorCode.InvalidTransition, `Cannot destroy a ${row.status} sandbox.`, { status: row.status });
    }
    const secondPhase = row.status === 'destroying';
    const details = !secondPhase && opts.reason ? { reason: opts.reason } : {};
    const extras = {
      // A destroy in progress holds a lease: the sweeper's retry step leaves the row alone until it passes.
      ...(to === 'destroyed' ? { destroyAttempts: 0, nextAttemptAt: null } : { nextAttemptAt: new Date(ctx.clock().getTime() + ctx.limits.destroyLeaseMs) }),
      ...(opts.at ? { at: opts.at } : {}),
    };
    // ONE statement: the role and schema dropped, guilds unmapped and unclaimed, each audited, and the
    // status change (none when the row is already in `to`: a repeated first phase).
    const released = await releaseAndDrop(ctx, tx, id, row, actor, opts.keepSchema ?? false, {
      schemaAudit: secondPhase ? 'if-dropped' : 'always',
      ...(row.status === to ? {} : { change: { from: row.status, to, details, extras } }),
    });
    unmapped = released.mapped.length > 0;
    await fault(ctx, 'destroy:after-drop', id);
    return to;
  });
  if (unmapped) await routesChanged(ctx);
  return reached;
}

/**
 * Unmaps and unclaims the sandbox's guilds and drops its role and schema (unless `keepSchema`: after a
 * collision neither is ours), with their audit rows and the status change (see tearDownSandbox). On
 * `default` in one statement of the teardown transaction, the role first (its sessions end, so the
 * schema drop does not wait on their locks). On another server the role and schema go in that
 * server's transaction, committed before the control side.
 */
async function releaseAndDrop(
  ctx: LifecycleContext,
  tx: Tx,
  id: string,
  row: { server: string; schemaName: string },
  actor: Actor,
  keepSchema: boolean,
  rest: Pick<TeardownArgs, 'schemaAudit' | 'change'>,
): Promise<{ mapped: string[] }> {
  const common = { id, actor, schemaName: row.schemaName, ...rest };
  if (row.server === DEFAULT_SERVER) {
    return ctx.store.tearDownSandbox(tx, { ...common, schema: keepSchema ? 'keep' : 'drop', dropFirst: keepSchema ? [] : dropExpressions(ctx, id) });
  }
  const remote = keepSchema
    ? { dropped: false, kinds: [] as string[] }
    : await onServer(ctx, row.server, tx, async (stx) => {
        const kinds: string[] = [];
        for (const r of ctx.postgresResources) if (await r.drop(stx, id)) kinds.push(r.kind);
        await ctx.store.removePlacement(stx, id);
        return { dropped: await ctx.schemas.dropSchema(id, stx), kinds };
      });
  return ctx.store.tearDownSandbox(tx, { ...common, schema: { droppedElsewhere: remote.dropped }, alsoDropped: remote.kinds });
}

async function recordTeardownFailure(ctx: LifecycleContext, id: string, actor: Actor, err: unknown): Promise<void> {
  ctx.observer.teardownFailed?.();
  try {
    await ctx.store.transaction(async (tx) => {
      // The teardown rolled back, so a running/expired row is still as it was: park it in `destroying`
      // so the sweeper retries it with backoff (a failed row stays `failed`, out of the owner count).
      const row = await ctx.store.lockSandboxRow(tx, id);
      if (row && (row.status === 'running' || row.status === 'expired')) {
        await ctx.store.changeStatus(tx, id, row.status, 'destroying', actor, { reason: 'teardown_failed' });
      }
      const attempts = await ctx.store.recordTeardownFailure(tx, id, destroyBackoffMs);
      await ctx.store.audit(tx, id, 'destroy_failed', actor, { attempts, error: (err as Error)?.message ?? String(err) });
    });
  } catch (recordErr) {
    ctx.log.error({ sandboxId: id, err: recordErr }, 'could not record the destroy failure');
  }
  ctx.log.error({ sandboxId: id, actor: actorLabel(actor), err }, 'destroy failed; left for the sweeper to retry with backoff');
}
