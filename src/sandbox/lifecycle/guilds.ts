import { ErrorCode, SandboxError } from '../errors.ts';
import type { Tx } from '../store/store.ts';
import { actorLabel, type Actor, type GuildRegistration, type Sandbox, type SandboxStatus } from '../types.ts';
import { validateSnowflake } from '../validation.ts';
import { fault, guard, isAdmin, routesChanged, throwGuildMapped, type LifecycleContext } from './context.ts';
import { getById, resolveFor } from './lookups.ts';

export async function canManageGuild(ctx: LifecycleContext, guildId: string, actor: Actor): Promise<boolean> {
  return isAdmin(ctx, actor) || ctx.guilds.canManageGuild(guildId, (actor as { id: string }).id);
}

export async function assertCanManageGuild(ctx: LifecycleContext, guildId: string, actor: Actor): Promise<void> {
  if (!(await canManageGuild(ctx, guildId, actor))) {
    throw new SandboxError(ErrorCode.Forbidden, `You need the Manage Server permission in guild ${guildId} to register it.`, { guildId });
  }
}

/** Takes the sandbox row lock and checks its status, so a concurrent destroy cannot interleave. */
export async function lockSandboxInStatus(ctx: LifecycleContext, tx: Tx, id: string, name: string, allowed: SandboxStatus[]): Promise<void> {
  const row = await ctx.store.lockSandboxRow(tx, id);
  if (!row || !allowed.includes(row.status)) {
    throw new SandboxError(ErrorCode.InvalidTransition, `${name} is ${row?.status ?? 'gone'}; this needs a ${allowed.join(' or ')} sandbox.`, {
      status: row?.status,
    });
  }
}

/** Records (or replaces) a claim and audits it. */
export async function claimGuild(ctx: LifecycleContext, tx: Tx, sandboxId: string, guildId: string, actor: Actor): Promise<void> {
  const replaced = await ctx.store.upsertClaim(tx, sandboxId, guildId, actorLabel(actor));
  await ctx.store.audit(tx, sandboxId, 'guild_claimed', actor, { guildId, ...(replaced ? { replacedSandboxId: replaced } : {}) });
}

/**
 * Maps a guild to a sandbox when the bot is in it (the invoker needs Manage Server there),
 * otherwise records a pending claim that is applied when the bot joins.
 */
export const registerGuild = (ctx: LifecycleContext, ref: string, guildId: string, actor: Actor): Promise<{ sandbox: Sandbox; outcome: GuildRegistration }> =>
  guard(async () => {
    validateSnowflake(guildId);
    const target = await resolveFor(ctx, ref, actor);
    const inGuild = await ctx.guilds.isBotInGuild(guildId);
    if (inGuild) await assertCanManageGuild(ctx, guildId, actor);
    const outcome = await ctx.store.transaction(async (tx): Promise<GuildRegistration> => {
      await lockSandboxInStatus(ctx, tx, target.id, target.name, ['running']);
      await fault(ctx, 'register:before-insert', target.id);
      const existing = await ctx.store.findMapping(tx, guildId);
      if (existing?.sandboxId === target.id) return 'already-mapped';
      if (existing) await throwGuildMapped(ctx, tx, guildId);
      if (!inGuild) {
        await claimGuild(ctx, tx, target.id, guildId, actor);
        return 'claimed';
      }
      if (!(await ctx.store.mapGuildIfFree(tx, target.id, guildId))) await throwGuildMapped(ctx, tx, guildId);
      await ctx.store.audit(tx, target.id, 'guild_registered', actor, { guildId });
      return 'mapped';
    });
    if (outcome === 'mapped') await routesChanged(ctx);
    return { sandbox: (await getById(ctx, target.id))!, outcome };
  });

export const unregisterGuild = (ctx: LifecycleContext, ref: string, guildId: string, actor: Actor, reason = 'requested'): Promise<Sandbox> =>
  guard(async () => {
    validateSnowflake(guildId);
    const target = await resolveFor(ctx, ref, actor);
    const released = await ctx.store.transaction(async (tx) => {
      await ctx.store.lockSandboxRow(tx, target.id);
      const r = await ctx.store.releaseGuild(tx, target.id, guildId);
      if (!r.unmapped && !r.unclaimed) {
        throw new SandboxError(ErrorCode.NotFound, `Guild ${guildId} is not registered to ${target.name}.`, { guildId });
      }
      await ctx.store.audit(tx, target.id, r.unmapped ? 'guild_unregistered' : 'guild_claim_removed', actor, { guildId, reason });
      return r;
    });
    if (released.unmapped) await routesChanged(ctx);
    return (await getById(ctx, target.id))!;
  });
