import { ErrorCode, SandboxError } from '../errors.ts';
import type { Actor, ListFilter, Sandbox } from '../types.ts';
import { validateName, validateOwner, validateRef, validateSnowflake } from '../validation.ts';
import { guard, isAdmin, mayActFor, type LifecycleContext } from './context.ts';

export const getById = (ctx: LifecycleContext, id: string): Promise<Sandbox | null> =>
  guard(async () => {
    const ref = validateRef(id);
    return ref.kind === 'id' ? ctx.store.findSandboxById(ref.value) : null;
  });

/** The live sandbox with this name, or else the most recently destroyed one. */
export const getByName = (ctx: LifecycleContext, name: string): Promise<Sandbox | null> =>
  guard(async () => ctx.store.findSandboxByName(validateName(name)));

export const getByGuildId = (ctx: LifecycleContext, guildId: string): Promise<Sandbox | null> =>
  guard(async () => ctx.store.findSandboxByGuild(validateSnowflake(guildId)));

/** Resolves a name or id; throws SANDBOX_004 when there is none. */
export async function resolve(ctx: LifecycleContext, ref: string): Promise<Sandbox> {
  const parsed = validateRef(ref);
  const found = parsed.kind === 'id' ? await getById(ctx, parsed.value) : await getByName(ctx, parsed.value);
  if (!found) throw new SandboxError(ErrorCode.NotFound, `No sandbox named or with id ${JSON.stringify(ref)}.`, { ref });
  return found;
}

/** Like resolve, but only for actors allowed to use this sandbox (its owner or an admin); others get SANDBOX_009. */
export async function resolveFor(ctx: LifecycleContext, ref: string, actor: Actor): Promise<Sandbox> {
  const sandbox = await resolve(ctx, ref);
  if (!mayActFor(ctx, actor, sandbox.owner)) {
    throw new SandboxError(ErrorCode.Forbidden, `${sandbox.name} belongs to someone else; only its owner or a bot admin may use it.`, { ref });
  }
  return sandbox;
}

/** Lists sandboxes, newest first. A non-admin Discord user sees only their own; asking for anyone else's is refused. */
export const list = (ctx: LifecycleContext, filter: ListFilter = {}, actor?: Actor): Promise<Sandbox[]> =>
  guard(async () => {
    let owner = filter.owner === undefined ? undefined : validateOwner(filter.owner);
    if (actor && !isAdmin(ctx, actor)) {
      const self = (actor as { id: string }).id;
      if (filter.allOwners || (owner !== undefined && owner !== self)) {
        throw new SandboxError(ErrorCode.Forbidden, 'Only bot admins may list other users’ sandboxes.');
      }
      owner = self;
    }
    return ctx.store.listSandboxes({
      ...(owner !== undefined ? { owner } : {}),
      ...(filter.status !== undefined ? { status: filter.status } : {}),
      includeDestroyed: filter.includeDestroyed ?? false,
      limit: filter.limit ?? 1000,
    });
  });

/** Autocomplete: at most 25 live sandboxes whose name starts with `typed` (a non-admin's own only), one indexed query. */
export const suggest = (ctx: LifecycleContext, typed: string, actor: Actor): Promise<{ name: string; status: Sandbox['status'] }[]> =>
  guard(async () => {
    const prefix = typed.trim().toLowerCase().slice(0, 64);
    return ctx.store.searchLiveSandboxes(isAdmin(ctx, actor) ? null : (actor as { id: string }).id, prefix, 25);
  });
