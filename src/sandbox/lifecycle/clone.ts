import { defaultOwner, type Actor, type CreateResult } from '../types.ts';
import { assertUsable, guard, type LifecycleContext } from './context.ts';
import { create, type SkippedGuild } from './create.ts';
import { resolveFor } from './lookups.ts';

/**
 * `clone <source> [name]`: a new sandbox owned by the actor whose schema is a copy of the source's
 * (structure, rows, sequence states) and whose template version is the source's. Only the source's
 * owner or an admin may clone it. It IS a create: the owner limit, the row committed as `creating`
 * first, one transaction for the copy and `creating → running`, compensation and the stuck-row
 * reconcile all apply unchanged.
 */
export const clone = (ctx: LifecycleContext, sourceRef: string, name: string | undefined, actor: Actor): Promise<CreateResult & { skippedGuilds: SkippedGuild[] }> =>
  guard(async () => {
    const source = await resolveFor(ctx, sourceRef, actor);
    assertUsable(source, source.name, 'cloned');
    return create(ctx, { name, owner: defaultOwner(actor), metadata: { clonedFrom: source.id } }, actor, { cloneOf: source });
  });
