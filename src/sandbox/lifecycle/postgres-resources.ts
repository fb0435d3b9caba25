import type { Tx } from '../store/store.ts';
import type { Prisma } from '../../generated/prisma/client.ts';
import type { PreparedCreate } from '../resources.ts';
import type { LifecycleContext } from './context.ts';

/**
 * The PostgreSQL-side objects of a sandbox beyond its schema (its role), made in the provisioning
 * transaction after the schema. Idempotent, so it is also the re-grant after a template reset or
 * clone re-creates the schema's tables, and the sweeper's repair of a missing role.
 */
export async function regrant(ctx: LifecycleContext, tx: Tx, id: string, prepared: (PreparedCreate | undefined)[] = []): Promise<void> {
  for (const [i, r] of ctx.postgresResources.entries()) await r.create(tx, id, prepared[i]);
}

/** Each resource's create() as an expression (in ctx.postgresResources' order), for the provisioning transaction's last statement. */
export const createExpressions = (ctx: LifecycleContext, id: string, prepared: (PreparedCreate | undefined)[]): Promise<Prisma.Sql[]> =>
  Promise.all(ctx.postgresResources.map((r, i) => r.createExpression(id, prepared[i])));

/** Starts each resource's database-free preparation (see PostgresResource.prepare), in ctx.postgresResources' order. */
export const preparePostgresResources = (ctx: LifecycleContext, id: string): (PreparedCreate | undefined)[] => ctx.postgresResources.map((r) => r.prepare?.(id));

/** Each resource's drop() as an expression (in ctx.postgresResources' order), for the teardown's own statement (tearDownSandbox). */
export const dropExpressions = (ctx: LifecycleContext, id: string): { kind: string; expression: Prisma.Sql }[] =>
  ctx.postgresResources.map((r) => ({ kind: r.kind, expression: r.dropExpression(id) }));
