import { ErrorCode, SandboxError } from '../errors.ts';
import { actorLabel, type Actor } from '../types.ts';
import { guard, isAdmin, type LifecycleContext } from './context.ts';
import { regrant } from './postgres-resources.ts';
import { onServer } from './on-server.ts';

export interface RotateResult {
  /** Sandboxes whose role and external credentials now use the current secret. */
  rotated: number;
  /** Sandboxes left for a re-run (each with why). */
  failed: { sandboxId: string; error: string }[];
}

const SLICE = 200;

/**
 * After SANDBOX_CREDENTIAL_SECRET changed: every live (running/expired) sandbox's role is re-keyed
 * and re-granted under its lock, and its external resources re-ensured (the Redis ACL user's
 * ensure re-keys it). Each sandbox is audited (`credentials_rotated`); one failure never stops the
 * rest, and re-running it is safe. Admins (operators) only.
 */
export const rotateCredentials = (ctx: LifecycleContext, actor: Actor): Promise<RotateResult> =>
  guard(async () => {
    if (!isAdmin(ctx, actor)) throw new SandboxError(ErrorCode.Forbidden, 'Only admins may rotate sandbox credentials.');
    const result: RotateResult = { rotated: 0, failed: [] };
    const kinds = [...ctx.postgresResources.map((r) => r.kind), ...ctx.resources.map((r) => r.kind)];
    let after: string | null = null;
    do {
      const slice = await ctx.store.liveSandboxIds(after, SLICE);
      after = slice.next;
      for (const id of slice.ids) {
        try {
          const live = await ctx.store.transaction(async (tx) => {
            const row = await ctx.store.lockSandboxKeyAndRow(tx, id);
            if (!row || (row.status !== 'running' && row.status !== 'expired')) return false;
            await onServer(ctx, row.server, tx, (stx) => regrant(ctx, stx, id));
            await ctx.store.audit(tx, id, 'credentials_rotated', actor, { kinds });
            return true;
          });
          if (!live) continue;
          for (const r of ctx.resources) await r.ensure(id);
          result.rotated++;
        } catch (err) {
          result.failed.push({ sandboxId: id, error: (err as Error).message?.slice(0, 300) ?? String(err) });
          ctx.log.error({ sandboxId: id, err }, 'credential rotation failed for a sandbox');
        }
      }
    } while (after);
    await ctx.store.audit(ctx.store.prisma, null, 'credentials_rotation_finished', actor, { kinds, rotated: result.rotated, failed: result.failed.length });
    ctx.log.info({ actor: actorLabel(actor), rotated: result.rotated, failed: result.failed.length }, 'sandbox credentials rotated');
    return result;
  });
