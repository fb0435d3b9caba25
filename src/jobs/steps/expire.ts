import type { StepContext } from './context.ts';

/** running past expires_at → expired, through the one transition function (a batch, SKIP LOCKED). */
export async function expireDue(ctx: StepContext): Promise<void> {
  const ids = await ctx.queries.expireDue(ctx.now, ctx.settings.batchSize, ctx.actor);
  ctx.summary.counts.expired += ids.length;
  if (ids.length) ctx.log.info({ sandboxIds: ids }, 'sandboxes expired');
}

/**
 * expired past expires_at + grace → destroyed (one teardown transaction, or via `destroying` when
 * external resources exist). Only an `expired` row is torn down, so an extend in between wins.
 */
export async function destroyPastGrace(ctx: StepContext): Promise<void> {
  const cutoff = new Date(ctx.now.getTime() - ctx.settings.graceMs);
  for (const id of await ctx.queries.expiredPastGrace(cutoff, ctx.settings.batchSize)) {
    await ctx.item('destroyed', id, () => ctx.timedTeardown(() => ctx.manager.tearDown(id, ctx.actor, { reason: 'grace_elapsed', onlyFrom: ['expired'] })));
  }
}
