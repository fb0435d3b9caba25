import { randomUUID } from 'node:crypto';
import type { PrismaClient } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import { noFaults, type FaultInjector } from './faults.ts';
import { RecordedGuildDirectory, type GuildDirectory } from './guild-directory.ts';
import { create, type SkippedGuild } from './lifecycle/create.ts';
import type { HealthProbe, LifecycleContext, ManagerObserver } from './lifecycle/context.ts';
import { isAdmin } from './lifecycle/context.ts';
import { destroy, tearDown, type TeardownOptions } from './lifecycle/destroy.ts';
import { extendTtl } from './lifecycle/extend.ts';
import { clone } from './lifecycle/clone.ts';
import { reset, type ResetResult } from './lifecycle/reset.ts';
import { upgrade } from './lifecycle/upgrade.ts';
import { registerGuild, releaseGuild, unregisterGuild, type GuildRelease } from './lifecycle/guilds.ts';
import { getConnectionDetails, getStatus } from './lifecycle/health.ts';
import { getByGuildId, getById, getByName, list, resolve, resolveFor, suggest } from './lifecycle/lookups.ts';
import type { ExternalResource, PostgresResource } from './resources.ts';
import { rotateCredentials, type RotateResult } from './lifecycle/credentials.ts';
import type { EventsProbe } from './lifecycle/context.ts';
import { SchemaProvisioner } from './store/schemas.ts';
import { SandboxServers } from './servers.ts';
import { SandboxStore, type StatusExtras } from './store/store.ts';
import { DEFAULT_LIMITS, type Actor, type CreateInput, type CreateResult, type GuildRegistration, type ListFilter, type Sandbox, type SandboxHealth, type SandboxLimits, type SandboxStatus } from './types.ts';

export type { SkippedGuild } from './lifecycle/create.ts';
export type { EventsProbe, HealthProbe, ManagerObserver } from './lifecycle/context.ts';
export { destroyBackoffMs } from './lifecycle/destroy.ts';
export { toSandbox } from './store/store.ts';

export interface ManagerDeps {
  prisma: PrismaClient;
  logger: Logger;
  limits?: Partial<SandboxLimits>;
  adminIds?: Iterable<string>;
  guilds?: GuildDirectory;
  /** Redis health probe; absent means Redis is not configured ("disabled"). */
  redis?: HealthProbe | undefined;
  clock?: () => Date;
  newId?: () => string;
  faults?: FaultInjector;
  observer?: ManagerObserver;
  /** Per-sandbox resources outside PostgreSQL (stream, Redis ACL user, Redis keys). Default none. */
  resources?: ExternalResource[];
  /** PostgreSQL-side per-sandbox objects (the role when isolation is on), in the provisioning/teardown transactions. Default none. */
  postgresResources?: PostgresResource[];
  /** Extra variables `sandbox env` and `/sandbox connect` print (credentials, NATS) for a sandbox on the server at `serverUrl` (undefined: the control server); see src/isolation.ts. */
  connectionEnv?: (sandbox: Sandbox, serverUrl: string | undefined) => Record<string, string>;
  /** The servers schemas are placed on (SANDBOX_DATABASE_SERVERS); default: the control database (`prisma`) alone. */
  servers?: SandboxServers;
  /** Event stream stats for health and `status`; absent means event routing is off ("disabled"). */
  events?: EventsProbe | undefined;
  /** The template schema sandboxes are built from (config.templateSchema; default sandbox_template). */
  template?: string;
}

/**
 * The sandbox lifecycle, as a thin facade over the jobs in `lifecycle/`. Every adapter (bot,
 * CLI, jobs) goes through here, so authorization, validation and auditing cannot be skipped.
 * Every status change goes through SandboxStore.changeStatus: a compare-and-set in a
 * transaction that also writes its audit row.
 */
export class SandboxManager {
  readonly store: SandboxStore;
  readonly provisioner: SchemaProvisioner;
  readonly limits: SandboxLimits;
  readonly resources: readonly ExternalResource[];
  readonly postgresResources: readonly PostgresResource[];
  readonly servers: SandboxServers;
  private readonly ctx: LifecycleContext;

  constructor(deps: ManagerDeps) {
    const clock = deps.clock ?? (() => new Date());
    this.store = new SandboxStore(deps.prisma, clock);
    this.provisioner = new SchemaProvisioner(deps.prisma, deps.logger.child({ component: 'schema-provisioner' }));
    this.limits = { ...DEFAULT_LIMITS, ...deps.limits };
    this.resources = deps.resources ?? [];
    this.postgresResources = deps.postgresResources ?? [];
    this.servers = deps.servers ?? SandboxServers.controlOnly(deps.prisma);
    this.ctx = {
      store: this.store,
      schemas: this.provisioner,
      servers: this.servers,
      limits: this.limits,
      log: deps.logger.child({ component: 'sandbox-manager' }),
      admins: new Set(deps.adminIds ?? []),
      guilds: deps.guilds ?? new RecordedGuildDirectory(this.store),
      clock,
      newId: deps.newId ?? randomUUID,
      faults: deps.faults ?? noFaults,
      observer: deps.observer ?? {},
      resources: this.resources,
      postgresResources: this.postgresResources,
      connectionEnv: deps.connectionEnv,
      redis: deps.redis,
      events: deps.events,
      template: deps.template,
    };
  }

