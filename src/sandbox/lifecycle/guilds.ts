import { ErrorCode, SandboxError } from '../errors.ts';
import type { Tx } from '../store/store.ts';
import { actorLabel, type Actor, type GuildRegistration, type Sandbox, type SandboxStatus } from '../types.ts';
import { validateSnowflake } from '../validation.ts';
import { HOUR, fault, guard, isAdmin, mayActFor, routesChanged, throwGuildMapped, type LifecycleContext } from './context.ts';
import { getById, resolve, resolveFor } from './lookups.ts';

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

/**
 * Records a claim (or refreshes this sandbox's own claim on the guild) and audits it. A claim
 * never removes another sandbox's claim. A non-admin Discord user holds at most
 * `maxClaimsPerUser` live claims: the count runs under the claimant's advisory key, so it holds
 * under concurrency. Each claim lapses after `claimTtlHours`.
 */
export async function claimGuild(ctx: LifecycleContext, tx: Tx, sandboxId: string, guildId: string, actor: Actor): Promise<void> {
  const claimedBy = actorLabel(actor);
  const cap = isAdmin(ctx, actor) ? null : ctx.limits.maxClaimsPerUser;
  if (cap !== null) await ctx.store.lockKey(tx, `claimant:${claimedBy}`);
  const expiresAt = new Date(ctx.clock().getTime() + ctx.limits.claimTtlHours * HOUR);
  const result = await ctx.store.insertClaim(tx, sandboxId, guildId, claimedBy, expiresAt, cap);
  if (result === 'limit') {
    throw new SandboxError(
      ErrorCode.LimitExceeded,
      `You already hold ${cap} pending server registrations, the most allowed. Each lapses after ${ctx.limits.claimTtlHours} hours or when the bot joins that server; ` +
        'remove one with /sandbox unregister-guild first.',
      { limit: cap },
    );
  }
  await ctx.store.audit(tx, sandboxId, 'guild_claimed', actor, { guildId, expiresAt: expiresAt.toISOString(), ...(result === 'refreshed' ? { refreshed: true } : {}) });
}

/**
 * Maps a guild to a sandbox when the bot is in it (the invoker needs Manage Server there),
 * otherwise records a pending claim that is applied when the bot joins. "Is the bot in this
 * guild" is decided inside the transaction from `bot_guilds`, under the guild's key, which the
 * join also takes when it records the guild: a join racing this call either sees the claim or
 * is seen here, and the outcome is a mapping either way.
 */
export const registerGuild = (ctx: LifecycleContext, ref: string, guildId: string, actor: Actor): Promise<{ sandbox: Sandbox; outcome: GuildRegistration }> =>
  guard(async () => {
    validateSnowflake(guildId);
    const target = await resolveFor(ctx, ref, actor);
    let verified = false;
    if (await ctx.guilds.isBotInGuild(guildId)) {
      await assertCanManageGuild(ctx, guildId, actor);
      verified = true;
    }
    for (let attempt = 1; ; attempt++) {
      const outcome = await ctx.store.transaction(async (tx): Promise<GuildRegistration | 'verify'> => {
        await ctx.store.lockKey(tx, `guild:${guildId}`);
        await lockSandboxInStatus(ctx, tx, target.id, target.name, ['running']);
        await fault(ctx, 'register:before-insert', target.id);
        const existing = await ctx.store.findMapping(tx, guildId);
        if (existing?.sandboxId === target.id) return 'already-mapped';
        if (existing) await throwGuildMapped(ctx, tx, guildId);
        if (!(await ctx.store.isGuildPresent(tx, guildId))) {
          await claimGuild(ctx, tx, target.id, guildId, actor);
          return 'claimed';
        }
        // The bot joined since the check above: verify Manage Server outside the transaction, then map.
        if (!verified) return 'verify';
        if (!(await ctx.store.mapGuildIfFree(tx, target.id, guildId, actor))) await throwGuildMapped(ctx, tx, guildId);
        await ctx.store.audit(tx, target.id, 'guild_registered', actor, { guildId });
        return 'mapped';
      });
      if (outcome === 'verify' && attempt < 3) {
        await assertCanManageGuild(ctx, guildId, actor);
        verified = true;
        continue;
      }
      if (outcome === 'verify') throw new SandboxError(ErrorCode.Conflict, 'The server changed at the same time. Please try again.', { guildId });
      if (outcome === 'mapped') await routesChanged(ctx);
      return { sandbox: (await getById(ctx, target.id))!, outcome };
    }
  });

