import type { Prisma } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import { SandboxError } from './errors.ts';
import type { SandboxManager } from './manager.ts';
import type { GuildClaim, SandboxStore } from './store/store.ts';
import { isAdmin, routesChanged } from './lifecycle/context.ts';
import { lockSandboxInStatus } from './lifecycle/guilds.ts';
import type { Actor } from './types.ts';
import { parseActorLabel, validateSnowflake } from './validation.ts';

type Tx = Prisma.TransactionClient;

/** Asks Discord whether a user still holds Manage Server in the guild being joined. */
export type ClaimantCheck = (userId: string) => Promise<boolean>;

/** A guild as the gateway session lists it. `ownerId` is null while the guild is unavailable. */
export interface PresentGuild {
  id: string;
  ownerId: string | null;
  available: boolean;
}

export type JoinOutcome =
  | { outcome: 'mapped'; sandboxId: string; via: 'claim' | 'owner' }
  | { outcome: 'already-mapped'; sandboxId: string }
  | { outcome: 'claim-refused'; sandboxId: string; reason: string }
  | { outcome: 'claim-deferred'; sandboxId: string; attempts: number }
  | { outcome: 'unmapped'; reason: string };

export interface ReconcileSummary {
  joined: number;
  mapped: number;
  unmapped: number;
  skippedUnavailable: number;
}

const JOIN: Actor = { kind: 'system', job: 'guild-join' };
const LEAVE: Actor = { kind: 'system', job: 'guild-leave' };
const RECONCILE: Actor = { kind: 'system', job: 'guild-reconcile' };

/**
 * The bot's record of guilds (`bot_guilds`) and the automatic guild rules: what happens when the
 * bot joins a guild, leaves one, or starts up and compares its gateway session with the record.
 * Every outcome writes an audit row. Discord is only asked (through the callbacks) outside any
 * transaction, so no lock is held across a network call.
 */
export class GuildRegistry {
  private readonly log: Logger;
  private readonly store: SandboxStore;

