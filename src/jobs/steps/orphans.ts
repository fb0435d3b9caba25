import { ErrorCode } from '../../sandbox/errors.ts';
import type { StepContext } from './context.ts';

/** Schemas matching the sandbox pattern exactly, with no live row (one slice per pass). Each drop is audited (no sandbox id). */
export async function dropOrphanSchemas(ctx: StepContext): Promise<void> {
  const store = ctx.manager.store;
  const result = await ctx.manager.provisioner.cleanupOrphanedSchemas({ after: ctx.cursors.orphanSchemas, limit: ctx.settings.driftSlice });
  ctx.cursors.orphanSchemas = result.next;
  for (const schemaName of result.dropped) {
    ctx.summary.counts.orphan_dropped++;
    ctx.summary.orphansDropped.push(schemaName);
    await store
      .audit(store.prisma, null, 'orphan_schema_dropped', ctx.actor, { schemaName })
      .catch((err: unknown) => ctx.log.error({ schemaName, err }, 'could not audit an orphan drop'));
  }
  for (const f of result.failed) {
    ctx.summary.failures.push({ action: 'orphan_dropped', schemaName: f.schema, code: ErrorCode.CleanupFailed, message: f.error.slice(0, 300) });
  }
}

/**
 * External resources are server-wide (other control databases share the server): one is removed
 * only when THIS database has a row for its id that is destroyed or failed. An id with no row is
 * reported (log and summary), never touched; live ones are left alone.
 */
export async function removeOrphanExternal(ctx: StepContext): Promise<void> {
  const store = ctx.manager.store;
  for (const r of ctx.manager.resources) {
    const ids = await r.list();
    const statuses = await ctx.queries.statusesOf(ids);
    for (const id of ids) {
      const status = statuses.get(id);
      if (status === undefined) {
        ctx.summary.externalUnknown.push({ kind: r.kind, sandboxId: id });
        ctx.log.warn({ sandboxId: id, kind: r.kind }, 'external resource with no row in this control database; left alone');
        continue;
      }
      if (status !== 'destroyed' && status !== 'failed') continue;
      await ctx.item('external_orphan_removed', id, async () => {
        await r.remove(id);
        await store.audit(store.prisma, id, 'external_orphan_removed', ctx.actor, { kind: r.kind, status });
        return 'done';
      });
    }
  }
}