/** Manage Server in the guild, or an admin; a Discord error answers "no" (the caller says what is missing). */
async function holdsManageServer(ctx: LifecycleContext, guildId: string, actor: Actor): Promise<boolean> {
  try {
    return await canManageGuild(ctx, guildId, actor);
  } catch (err) {
    ctx.log.warn({ guildId, err }, 'could not check Manage Server for a release');
    return false;
  }
}

/**
 * Removes a guild's mapping or claim from one sandbox. Its owner (or an admin) may, and so may
 * anyone holding Manage Server in that guild, whoever owns the sandbox: a guild's admins always
 * get their guild back. Audited with the actor and the sandbox's owner.
 */
export const unregisterGuild = (ctx: LifecycleContext, ref: string, guildId: string, actor: Actor, reason = 'requested'): Promise<Sandbox> =>
  guard(async () => {
    validateSnowflake(guildId);
    const target = await resolve(ctx, ref);
    const owns = mayActFor(ctx, actor, target.owner);
    if (!owns && !(await holdsManageServer(ctx, guildId, actor))) {
      throw new SandboxError(
        ErrorCode.Forbidden,
        `${target.name} belongs to someone else; only its owner, a bot admin or someone with Manage Server in server ${guildId} may unregister it.`,
        { ref, guildId },
      );
    }
    const released = await ctx.store.transaction(async (tx) => {
      await ctx.store.lockKey(tx, `guild:${guildId}`);
      await ctx.store.lockSandboxRow(tx, target.id);
      const r = await ctx.store.releaseGuild(tx, target.id, guildId);
      if (!r.unmapped && !r.unclaimed) {
        throw new SandboxError(ErrorCode.NotFound, `Guild ${guildId} is not registered to ${target.name}.`, { guildId });
      }
      await ctx.store.audit(tx, target.id, r.unmapped ? 'guild_unregistered' : 'guild_claim_removed', actor, {
        guildId,
        reason,
        owner: target.owner,
        via: owns ? 'owner' : 'manage_server',
      });
      return r;
    });
    if (released.unmapped) await routesChanged(ctx);
    return (await getById(ctx, target.id))!;
  });

export interface GuildRelease {
  sandboxId: string;
  name: string;
  owner: string;
  kind: 'mapping' | 'claim';
}

/**
 * `unregister-guild` without a sandbox: the guild's own mapping and claims, whichever sandbox
 * holds them. Someone with Manage Server there (or an admin) releases all of them; anyone else
 * only those of their own sandboxes. Each release is audited with the actor and the owner.
 */
export const releaseGuild = (ctx: LifecycleContext, guildId: string, actor: Actor, reason = 'requested'): Promise<GuildRelease[]> =>
  guard(async () => {
    validateSnowflake(guildId);
    const manages = await holdsManageServer(ctx, guildId, actor);
    const released = await ctx.store.transaction(async (tx) => {
      await ctx.store.lockKey(tx, `guild:${guildId}`);
      await ctx.store.lockSandboxRowOfGuild(tx, guildId);
      const out: GuildRelease[] = [];
      const holder = await ctx.store.findMappingHolder(tx, guildId);
      const mine = (owner: string) => manages || mayActFor(ctx, actor, owner);
      if (holder && mine(holder.owner)) {
        await ctx.store.releaseGuild(tx, holder.sandboxId, guildId);
        out.push({ ...holder, kind: 'mapping' });
      }
      for (const claim of await ctx.store.findClaims(tx, guildId)) {
        if (!mine(claim.sandboxOwner)) continue;
        await ctx.store.deleteClaim(tx, claim.sandboxId, guildId);
        out.push({ sandboxId: claim.sandboxId, name: claim.sandboxName, owner: claim.sandboxOwner, kind: 'claim' });
      }
      if (!out.length) {
        if (holder || !manages) {
          throw new SandboxError(
            ErrorCode.Forbidden,
            `You need the Manage Server permission in server ${guildId} (or to own the sandbox holding it) to unregister it.`,
            { guildId },
          );
        }
        throw new SandboxError(ErrorCode.NotFound, `Server ${guildId} is not registered to any sandbox.`, { guildId });
      }
      await ctx.store.auditMany(
        tx,
        out.map((r) => ({
          sandboxId: r.sandboxId,
          eventType: r.kind === 'mapping' ? 'guild_unregistered' : 'guild_claim_removed',
          actor,
          details: { guildId, reason, owner: r.owner, via: mayActFor(ctx, actor, r.owner) ? 'owner' : 'manage_server' },
        })),
      );
      return out;
    });
    if (released.some((r) => r.kind === 'mapping')) await routesChanged(ctx);
    return released;
  });
