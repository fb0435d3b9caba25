import { onServer, withServer } from '../../sandbox/lifecycle/on-server.ts';
import { DEFAULT_SERVER } from '../../sandbox/servers.ts';
import type { StepContext } from './context.ts';

/**
 * running/expired sandboxes whose schema is gone become `failed` with a `schema_missing` audit
 * row and are reported. They are never recreated empty: the data is lost, and pretending
 * otherwise would hide it. The next pass tears the failed row down. One slice per pass and server
 * (each server's sandboxes are checked against that server's catalog; servers that are down are skipped).
 */
export async function markMissingSchemas(ctx: StepContext): Promise<void> {
  const { missing, next } = await ctx.queries.missingSchemas(ctx.cursors.missingSchemas, ctx.settings.driftSlice);
  ctx.cursors.missingSchemas = next;
  await markMissing(ctx, DEFAULT_SERVER, missing);
  const lctx = ctx.manager.context;
  for (const server of await ctx.remoteServers()) {
    const cursor = (ctx.cursors.servers[server] ??= { missingSchemas: null, orphanSchemas: null });
    const slice = await ctx.queries.liveSlice(server, cursor.missingSchemas, ctx.settings.driftSlice);
    cursor.missingSchemas = slice.next;
    const present = await withServer(lctx, server, (db) => ctx.manager.provisioner.existingSchemas(db, slice.rows.map((r) => r.schema_name)));
    await markMissing(ctx, server, slice.rows.filter((r) => !present.has(r.schema_name)));
  }
}

/** Marks each row failed (audited) unless its schema turned up on its server meanwhile, under the sandbox's key. */
async function markMissing(ctx: StepContext, server: string, missing: Awaited<ReturnType<StepContext['queries']['liveSlice']>>['rows']): Promise<void> {
  const store = ctx.manager.store;
  for (const row of missing) {
    await ctx.item('schema_missing', row.id, async () => {
      const marked = await store.transaction(async (tx) => {
        await store.lockKey(tx, `sandbox:${row.id}`);
        // On its server: the control transaction on `default`, that server's own elsewhere.
        const exists = await onServer(ctx.manager.context, server, tx, (stx) => ctx.manager.provisioner.schemaExists(row.id, stx));
        if (exists) return false;
        await store.changeStatus(tx, row.id, row.status, 'failed', ctx.actor, { reason: 'schema_missing' });
        await store.audit(tx, row.id, 'schema_missing', ctx.actor, { schemaName: row.schema_name, previousStatus: row.status });
        return true;
      });
      if (!marked) return 'skipped';
      ctx.summary.schemaMissing.push({ sandboxId: row.id, name: row.name, schemaName: row.schema_name });
      ctx.log.error({ sandboxId: row.id, schemaName: row.schema_name }, 'sandbox schema is missing; marked failed (not recreated)');
      return 'done';
    });
  }
}

/**
 * Running sandboxes missing an external resource (a best-effort one that failed at create, or
 * one lost on its server) get it again: ensure() is idempotent. One slice per pass.
 */
export async function ensureMissingExternal(ctx: StepContext): Promise<void> {
  const resources = ctx.manager.resources.filter((r) => !r.nothingToEnsure);
  if (!resources.length) return;
  const { ids, next } = await ctx.queries.runningSlice(ctx.cursors.external, ctx.settings.driftSlice);
  ctx.cursors.external = next;
  if (!ids.length) return;
  for (const r of resources) {
    // One lookup per id of the slice (a stream's info, an ACL GETUSER), not a listing of every one on
    // the server: the pass costs the same with 50 sandboxes as with 50,000.
    for (const id of ids) {
      if (await r.exists(id)) continue;
      await ctx.item('external_ensured', id, async () => {
        await r.ensure(id);
        ctx.log.warn({ sandboxId: id, kind: r.kind }, 'missing external resource ensured');
        return 'done';
      });
    }
  }
}
