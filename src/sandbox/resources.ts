import type { Prisma } from '../generated/prisma/client.ts';
import type { Db, Tx } from './store/store.ts';

/**
 * Per-sandbox resources that live outside the control database's transaction (NATS stream,
 * Redis ACL user, Redis keys). The manager ensures them before the provisioning transaction and
 * removes them by compensation when it fails; destroy removes them after the teardown commit
 * (`destroying`), and the sweeper retries removals, re-ensures missing ones and sweeps orphans.
 */
export interface ExternalResource {
  /** Short stable name used in audit rows, logs and metrics: 'stream' | 'redis-acl' | 'redis-keys'. */
  readonly kind: string;
  /** When true, a failure to create it never fails a sandbox create: it is logged, health shows it missing, and the sweeper retries. */
  readonly bestEffort: boolean;
  /** Makes it for this sandbox. Idempotent: an existing one is kept (and reconfigured if needed). */
  ensure(sandboxId: string): Promise<void>;
  /** True when ensure() makes nothing (Redis keys appear when the worker writes them): the sweeper's missing pass skips it. */
  readonly nothingToEnsure?: boolean;
  /** Removes it. Idempotent: absent is success. */
  remove(sandboxId: string): Promise<void>;
  exists(sandboxId: string): Promise<boolean>;
  /** Hyphenated ids of every sandbox that has one on this server (decoded from the exact name pattern), for the sweeper's
   *  missing/orphan passes. Server-wide resources: the sweeper removes one only when THIS control database has a row for
   *  the id that is destroyed or failed; an id with no row is reported (log + metric), never touched. */
  list(): Promise<string[]>;
  /** Optional: empties it but keeps it (reset: the stream's messages, the Redis keys). Called after the reset commit;
   *  idempotent, absent is success. A resource without purge is left as it is by a reset. */
  purge?(sandboxId: string): Promise<void>;
}

/**
 * A per-sandbox object on the PostgreSQL server itself (the login role; later others), made and
 * dropped INSIDE the provisioning and teardown transactions, after the schema, so it commits or rolls
 * back with it. Implementations live in src/sandbox/store (no SQL elsewhere).
 */
export interface PostgresResource {
  /** Short stable name for audit rows, logs and metrics: 'role'. */
  readonly kind: string;
  /**
   * Makes it for a sandbox whose schema exists in `tx`. Idempotent: on an existing one it re-keys and
   * re-grants, so a template reset or clone that re-creates the schema calls it again (regrant).
   */
  create(tx: Tx, sandboxId: string, prepared?: PreparedCreate): Promise<unknown>;
  /**
   * Optional: starts the part of create() that needs no database (the role's SCRAM verifier, a
   * PBKDF2 on the thread pool) before the provisioning transaction, so it overlaps the schema DDL
   * instead of following it. create() takes what it returns.
   */
  prepare?(sandboxId: string): PreparedCreate;
  /**
   * create() as a SQL expression, for the provisioning transaction's last statement (see
   * SandboxStore.completeCreate), which evaluates it instead of sending a statement of its own.
   */
  createExpression(sandboxId: string, prepared?: PreparedCreate): Promise<Prisma.Sql>;
  /** Removes it. Idempotent: true when something was dropped. */
  drop(tx: Tx, sandboxId: string): Promise<boolean>;
  /**
   * drop() as a boolean SQL expression (true when something was dropped). The teardown evaluates it
   * inside its own statement, before the schema drop, instead of sending a statement of its own.
   */
  dropExpression(sandboxId: string): Prisma.Sql;
  /**
   * Optional: drops what this kind keeps per control database rather than per sandbox (the roles' group,
   * `sandbox_connect_<database oid>`) whose database no longer exists on the server. Returns their names.
   */
  dropOrphanGroups?(db: Db): Promise<string[]>;
  /** Of these ids, those that have none (the sweeper's missing pass). */
  missingAmong(db: Db, sandboxIds: string[]): Promise<string[]>;
  /**
   * A keyset slice (by name) of every one on the server, as hyphenated ids, after `after` (the opaque cursor
   * of the previous slice, null to start). Server-wide: other control databases' sandboxes appear too.
   */
  listSlice(db: Db, after: string | null, limit: number): Promise<{ ids: string[]; next: string | null }>;
}

/** What PostgresResource.prepare() started for one sandbox; a rejection surfaces in create(), never unhandled. */
export class PreparedCreate {
  constructor(
    readonly sandboxId: string,
    readonly value: Promise<string>,
  ) {
    // create() may never run (the DDL failed first): the rejection must not go unhandled.
    value.catch(() => undefined);
  }
}
