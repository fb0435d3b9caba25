import { actorLabel, type Actor, type Sandbox } from '../types.ts';
import { assertUsable, guard, type LifecycleContext } from './context.ts';
import { getById, resolveFor } from './lookups.ts';
import { onServer } from './on-server.ts';
import { regrant } from './postgres-resources.ts';

/**
 * `upgrade <sandbox>`: applies the template files recorded after the sandbox's template version to
 * its schema (data kept), in one transaction with template_version and the `template_upgraded`
 * audit row. A sandbox built before templates (no version) holds the initial template. Up to date:
 * nothing is written. A version not in the template's history is an error (reset instead).
 */
export const upgrade = (ctx: LifecycleContext, ref: string, actor: Actor): Promise<{ sandbox: Sandbox; applied: string[] }> =>
  guard(async () => {
    const target = await resolveFor(ctx, ref, actor);
    const applied = await ctx.store.transaction(async (tx) => {
      const row = await ctx.store.lockSandboxKeyAndRow(tx, target.id);
      assertUsable(row, target.name, 'upgraded');
      const from = row.templateVersion ?? 'initial';
      // On its server (see onServer): the template files and the re-grant there, the version and audit here.
      const r = await onServer(ctx, row.server, tx, async (stx) => {
        const upgraded = await ctx.schemas.upgradeSchema(row.schemaName, from, stx, { template: ctx.template });
        if (upgraded.applied.length || upgraded.version !== row.templateVersion) await regrant(ctx, stx, target.id);
        return upgraded;
      });
      if (r.applied.length === 0 && r.version === row.templateVersion) return [];
      await ctx.store.setTemplateVersion(tx, target.id, r.version);
      await ctx.store.audit(tx, target.id, 'template_upgraded', actor, { from, to: r.version, applied: r.applied });
      return r.applied;
    });
    if (applied.length) ctx.log.info({ sandboxId: target.id, actor: actorLabel(actor), applied }, 'sandbox upgraded');
    return { sandbox: (await getById(ctx, target.id))!, applied };
  });
