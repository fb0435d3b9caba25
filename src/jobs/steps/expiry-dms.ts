import { ErrorCode, SandboxError } from '../../sandbox/errors.ts';
import type { Sandbox } from '../../sandbox/types.ts';
import type { Outcome, StepContext } from './context.ts';

/** Tells an owner that a sandbox expires soon. The bot implements it with a DM. */
export interface ExpiryNotifier {
  notifyExpiring(sandbox: Sandbox): Promise<void>;
}

/**
 * Warns owners of running sandboxes expiring within warnBeforeMs. The mark (expiry_notified_at)
 * is one compare-and-set statement, so two sweepers never DM twice; the DM is sent afterwards,
 * outside any transaction. At most once (see notifyOne).
 */
export async function sendExpiryDms(ctx: StepContext, notifier: ExpiryNotifier): Promise<void> {
  const horizon = new Date(ctx.now.getTime() + ctx.settings.warnBeforeMs);
  const marked = await ctx.queries.markExpiryNoticesDue(ctx.now, horizon, ctx.settings.batchSize);
  if (!marked.length) return;
  for (const sandbox of await ctx.manager.store.findSandboxesByIds(marked)) {
    await ctx.item('notified', sandbox.id, () => notifyOne(ctx, notifier, sandbox));
  }
}

/**
 * A failed DM is not retried: expiry_notified_at stays set. Almost every DM failure is
 * permanent (DMs closed, no shared guild, bot blocked) and discord.js already retries 5xx and
 * rate limits. The failure is audited (expiry_notice_failed), logged and counted; an extend
 * clears the mark, so the next expiry is warned again.
 */
async function notifyOne(ctx: StepContext, notifier: ExpiryNotifier, sandbox: Sandbox): Promise<Outcome> {
  const store = ctx.manager.store;
  try {
    await notifier.notifyExpiring(sandbox);
  } catch (err) {
    await store
      .audit(store.prisma, sandbox.id, 'expiry_notice_failed', ctx.actor, { owner: sandbox.owner, error: (err as Error)?.message ?? String(err) })
      .catch((auditErr: unknown) => ctx.log.error({ sandboxId: sandbox.id, err: auditErr }, 'could not audit the failed expiry notice'));
    throw new SandboxError(ErrorCode.Unavailable, `Could not DM the owner: ${(err as Error)?.message ?? String(err)}`, { owner: sandbox.owner }, { cause: err });
  }
  await store.audit(store.prisma, sandbox.id, 'expiry_notice_sent', ctx.actor, { owner: sandbox.owner, expiresAt: sandbox.expiresAt.toISOString() });
  return 'done';
}
