import { onServer, withServer } from '../../sandbox/lifecycle/on-server.ts';
import { DEFAULT_SERVER } from '../../sandbox/servers.ts';
import type { StepContext } from './context.ts';

const cursorOf = (ctx: StepContext, kind: string, server: string): { missing: string | null; orphans: string | null } =>
  (ctx.cursors.postgres[server === DEFAULT_SERVER ? kind : `${kind}@${server}`] ??= { missing: null, orphans: null });

/** The control server, then the other servers that answer this pass: roles are per server (cluster-wide there). */
const serversToCheck = async (ctx: StepContext): Promise<string[]> => [DEFAULT_SERVER, ...(await ctx.remoteServers())];

/**
 * Live (running/expired) sandboxes whose role is gone (dropped by hand, a restored cluster) get it
 * back, with its grants, on the sandbox's server, under the sandbox's lock and only while its schema
 * exists (a missing schema is the schema-missing step's business). One slice per pass and server; audited.
 */
export async function recreateMissingPostgresResources(ctx: StepContext): Promise<void> {
  const store = ctx.manager.store;
  const lctx = ctx.manager.context;
  for (const server of ctx.manager.postgresResources.length ? await serversToCheck(ctx) : []) {
    for (const r of ctx.manager.postgresResources) {
      const cursor = cursorOf(ctx, r.kind, server);
      const { ids, next } = await store.liveSandboxIds(cursor.missing, ctx.settings.driftSlice, server);
      cursor.missing = next;
      for (const id of await withServer(lctx, server, (db) => r.missingAmong(db, ids))) {
        await ctx.item('postgres_recreated', id, async () => {
          const made = await store.transaction(async (tx) => {
            const row = await store.lockSandboxKeyAndRow(tx, id);
            if (!row || (row.status !== 'running' && row.status !== 'expired') || row.server !== server) return false;
            const done = await onServer(lctx, server, tx, async (stx) => {
              if (!(await ctx.manager.provisioner.schemaExists(id, stx))) return false;
              await r.create(stx, id);
              return true;
            });
            if (done) await store.audit(tx, id, 'postgres_resource_recreated', ctx.actor, { kind: r.kind, ...(server === DEFAULT_SERVER ? {} : { server }) });
            return done;
          });
          if (made) ctx.log.warn({ sandboxId: id, kind: r.kind, server }, 'missing sandbox role recreated');
          return made ? 'done' : 'skipped';
        });
      }
    }
  }
}

/**
 * Roles are cluster-wide: other control databases (installs, test files) share each server. One of
 * the exact pattern is dropped only when THIS database's row for its id is destroyed or failed and
 * placed on that server, under that sandbox's lock with the row re-read; an id with no row here is
 * reported, never touched. One slice of each server's roles per pass.
 */
export async function dropOrphanPostgresResources(ctx: StepContext): Promise<void> {
  const store = ctx.manager.store;
  const lctx = ctx.manager.context;
  for (const server of ctx.manager.postgresResources.length ? await serversToCheck(ctx) : []) {
    for (const r of ctx.manager.postgresResources) {
      const cursor = cursorOf(ctx, r.kind, server);
      if (r.dropOrphanGroups && cursor.orphans === null) {
        // Once per lap of the slices: what a dropped control database left behind (its roles' group).
        const gone = await withServer(lctx, server, (db) => r.dropOrphanGroups!(db));
        if (gone.length) {
          ctx.summary.counts.postgres_orphan_dropped += gone.length;
          ctx.log.warn({ kind: r.kind, server, names: gone }, 'group roles of dropped databases removed');
        }
      }
      const { ids, next } = await withServer(lctx, server, (db) => r.listSlice(db, cursor.orphans, ctx.settings.driftSlice));
      cursor.orphans = next;
      const placements = await ctx.queries.placementsOf(ids);
      for (const id of ids) {
        const placed = placements.get(id);
        if (placed === undefined) {
          ctx.summary.externalUnknown.push({ kind: server === DEFAULT_SERVER ? r.kind : `${r.kind}@${server}`, sandboxId: id });
          ctx.log.warn({ sandboxId: id, kind: r.kind, server }, 'sandbox role with no row in this control database; left alone');
          continue;
        }
        if ((placed.status !== 'destroyed' && placed.status !== 'failed') || placed.server !== server) continue;
        await ctx.item('postgres_orphan_dropped', id, async () => {
          const dropped = await store.transaction(async (tx) => {
            const row = await store.lockSandboxKeyAndRow(tx, id);
            if (!row || (row.status !== 'destroyed' && row.status !== 'failed') || row.server !== server) return false;
            if (!(await onServer(lctx, server, tx, (stx) => r.drop(stx, id)))) return false;
            await store.audit(tx, id, 'postgres_orphan_dropped', ctx.actor, { kind: r.kind, status: row.status, ...(server === DEFAULT_SERVER ? {} : { server }) });
            return true;
          });
          return dropped ? 'done' : 'skipped';
        });
      }
    }
  }
}