  /** The shared context, for the jobs (sweeper, guild registry) that run lifecycle steps. */
  get context(): LifecycleContext {
    return this.ctx;
  }

  now(): Date {
    return this.ctx.clock();
  }

  isAdmin(actor: Actor): boolean {
    return isAdmin(this.ctx, actor);
  }

  /** One audited status change in its own transaction (through the one transition function). */
  async transition(id: string, from: SandboxStatus, to: SandboxStatus, actor: Actor, details: Record<string, unknown> = {}, extras: StatusExtras = {}): Promise<void> {
    await this.store.transaction((tx) => this.store.changeStatus(tx, id, from, to, actor, details, extras));
  }

  getById(id: string): Promise<Sandbox | null> {
    return getById(this.ctx, id);
  }
  getByName(name: string): Promise<Sandbox | null> {
    return getByName(this.ctx, name);
  }
  getByGuildId(guildId: string): Promise<Sandbox | null> {
    return getByGuildId(this.ctx, guildId);
  }
  resolve(ref: string): Promise<Sandbox> {
    return resolve(this.ctx, ref);
  }
  resolveFor(ref: string, actor: Actor): Promise<Sandbox> {
    return resolveFor(this.ctx, ref, actor);
  }
  list(filter: ListFilter = {}, actor?: Actor): Promise<Sandbox[]> {
    return list(this.ctx, filter, actor);
  }
  create(input: CreateInput, actor: Actor, opts: { bestEffortGuilds?: boolean } = {}): Promise<CreateResult & { skippedGuilds: SkippedGuild[] }> {
    return create(this.ctx, input, actor, opts);
  }
  /** Puts the sandbox back to the template (structure and seed) in one transaction; then purges its stream and Redis keys. */
  reset(ref: string, actor: Actor): Promise<ResetResult> {
    return reset(this.ctx, ref, actor);
  }
  /** A new sandbox owned by the actor, copying the source's structure and data. */
  clone(sourceRef: string, name: string | undefined, actor: Actor): Promise<CreateResult & { skippedGuilds: SkippedGuild[] }> {
    return clone(this.ctx, sourceRef, name, actor);
  }
  /** Applies the template files the sandbox is missing. */
  upgrade(ref: string, actor: Actor): Promise<{ sandbox: Sandbox; applied: string[] }> {
    return upgrade(this.ctx, ref, actor);
  }
  destroy(ref: string, actor: Actor): Promise<Sandbox> {
    return destroy(this.ctx, ref, actor);
  }
  /** Tears down a sandbox by id whatever its tearable status (failed, destroying, ...): compensation and the sweeper. */
  tearDown(id: string, actor: Actor, opts: TeardownOptions = {}): Promise<boolean> {
    return tearDown(this.ctx, id, actor, opts);
  }
  extendTtl(ref: string, hours: number, actor: Actor): Promise<{ sandbox: Sandbox; notices: string[] }> {
    return extendTtl(this.ctx, ref, hours, actor);
  }
  registerGuild(ref: string, guildId: string, actor: Actor): Promise<{ sandbox: Sandbox; outcome: GuildRegistration }> {
    return registerGuild(this.ctx, ref, guildId, actor);
  }
  unregisterGuild(ref: string, guildId: string, actor: Actor, reason = 'requested'): Promise<Sandbox> {
    return unregisterGuild(this.ctx, ref, guildId, actor, reason);
  }

  /** Autocomplete choices: at most 25 live sandboxes by name prefix, one indexed query. */
  suggest(typed: string, actor: Actor): Promise<{ name: string; status: SandboxStatus }[]> {
    return suggest(this.ctx, typed, actor);
  }

  /** Releases a guild's own mapping and claims, whichever sandbox holds them (unregister-guild without a sandbox). */
  releaseGuild(guildId: string, actor: Actor, reason = 'requested'): Promise<GuildRelease[]> {
    return releaseGuild(this.ctx, guildId, actor, reason);
  }
  async getHealth(ref: string, actor: Actor): Promise<SandboxHealth> {
    return (await getStatus(this.ctx, ref, actor)).health;
  }
  getStatus(ref: string, actor: Actor): Promise<{ sandbox: Sandbox; health: SandboxHealth }> {
    return getStatus(this.ctx, ref, actor);
  }
  /** Re-keys every live sandbox's role and external credentials (after SANDBOX_CREDENTIAL_SECRET changed). Admins only; audited. */
  rotateCredentials(actor: Actor): Promise<RotateResult> {
    return rotateCredentials(this.ctx, actor);
  }
  getConnectionDetails(ref: string, actor: Actor): Promise<Record<string, string>> {
    return getConnectionDetails(this.ctx, ref, actor);
  }
}
