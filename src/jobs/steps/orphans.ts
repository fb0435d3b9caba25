import { ErrorCode } from '../../sandbox/errors.ts';
import { onServer, withServer } from '../../sandbox/lifecycle/on-server.ts';
import { schemaToId } from '../../sandbox/store/schemas.ts';
import type { StepContext } from './context.ts';

/**
 * Schemas matching the sandbox pattern exactly, with no live row (one slice per pass and server). Each drop is
 * audited (no sandbox id). On the control database: no live row here. On another server (whose database
 * another install might share): only a schema whose sandbox has a row here, placed on that server and
 * destroyed; an id with no row here is reported, never touched. Servers that are down are skipped.
 */
export async function dropOrphanSchemas(ctx: StepContext): Promise<void> {
  await dropControlOrphans(ctx);
  for (const server of await ctx.remoteServers()) await dropServerOrphans(ctx, server);
}

async function dropControlOrphans(ctx: StepContext): Promise<void> {
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

async function dropServerOrphans(ctx: StepContext, server: string): Promise<void> {
  const store = ctx.manager.store;
  const lctx = ctx.manager.context;
  const cursor = (ctx.cursors.servers[server] ??= { missingSchemas: null, orphanSchemas: null });
  const slice = await withServer(lctx, server, (db) => ctx.manager.provisioner.schemaSlice(db, cursor.orphanSchemas, ctx.settings.driftSlice));
  cursor.orphanSchemas = slice.next;
  const placements = await ctx.queries.placementsOf(slice.schemas.map(schemaToId));
  for (const schemaName of slice.schemas) {
    const id = schemaToId(schemaName);
    const placed = placements.get(id);
    if (!placed || placed.server !== server) {
      ctx.summary.externalUnknown.push({ kind: `schema@${server}`, sandboxId: id });
      ctx.log.warn({ sandboxId: id, server }, 'sandbox schema with no row placed on its server in this control database; left alone');
      continue;
    }
    if (placed.status !== 'destroyed') continue;
    try {
      // Under the sandbox's key, with its row re-read: a schema is dropped only while its row stays destroyed.
      const dropped = await store.transaction(async (tx) => {
        const row = await store.lockSandboxKeyAndRow(tx, id);
        if (!row || row.status !== 'destroyed' || row.server !== server) return false;
        const gone = await onServer(lctx, server, tx, async (stx) => {
          await store.removePlacement(stx, id);
          return ctx.manager.provisioner.dropSchema(id, stx);
        });
        if (!gone) return false;
        await store.audit(tx, null, 'orphan_schema_dropped', ctx.actor, { schemaName, server });
        return true;
      });
      if (!dropped) continue;
      ctx.summary.counts.orphan_dropped++;
      ctx.summary.orphansDropped.push(`${server}:${schemaName}`);
      ctx.log.warn({ schemaName, server }, 'orphaned schema dropped');
    } catch (err) {
      ctx.summary.failures.push({ action: 'orphan_dropped', schemaName, code: ErrorCode.CleanupFailed, message: ((err as Error).message ?? String(err)).slice(0, 300) });
    }
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
