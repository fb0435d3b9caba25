import { performance } from 'node:perf_hooks';
import { actorLabel, type Actor, type Sandbox } from '../types.ts';
import { assertUsable, fault, guard, type LifecycleContext } from './context.ts';
import { getById, resolveFor } from './lookups.ts';
import { onServer } from './on-server.ts';
import { regrant } from './postgres-resources.ts';

export interface ResetResult {
  sandbox: Sandbox;
  /** External resources whose purge failed after the commit (the schema WAS reset). */
  purgeFailed: string[];
}

/**
 * `reset <sandbox>`: puts the schema back to the template's current version (structure and seed),
 * owner or admin only, running or expired only. ONE transaction under the sandbox's key and row
 * lock: drop and rebuild, the role re-grant (regrant), template_version and the
 * `reset` audit row (on another server than `default` the rebuild and re-grant run in that server's
 * transaction, committed just before the control side: see onServer); other connections see the old schema or the new one, never half of it. After
 * the commit each external resource with a purge() is emptied (stream messages, Redis keys); a
 * purge failure is logged, audited and reported, never undoes the reset.
 */
export const reset = (ctx: LifecycleContext, ref: string, actor: Actor): Promise<ResetResult> =>
  guard(async () => {
    const started = performance.now();
    const target = await resolveFor(ctx, ref, actor);
    const log = ctx.log.child({ sandboxId: target.id, actor: actorLabel(actor) });
    const version = await ctx.store.transaction(async (tx) => {
      const row = await ctx.store.lockSandboxKeyAndRow(tx, target.id);
      assertUsable(row, target.name, 'reset');
      const { templateVersion } = await onServer(ctx, row.server, tx, async (stx) => {
        const rebuilt = await ctx.schemas.resetSchema(target.id, stx, { template: ctx.template });
        await fault(ctx, 'reset:after-rebuild', target.id);
        await regrant(ctx, stx, target.id);
        return rebuilt;
      });
      await ctx.store.setTemplateVersion(tx, target.id, templateVersion);
      await ctx.store.audit(tx, target.id, 'reset', actor, { previousTemplateVersion: row.templateVersion, templateVersion });
      return templateVersion;
    });
    const purgeFailed: string[] = [];
    for (const r of ctx.resources) {
      if (!r.purge) continue;
      try {
        await r.purge(target.id);
      } catch (err) {
        purgeFailed.push(r.kind);
        log.warn({ kind: r.kind, err }, 'purge after reset failed');
        await ctx.store.audit(ctx.store.prisma, target.id, 'purge_failed', actor, { kind: r.kind, message: (err as Error).message }).catch(() => undefined);
      }
    }
    log.info({ templateVersion: version, ms: Math.round(performance.now() - started) }, 'sandbox reset');
    return { sandbox: (await getById(ctx, target.id))!, purgeFailed };
  });
