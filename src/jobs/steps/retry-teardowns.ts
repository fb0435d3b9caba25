import type { StepContext } from './context.ts';

/**
 * destroying rows whose backoff has passed (or that never failed: a crash between the two
 * teardown phases), leased in one statement so two sweepers do not retry the same row; the
 * teardown then finishes them or sets the next backoff.
 */
export async function retryTeardowns(ctx: StepContext): Promise<void> {
  const lease = new Date(ctx.now.getTime() + ctx.settings.stuckAfterMs);
  for (const id of await ctx.queries.leaseDestroyRetries(ctx.now, lease, ctx.settings.batchSize)) {
    await ctx.item('destroy_retried', id, () => ctx.timedTeardown(() => ctx.manager.tearDown(id, ctx.actor)));
  }
}

/** failed rows past their backoff → destroyed: schema dropped, mappings, claims and external resources removed. */
export async function cleanFailed(ctx: StepContext): Promise<void> {
  for (const id of await ctx.queries.failedDue(ctx.now, ctx.settings.batchSize)) {
    await ctx.item('failed_cleaned', id, () => ctx.timedTeardown(() => ctx.manager.tearDown(id, ctx.actor)));
  }
}
