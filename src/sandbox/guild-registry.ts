import type { Prisma } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import { SandboxError } from './errors.ts';
import type { SandboxManager } from './manager.ts';
import type { SandboxStore } from './store/store.ts';
import { routesChanged } from './lifecycle/context.ts';
import { lockSandboxInStatus } from './lifecycle/guilds.ts';
import type { Actor } from './types.ts';
import { validateSnowflake } from './validation.ts';

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
   * 1. a pending claim maps the guild to the claiming sandbox, if the claimant still holds
   *    Manage Server there (claims made from the CLI are an operator's and always count);
   * 2. otherwise a guild whose owner owns exactly one running sandbox maps to it;
   * 3. otherwise the guild stays unmapped.
   */
  async onGuildJoin(guildId: string, guildOwnerId: string | null, verifyClaimant: ClaimantCheck): Promise<JoinOutcome> {
    validateSnowflake(guildId);
    const log = this.log.child({ guildId, actor: 'system:guild-join' });
    await this.store.markGuildPresent(this.store.prisma, guildId);

    const existing = await this.store.findMapping(this.store.prisma, guildId);
    if (existing) {
      await this.store.audit(this.store.prisma, existing.sandboxId, 'guild_join_already_mapped', JOIN, { guildId });
      log.info({ sandboxId: existing.sandboxId }, 'joined a guild that is already mapped');
      return { outcome: 'already-mapped', sandboxId: existing.sandboxId };
    }

    const claim = await this.store.findClaim(this.store.prisma, guildId);
    if (claim) {
      const result = await this.applyClaim(guildId, claim, verifyClaimant);
      if (result.outcome === 'mapped') await routesChanged(this.manager.context);
      log.info({ sandboxId: claim.sandboxId, claimedBy: claim.claimedBy, ...result }, 'pending claim applied on join');
      return result;
    }
    const result = await this.applyOwnerRule(guildId, guildOwnerId);
    if (result.outcome === 'mapped') await routesChanged(this.manager.context);
    log.info({ ownerId: guildOwnerId, ...result }, result.outcome === 'mapped' ? 'guild mapped to its owner’s sandbox' : 'guild left unmapped');
    return result;
  }

  private async applyClaim(
    guildId: string,
    claim: { sandboxId: string; claimedBy: string; createdAt: Date; sandboxName: string },
    verifyClaimant: ClaimantCheck,
  ): Promise<JoinOutcome> {
    const discordClaimant = claim.claimedBy.startsWith('discord:') ? claim.claimedBy.slice('discord:'.length) : null;
    let allowed = true;
    let reason = '';
    if (discordClaimant !== null) {
      try {
        allowed = await verifyClaimant(discordClaimant);
        if (!allowed) reason = 'claimant_lacks_manage_server';
      } catch (err) {
        this.log.warn({ guildId, err }, 'could not verify the claimant; refusing the claim');
        allowed = false;
        reason = 'claimant_check_failed';
      }
    }
    return this.store.transaction(async (tx) => {
      await this.store.lockKey(tx, `guild:${guildId}`);
      // The claim must still be the one we verified: a newer claim replaces it.
      const current = await this.store.findClaim(tx, guildId);
      if (!current || current.sandboxId !== claim.sandboxId || current.claimedBy !== claim.claimedBy) {
        await this.store.audit(tx, claim.sandboxId, 'guild_claim_refused', JOIN, { guildId, reason: 'claim_changed' });
        return { outcome: 'claim-refused', sandboxId: claim.sandboxId, reason: 'claim_changed' } as const;
      }
      if (!allowed) {
        await this.store.lockSandboxRow(tx, claim.sandboxId);
        await this.store.deleteClaim(tx, claim.sandboxId, guildId);
        await this.store.audit(tx, claim.sandboxId, 'guild_claim_refused', JOIN, { guildId, claimedBy: claim.claimedBy, reason });
        return { outcome: 'claim-refused', sandboxId: claim.sandboxId, reason } as const;
      }
      return this.mapGuild(tx, guildId, claim.sandboxId, claim.sandboxName, 'claim', { claimedBy: claim.claimedBy });
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
    if (!(await this.store.mapGuildIfFree(tx, sandboxId, guildId))) {
      const holder = await this.store.findMapping(tx, guildId);
      await this.store.audit(tx, holder?.sandboxId ?? null, 'guild_join_already_mapped', JOIN, { guildId });
      return { outcome: 'already-mapped', sandboxId: holder?.sandboxId ?? sandboxId };
    }
    await this.store.audit(tx, sandboxId, 'guild_registered', JOIN, { guildId, via, ...details });
    return { outcome: 'mapped', sandboxId, via };
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
    const [record, claim] = await Promise.all([
      this.store.findBotGuild(guild.id),
      this.store.findClaim(this.store.prisma, guild.id),
    ]);
    if (record && record.leftAt === null && !claim) return null;
    return this.onGuildJoin(guild.id, guild.ownerId, verifyClaimant);
  }

  /**
   * Startup reconciliation against the gateway session's guild list (READY lists every guild,
   * unavailable ones included). New guilds and guilds with a pending claim get the join rules;
   * a guild someone deliberately unregistered is left alone. Mapped guilds the session does not
   * list at all are unmapped; an unavailable guild is listed, so an outage never unmaps.
   */
  async reconcile(present: PresentGuild[], verifierFor: (guildId: string) => ClaimantCheck): Promise<ReconcileSummary> {
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
    const stale = await this.store.findMappedGuildsNotIn(listed);
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
    await this.store.markGuildsLeftExcept(listed);
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
