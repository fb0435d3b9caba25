import type { Actor, Sandbox } from '../types.ts';
import { validateExtendHours } from '../validation.ts';
import { HOUR, assertUsable, fault, guard, type LifecycleContext } from './context.ts';
import { getById, resolveFor } from './lookups.ts';

/** New expiry: min(max(expires_at, now) + hours, now + max TTL). Revives an expired sandbox. */
export const extendTtl = (ctx: LifecycleContext, ref: string, hours: number, actor: Actor): Promise<{ sandbox: Sandbox; notices: string[] }> =>
  guard(async () => {
    const h = validateExtendHours(hours, ctx.limits.maxTtlHours);
    const target = await resolveFor(ctx, ref, actor);
    const notices: string[] = [];
    await ctx.store.transaction(async (tx) => {
      const row = await ctx.store.lockSandboxRow(tx, target.id);
      assertUsable(row, target.name, 'extended');
      await fault(ctx, 'extend:before-update', target.id);
      const now = ctx.clock().getTime();
      const wanted = Math.max(row.expiresAt.getTime(), now) + h * HOUR;
      const ceiling = now + ctx.limits.maxTtlHours * HOUR;
      const expiresAt = new Date(Math.min(wanted, ceiling));
      if (wanted > ceiling) notices.push(`Expiry capped at ${ctx.limits.maxTtlHours} hours from now.`);
      if (row.status === 'expired') {
        await ctx.store.changeStatus(tx, target.id, 'expired', 'running', actor, { reason: 'extended' }, { expiresAt, expiryNotifiedAt: null });
      } else {
        await ctx.store.setRunningExpiry(tx, target.id, expiresAt);
      }
      await ctx.store.audit(tx, target.id, 'ttl_extended', actor, { hours: h, previousExpiresAt: row.expiresAt.toISOString(), expiresAt: expiresAt.toISOString(), capped: wanted > ceiling });
    });
    return { sandbox: (await getById(ctx, target.id))!, notices };
  });
