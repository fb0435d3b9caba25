import type { StepContext } from './context.ts';

/** Retries join checks that a transient Discord error deferred (the bot supplies the check). */
export type ClaimRechecks = () => Promise<number>;

/** Guild claims past CLAIM_TTL_HOURS: deleted, each audited `guild_claim_expired`, in one statement. */
export async function expireClaims(ctx: StepContext): Promise<void> {
  ctx.summary.counts.claim_expired += await ctx.manager.store.deleteExpiredClaims(ctx.now, ctx.settings.batchSize, ctx.actor);
}

/** Deferred join checks, retried a bounded number of times (then the claim lapses with its TTL). */
export async function recheckDeferredClaims(ctx: StepContext, rechecks: ClaimRechecks): Promise<void> {
  ctx.summary.counts.claim_rechecked += await rechecks();
}
