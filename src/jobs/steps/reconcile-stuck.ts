import type { StepContext } from './context.ts';

/** creating (or old pending) rows unchanged for stuckAfterMs → failed (audited), then torn down. */
export async function reconcileStuck(ctx: StepContext): Promise<void> {
  const cutoff = new Date(ctx.now.getTime() - ctx.settings.stuckAfterMs);
  for (const row of await ctx.queries.stuckCreates(cutoff, ctx.settings.batchSize)) {
    await ctx.item('stuck_reconciled', row.id, async () => {
      await ctx.manager.transition(row.id, row.status, 'failed', ctx.actor, {
        reason: `stuck_${row.status}`,
        since: row.status_changed_at.toISOString(),
        thresholdMs: ctx.settings.stuckAfterMs,
      });
      await ctx.timedTeardown(() => ctx.manager.tearDown(row.id, ctx.actor));
      return 'done';
    });
  }
}
