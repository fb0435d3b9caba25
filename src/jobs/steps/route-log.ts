import type { StepContext } from './context.ts';

/** How long the route change log keeps a change: far longer than any route table needs to read it. */
export const ROUTE_LOG_KEEP_SECONDS = 3600;

/** Prunes the route change log (sandbox_route_change), which every mapping change appends to. */
export async function pruneRouteChanges(ctx: StepContext): Promise<void> {
  const n = await ctx.manager.store.pruneRouteChanges(ROUTE_LOG_KEEP_SECONDS);
  ctx.summary.counts.route_changes_pruned += n;
  if (n) ctx.log.debug({ pruned: n }, 'route change log pruned');
}