  constructor(
    private readonly manager: SandboxManager,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'guild-registry' });
    this.store = manager.store;
  }

  /**
   * The bot joined a guild (or is found in it for the first time). Rules, in order:
   * 1. the guild's live claims are tried oldest first; the first that qualifies maps the guild:
   *    its claimant still holds Manage Server there (a member fetch), or it is an operator's, a
   *    system job's or a bot admin's claim (no member check). A claim whose claimant label does not
   *    parse (parseActorLabel) is refused (`unrecognised_claimant`), never honoured. The other claims are deleted and audited
   *    `guild_claim_superseded`; claims that definitely failed are deleted and audited
   *    `guild_claim_refused`. A transient Discord error defers the check (`guild_claim_check_deferred`):
   *    nothing is deleted and the join rules run again on the next guildAvailable, startup
   *    reconcile or sweeper pass, up to `maxClaimCheckAttempts` times;
   * 2. otherwise a guild whose owner owns exactly one running sandbox maps to it;
   * 3. otherwise the guild stays unmapped.
   */
  async onGuildJoin(guildId: string, guildOwnerId: string | null, verifyClaimant: ClaimantCheck): Promise<JoinOutcome> {
    validateSnowflake(guildId);
    const log = this.log.child({ guildId, actor: 'system:guild-join' });
    // Under the guild's key, as register-guild decides "is the bot here" under it: a claim
    // committed before this is read below; a register-guild after it sees the guild and maps.
    await this.store.transaction(async (tx) => {
      await this.store.lockKey(tx, `guild:${guildId}`);
      await this.store.markGuildPresent(tx, guildId);
    });

    const existing = await this.store.findMapping(this.store.prisma, guildId);
    if (existing) {
      await this.store.audit(this.store.prisma, existing.sandboxId, 'guild_join_already_mapped', JOIN, { guildId });
      log.info({ sandboxId: existing.sandboxId }, 'joined a guild that is already mapped');
      return { outcome: 'already-mapped', sandboxId: existing.sandboxId };
    }

    const claims = await this.store.findClaims(this.store.prisma, guildId);
    if (claims.length) {
      const result = await this.applyClaims(guildId, claims, verifyClaimant);
      if (result) {
        if (result.outcome === 'mapped') await routesChanged(this.manager.context);
        log.info({ claims: claims.length, ...result }, 'pending claims applied on join');
        return result;
      }
    }
    const result = await this.applyOwnerRule(guildId, guildOwnerId);
    if (result.outcome === 'mapped') await routesChanged(this.manager.context);
    log.info({ ownerId: guildOwnerId, ...result }, result.outcome === 'mapped' ? 'guild mapped to its owner’s sandbox' : 'guild left unmapped');
    return result;
  }

  /**
   * Who made a claim, parsed strictly from its stored label. An admin's claim (an operator, a
   * system job, or a Discord user in BOT_ADMIN_IDS, as isAdmin decides) is honoured without a
   * member check; another Discord user's is checked in the guild; an unrecognised label is refused.
   */
  private claimant(claimedBy: string): { kind: 'admin' | 'operator' | 'system' } | { kind: 'member'; userId: string } | { kind: 'unrecognised' } {
    const actor = parseActorLabel(claimedBy);
    if (!actor) return { kind: 'unrecognised' };
    if (isAdmin(this.manager.context, actor)) return { kind: actor.kind === 'discord' ? 'admin' : actor.kind };
    // isAdmin holds for every operator and system job, so only a Discord user is left to check.
    return actor.kind === 'discord' ? { kind: 'member', userId: actor.id } : { kind: 'unrecognised' };
  }

  /**
   * Tries the claims oldest first (network checks outside any transaction). Returns null when
   * none qualified and none was deferred (the owner rule applies), else the outcome.
   */
  private async applyClaims(guildId: string, claims: GuildClaim[], verifyClaimant: ClaimantCheck): Promise<JoinOutcome | null> {
    const maxAttempts = this.manager.limits.maxClaimCheckAttempts;
    const refused: { claim: GuildClaim; reason: string }[] = [];
    const deferred: { claim: GuildClaim; error: string }[] = [];
    let winner: { claim: GuildClaim; as: 'admin' | 'operator' | 'system' | 'member' } | undefined;
    for (const claim of claims) {
      const who = this.claimant(claim.claimedBy);
      if (who.kind === 'unrecognised') {
        // Never honoured, never retried: refused like a claim that definitely failed.
        refused.push({ claim, reason: 'unrecognised_claimant' });
        continue;
      }
      if (who.kind !== 'member') {
        winner = { claim, as: who.kind };
        break;
      }
      if (claim.checkAttempts >= maxAttempts) continue; // no more retries: it lapses with its TTL
      try {
        if (await verifyClaimant(who.userId)) {
          winner = { claim, as: 'member' };
          break;
        }
        refused.push({ claim, reason: 'claimant_lacks_manage_server' });
      } catch (err) {
        // Only a definite answer (unknown member, no permission) refuses. Anything else defers,
        // and an older claim still pending must not be overtaken by a younger one: stop here.
        this.log.warn({ guildId, sandboxId: claim.sandboxId, err }, 'could not verify the claimant; check deferred');
        deferred.push({ claim, error: (err as Error)?.message ?? String(err) });
        break;
      }
    }

    return this.store.transaction(async (tx) => {
      await this.store.lockKey(tx, `guild:${guildId}`);
      const holder = await this.store.findMapping(tx, guildId);
      if (holder) {
        // Mapped meanwhile (register-guild, another join): the claims wait for their TTL or the holder's release.
        await this.store.audit(tx, holder.sandboxId, 'guild_join_already_mapped', JOIN, { guildId });
        return { outcome: 'already-mapped', sandboxId: holder.sandboxId } as const;
      }
      for (const { claim, reason } of refused) {
        if (await this.store.deleteClaim(tx, claim.sandboxId, guildId)) {
          await this.store.audit(tx, claim.sandboxId, 'guild_claim_refused', JOIN, { guildId, claimedBy: claim.claimedBy, reason });
        }
      }
      if (deferred.length) {
        const [{ claim, error }] = deferred as [{ claim: GuildClaim; error: string }];
        const attempts = await this.store.recordClaimCheckDeferred(tx, claim.sandboxId, guildId);
        await this.store.audit(tx, claim.sandboxId, 'guild_claim_check_deferred', JOIN, {
          guildId,
          claimedBy: claim.claimedBy,
          attempts,
          maxAttempts,
          error: error.slice(0, 200),
        });
        return { outcome: 'claim-deferred', sandboxId: claim.sandboxId, attempts } as const;
      }
      if (!winner) return null;
      const { claim, as } = winner;
      // The claim must still exist (an unregister or a destroy may have removed it meanwhile).
      const current = (await this.store.findClaims(tx, guildId)).find((c) => c.sandboxId === claim.sandboxId);
      if (!current) {
        await this.store.audit(tx, claim.sandboxId, 'guild_claim_refused', JOIN, { guildId, reason: 'claim_changed' });
        return { outcome: 'claim-refused', sandboxId: claim.sandboxId, reason: 'claim_changed' } as const;
      }
      return this.mapGuild(tx, guildId, claim.sandboxId, claim.sandboxName, 'claim', { claimedBy: claim.claimedBy, claimant: as });
    });
  }

  private applyOwnerRule(guildId: string, ownerId: string | null): Promise<JoinOutcome> {
    return this.store.transaction(async (tx) => {
      await this.store.lockKey(tx, `guild:${guildId}`);
      const candidates = ownerId ? await this.store.findRunningSandboxesOf(tx, ownerId, 2) : [];
      const only = candidates.length === 1 ? candidates[0] : undefined;
      if (only) return this.mapGuild(tx, guildId, only.id, only.name, 'owner', { ownerId });
      const reason = ownerId === null ? 'owner_unknown' : candidates.length === 0 ? 'owner_has_no_running_sandbox' : 'owner_has_several_running_sandboxes';
      await this.store.audit(tx, null, 'guild_join_unmapped', JOIN, { guildId, ownerId, reason });
      return { outcome: 'unmapped', reason } as const;
    });
  }

  /** Maps inside the caller's transaction with the same race safety as registerGuild. */
  private async mapGuild(tx: Tx, guildId: string, sandboxId: string, name: string, via: 'claim' | 'owner', details: Record<string, unknown>): Promise<JoinOutcome> {
    try {
      await lockSandboxInStatus(this.manager.context, tx, sandboxId, name, ['running']);
    } catch (err) {
      if (!(err instanceof SandboxError)) throw err;
      await this.store.deleteClaim(tx, sandboxId, guildId);
      await this.store.audit(tx, sandboxId, via === 'claim' ? 'guild_claim_refused' : 'guild_join_unmapped', JOIN, {
        guildId,
        reason: 'sandbox_not_running',
        status: err.details.status,
      });
      return { outcome: 'claim-refused', sandboxId, reason: 'sandbox_not_running' };
    }
    if (!(await this.store.mapGuildIfFree(tx, sandboxId, guildId, JOIN))) {
      const holder = await this.store.findMapping(tx, guildId);
      await this.store.audit(tx, holder?.sandboxId ?? null, 'guild_join_already_mapped', JOIN, { guildId });
      return { outcome: 'already-mapped', sandboxId: holder?.sandboxId ?? sandboxId };
    }
    await this.store.audit(tx, sandboxId, 'guild_registered', JOIN, { guildId, via, ...details });
    return { outcome: 'mapped', sandboxId, via };
  }

  /**
   * The sweeper's retry of join checks deferred by transient Discord errors: guilds the bot is
   * in, still unmapped, whose claims may be checked again. `lookup` gives the guild's owner and
   * a claimant check from the live session (null when this process cannot see the guild).
   */
  async retryDeferredClaims(
    lookup: (guildId: string) => Promise<{ ownerId: string | null; verify: ClaimantCheck } | null>,
    batch = 100,
  ): Promise<number> {
    const guilds = await this.store.findGuildsWithDeferredClaims(this.manager.now(), this.manager.limits.maxClaimCheckAttempts, batch);
    let retried = 0;
    for (const guildId of guilds) {
      try {
        const live = await lookup(guildId);
        if (!live) continue;
        await this.onGuildJoin(guildId, live.ownerId, live.verify);
        retried++;
      } catch (err) {
        this.log.error({ guildId, err }, 'retrying a deferred claim check failed');
      }
    }
    return retried;
  }

  /** The bot was removed from the guild (not an outage): record it and unmap. */
  async onGuildRemoved(guildId: string): Promise<{ unmappedSandboxId: string | null }> {
    validateSnowflake(guildId);
    const result = await this.store.transaction(async (tx) => {
      await this.store.lockKey(tx, `guild:${guildId}`);
      await this.store.markGuildLeft(tx, guildId);
      return this.unmapGuild(tx, guildId, LEAVE, 'bot_removed');
    });
    if (result.unmappedSandboxId) await routesChanged(this.manager.context);
    this.log.info({ guildId, actor: 'system:guild-leave', sandboxId: result.unmappedSandboxId }, 'bot removed from guild');
    return result;
  }

  /**
   * A guild listed by the gateway became available: apply the join rules if the bot has never
   * seen it, has seen it leave, or it has a pending claim. Otherwise only note that it is present.
   */
  async onGuildSeen(guild: { id: string; ownerId: string | null }, verifyClaimant: ClaimantCheck): Promise<JoinOutcome | null> {
    validateSnowflake(guild.id);
    const [record, claimed] = await Promise.all([
      this.store.findBotGuild(guild.id),
      this.store.hasPendingClaims(guild.id, this.manager.limits.maxClaimCheckAttempts),
    ]);
    if (record && record.leftAt === null && !claimed) return null;
    return this.onGuildJoin(guild.id, guild.ownerId, verifyClaimant);
  }

  /**
   * Startup reconciliation against the gateway session's guild list (READY lists every guild,
   * unavailable ones included). New guilds and guilds with a pending claim get the join rules;
   * a guild someone deliberately unregistered is left alone. Mapped guilds the session does not
   * list at all are unmapped; an unavailable guild is listed, so an outage never unmaps.
   * `owns` limits that to the guilds of this process's shards: another process's guilds are not
   * listed here and are never unmapped or marked as left by this one.
   */
  async reconcile(present: PresentGuild[], verifierFor: (guildId: string) => ClaimantCheck, owns: (guildId: string) => boolean = () => true): Promise<ReconcileSummary> {
    const summary: ReconcileSummary = { joined: 0, mapped: 0, unmapped: 0, skippedUnavailable: 0 };
    for (const guild of present) {
      if (!guild.available) {
        // Nothing can be checked in an unavailable guild; guildAvailable will call onGuildSeen.
        summary.skippedUnavailable++;
        continue;
      }
      try {
        const outcome = await this.onGuildSeen(guild, verifierFor(guild.id));
        if (outcome) summary.joined++;
        if (outcome?.outcome === 'mapped') summary.mapped++;
      } catch (err) {
        this.log.error({ guildId: guild.id, err }, 'reconciling a guild failed; continuing with the others');
      }
    }

    const listed = present.map((g) => g.id);
    const stale = (await this.store.findMappedGuildsNotIn(listed)).filter(owns);
    for (const guildId of stale) {
      try {
        const { unmappedSandboxId } = await this.store.transaction(async (tx) => {
          await this.store.lockKey(tx, `guild:${guildId}`);
          await this.store.markGuildLeft(tx, guildId);
          return this.unmapGuild(tx, guildId, RECONCILE, 'bot_not_in_guild');
        });
        if (unmappedSandboxId) {
          summary.unmapped++;
          await routesChanged(this.manager.context);
        }
      } catch (err) {
        this.log.error({ guildId, err }, 'unmapping a guild the bot is not in failed');
      }
    }
    await this.store.markGuildsLeftExcept(listed, owns);
    this.log.info({ ...summary, guilds: present.length }, 'guilds reconciled');
    return summary;
  }

  private async unmapGuild(tx: Tx, guildId: string, actor: Actor, reason: string): Promise<{ unmappedSandboxId: string | null }> {
    // Sandbox row first, then its mapping (the store's lock order), found through the mapping.
    await this.store.lockSandboxRowOfGuild(tx, guildId);
    const sandboxId = await this.store.unmapGuild(tx, guildId);
    if (sandboxId) await this.store.audit(tx, sandboxId, 'guild_unregistered', actor, { guildId, reason });
    else await this.store.audit(tx, null, 'bot_left_guild', actor, { guildId, reason });
    return { unmappedSandboxId: sandboxId };
  }
}
