import type { StepContext } from './context.ts';

const cursorOf = (ctx: StepContext, kind: string): { missing: string | null; orphans: string | null } =>
  (ctx.cursors.postgres[kind] ??= { missing: null, orphans: null });

/**
 * Live (running/expired) sandboxes whose role is gone (dropped by hand, a restored cluster) get it
 * back, with its grants, under the sandbox's lock and only while its schema exists (a missing
 * schema is the schema-missing step's business). One slice per pass; audited.
 */
export async function recreateMissingPostgresResources(ctx: StepContext): Promise<void> {
  const store = ctx.manager.store;
  for (const r of ctx.manager.postgresResources) {
    const cursor = cursorOf(ctx, r.kind);
    const { ids, next } = await store.liveSandboxIds(cursor.missing, ctx.settings.driftSlice);
    cursor.missing = next;
    for (const id of await r.missingAmong(store.prisma, ids)) {
      await ctx.item('postgres_recreated', id, async () => {
        const made = await store.transaction(async (tx) => {
          const row = await store.lockSandboxKeyAndRow(tx, id);
          if (!row || (row.status !== 'running' && row.status !== 'expired')) return false;
          if (!(await ctx.manager.provisioner.schemaExists(id, tx))) return false;
          await r.create(tx, id);
          await store.audit(tx, id, 'postgres_resource_recreated', ctx.actor, { kind: r.kind });
          return true;
        });
        if (made) ctx.log.warn({ sandboxId: id, kind: r.kind }, 'missing sandbox role recreated');
        return made ? 'done' : 'skipped';
      });
    }
  }
}

/**
 * Roles are cluster-wide: other control databases (installs, test files) share the server. One of
 * the exact pattern is dropped only when THIS database's row for its id is destroyed or failed, under
 * that sandbox's lock with the status re-read; an id with no row here is reported, never touched.
 * One slice of the server's roles per pass.
 */
export async function dropOrphanPostgresResources(ctx: StepContext): Promise<void> {
  const store = ctx.manager.store;
  for (const r of ctx.manager.postgresResources) {
    const cursor = cursorOf(ctx, r.kind);
    const { ids, next } = await r.listSlice(store.prisma, cursor.orphans, ctx.settings.driftSlice);
    cursor.orphans = next;
    const statuses = await ctx.queries.statusesOf(ids);
    for (const id of ids) {
      const status = statuses.get(id);
      if (status === undefined) {
        ctx.summary.externalUnknown.push({ kind: r.kind, sandboxId: id });
        ctx.log.warn({ sandboxId: id, kind: r.kind }, 'sandbox role with no row in this control database; left alone');
        continue;
      }
      if (status !== 'destroyed' && status !== 'failed') continue;
      await ctx.item('postgres_orphan_dropped', id, async () => {
        const dropped = await store.transaction(async (tx) => {
          const row = await store.lockSandboxKeyAndRow(tx, id);
          if (!row || (row.status !== 'destroyed' && row.status !== 'failed')) return false;
          if (!(await r.drop(tx, id))) return false;
          await store.audit(tx, id, 'postgres_orphan_dropped', ctx.actor, { kind: r.kind, status: row.status });
          return true;
        });
        return dropped ? 'done' : 'skipped';
      });
    }
  }
}
