import type { Logger } from '../../logger.ts';
import { ErrorCode, SandboxError, toSandboxError } from '../errors.ts';
import type { FaultInjector, FaultPoint } from '../faults.ts';
import type { GuildDirectory } from '../guild-directory.ts';
import type { ExternalResource, PostgresResource } from '../resources.ts';
import type { SchemaProvisioner } from '../store/schemas.ts';
import type { SandboxServers } from '../servers.ts';
import type { SandboxStore } from '../store/store.ts';
import type { Actor, Sandbox, SandboxLimits, SandboxStatus } from '../types.ts';

/** Hooks for metrics; the domain does not depend on prom-client. */
export interface ManagerObserver {
  created?(outcome: 'success' | 'failure', seconds: number): void;
  destroyed?(outcome: 'success' | 'failure', seconds: number): void;
  /** A teardown failed and the row stays `destroying` (or `failed`) for a retry with backoff (SANDBOX_006). */
  teardownFailed?(): void;
  /** A committed transaction changed guild mappings; the in-process route table should catch up now. The operation
   *  waits for a returned promise (at most ROUTES_CHANGED_WAIT_MS) so that its reply follows the routing change. */
  routesChanged?(): void | Promise<void>;
}

export interface HealthProbe {
  ping(): Promise<unknown>;
}

/** The sandbox event streams as the domain sees them (the NATS side lives in src/routing). */
export interface EventsProbe {
  /** NATS_URL without credentials, printed by `env`/`connect` as SANDBOX_NATS_URL. */
  readonly natsUrl: string;
  /** Messages and bytes in the sandbox's stream, undefined when it has none. */
  stats(sandboxId: string): Promise<{ messages: number; bytes: number } | undefined>;
}

/** What every lifecycle job shares: the store, the settings and the hooks. */
export interface LifecycleContext {
  store: SandboxStore;
  schemas: SchemaProvisioner;
  /** The database servers schemas are placed on (`default`, the control database, alone unless SANDBOX_DATABASE_SERVERS). */
  servers: SandboxServers;
  limits: SandboxLimits;
  log: Logger;
  admins: Set<string>;
  guilds: GuildDirectory;
  clock: () => Date;
  newId: () => string;
  faults: FaultInjector;
  observer: ManagerObserver;
  resources: readonly ExternalResource[];
  /** PostgreSQL-side objects made and dropped inside the provisioning/teardown transactions (the role). */
  postgresResources: readonly PostgresResource[];
  /** Extra connection variables for `sandbox env` and `/sandbox connect` (credentials, NATS). */
  connectionEnv: ((sandbox: Sandbox, serverUrl: string | undefined) => Record<string, string>) | undefined;
  redis: HealthProbe | undefined;
  /** Absent: event routing is off. */
  events?: EventsProbe | undefined;
  /** The template schema new sandboxes are built from (default sandbox_template). */
  template?: string | undefined;
}

export const HOUR = 3_600_000;

export const isAdmin = (ctx: LifecycleContext, actor: Actor): boolean => actor.kind !== 'discord' || ctx.admins.has(actor.id);

/** Admins act for anyone; a Discord user only for themselves. */
export const mayActFor = (ctx: LifecycleContext, actor: Actor, owner: string): boolean =>
  isAdmin(ctx, actor) || (actor.kind === 'discord' && owner === actor.id);

export const fault = (ctx: LifecycleContext, point: FaultPoint, sandboxId?: string): Promise<void> | void =>
  ctx.faults.hit(point, sandboxId ? { sandboxId } : {});

/**
 * The guard of operations on a sandbox's data (extend, reset, upgrade, clone): only a running or
 * expired sandbox qualifies. Otherwise (also when the row is gone) SANDBOX_007, e.g. "demo is
 * destroying; only running or expired sandboxes can be reset." `verb` is the past participle.
 */
export function assertUsable<R extends { status: SandboxStatus }>(row: R | null | undefined, name: string, verb: string): asserts row is R {
  if (row && (row.status === 'running' || row.status === 'expired')) return;
  throw new SandboxError(ErrorCode.InvalidTransition, `${name} is ${row?.status ?? 'gone'}; only running or expired sandboxes can be ${verb}.`, { status: row?.status });
}

/** Public operations never leak raw driver errors: everything leaves as a SandboxError. */
export async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toSandboxError(err);
  }
}

/** How long an operation waits for the in-process route table to apply its own change. */
export const ROUTES_CHANGED_WAIT_MS = 2000;

/**
 * Tells the observer that mappings changed and waits (bounded) until it applied them, so that a reply to the user
 * follows the change; an observer's failure never fails the operation. Never rejects.
 */
export async function routesChanged(ctx: LifecycleContext): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const applied = ctx.observer.routesChanged?.();
    if (!applied) return;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        ctx.log.warn({ waitedMs: ROUTES_CHANGED_WAIT_MS }, 'route table did not apply the change in time; the change feed will');
        resolve();
      }, ROUTES_CHANGED_WAIT_MS);
    });
    await Promise.race([applied, late]);
  } catch (err) {
    ctx.log.warn({ err }, 'routesChanged observer failed');
  } finally {
    clearTimeout(timer);
  }
}

export async function throwGuildMapped(ctx: LifecycleContext, db: Parameters<SandboxStore['findMappedSandboxName']>[0], guildId: string): Promise<never> {
  const name = await ctx.store.findMappedSandboxName(db, guildId);
  throw new SandboxError(ErrorCode.GuildMapped, `Guild ${guildId} is already registered to sandbox ${name ?? 'another sandbox'}.`, { guildId });
}
