export const SANDBOX_STATUSES = ['pending', 'creating', 'running', 'expired', 'destroying', 'destroyed', 'failed'] as const;
export type SandboxStatus = (typeof SANDBOX_STATUSES)[number];

/**
 * The state machine. `expired → running` happens only through extend.
 * Destroy of a pending/creating sandbox is refused; the reconciler handles stuck rows.
 * New rows start as `creating` (`pending` is kept for old rows). A teardown with no external
 * work goes `running|expired|failed → destroyed` in one transaction; `destroying` is for
 * teardowns that finish outside PostgreSQL (ExternalResources) after the commit.
 */
export const TRANSITIONS: Readonly<Record<SandboxStatus, readonly SandboxStatus[]>> = {
  pending: ['creating', 'failed'],
  creating: ['running', 'failed'],
  running: ['expired', 'destroying', 'destroyed', 'failed'],
  expired: ['running', 'destroying', 'destroyed', 'failed'],
  failed: ['destroying', 'destroyed'],
  destroying: ['destroyed'],
  destroyed: [],
};

export const canTransition = (from: SandboxStatus, to: SandboxStatus): boolean => TRANSITIONS[from].includes(to);

/** Statuses that count against the per-owner limit. */
export const COUNTED_STATUSES: readonly SandboxStatus[] = ['pending', 'creating', 'running', 'expired', 'destroying'];

/** Who performs an operation. Operators and system jobs are admins. */
export type Actor =
  | { kind: 'discord'; id: string }
  | { kind: 'operator'; name: string }
  | { kind: 'system'; job: string };

/** The text stored in audit rows and claims: `discord:<id>`, `cli:<name>`, `system:<job>`. */
export function actorLabel(actor: Actor): string {
  switch (actor.kind) {
    case 'discord':
      return `discord:${actor.id}`;
    case 'operator':
      return `cli:${actor.name}`;
    case 'system':
      return `system:${actor.job}`;
  }
}

/** The owner a sandbox gets when this actor creates it without naming one. */
export function defaultOwner(actor: Actor): string {
  switch (actor.kind) {
    case 'discord':
      return actor.id;
    case 'operator':
      return `cli:${actor.name}`;
    case 'system':
      return `system:${actor.job}`;
  }
}

export interface Sandbox {
  id: string;
  name: string;
  owner: string;
  status: SandboxStatus;
  schemaName: string;
  guildIds: string[];
  createdAt: Date;
  expiresAt: Date;
  destroyedAt: Date | null;
  lastActivityAt: Date;
  metadata: Record<string, unknown>;
  /** The template version its schema was built from or upgraded to (`<file>@<checksum>` or 'initial'); null before templates. */
  templateVersion?: string | null;
  /** The database server holding its schema and role: `default` (the control server) or a SANDBOX_DATABASE_SERVERS name. */
  server: string;
}

export interface CreateInput {
  name?: string | undefined;
  /** Skip the template's seed rows (`create --empty`). */
  empty?: boolean | undefined;
  owner?: string | undefined;
  ttlHours?: number | undefined;
  guildIds?: readonly string[] | undefined;
  metadata?: Record<string, unknown> | undefined;
}

export interface CreateResult {
  sandbox: Sandbox;
  /** Human-readable notices, e.g. that the TTL was capped. */
  notices: string[];
  /** Guilds recorded as pending claims because the bot is not in them yet. */
  claimedGuildIds: string[];
}

export interface ListFilter {
  owner?: string | undefined;
  status?: SandboxStatus | undefined;
  includeDestroyed?: boolean | undefined;
  /** Every owner's sandboxes; admins only. */
  allOwners?: boolean | undefined;
  limit?: number | undefined;
}

export type GuildRegistration = 'mapped' | 'already-mapped' | 'claimed';

export interface SchemaStats {
  exists: boolean;
  tables: { tableName: string; rowCount: number }[];
  totalRows: number;
}

export type CheckState = 'ok' | 'missing' | 'error' | 'disabled';

export interface SandboxHealth {
  sandboxId: string;
  status: SandboxStatus;
  healthy: boolean;
  schema: SchemaStats & { state: CheckState };
  guildCount: number;
  ttlRemainingMs: number;
  redis: { state: CheckState; detail?: string };
  /** The sandbox's event stream: `disabled` without event routing; messages and bytes when it exists. */
  events: { state: CheckState; messages?: number; bytes?: number; detail?: string };
  checkedAt: Date;
}

export interface SandboxLimits {
  maxPerOwner: number;
  defaultTtlHours: number;
  maxTtlHours: number;
  /** Counted sandboxes (every status but destroyed and failed) across all owners. */
  maxTotal: number;
  /** A guild claim lapses after this many hours. */
  claimTtlHours: number;
  /** Live claims one claimant may hold. */
  maxClaimsPerUser: number;
  /** How long a destroy in progress (two-phase, `destroying`) is leased to its caller before the sweeper may retry it. */
  destroyLeaseMs: number;
  /** Join checks a claim may have deferred (transient Discord errors) before it is no longer retried. */
  maxClaimCheckAttempts: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  maxPerOwner: 5,
  defaultTtlHours: 24,
  maxTtlHours: 168,
  maxTotal: 500,
  claimTtlHours: 72,
  maxClaimsPerUser: 10,
  maxClaimCheckAttempts: 5,
  destroyLeaseMs: 60_000,
};
