/**
 * A per-sandbox resource that lives outside the control database's transaction (NATS stream, Redis ACL user, Redis keys).
 * Same shape as core's `src/sandbox/resources.ts` (shared contract); once that file is merged this one re-exports it.
 */
export interface ExternalResource {
  /** Short stable name used in audit rows, logs and metrics: 'stream' | 'redis-acl' | 'redis-keys'. */
  readonly kind: string;
  /** When true, a failure to create it never fails a sandbox create. */
  readonly bestEffort: boolean;
  /** Makes it for this sandbox. Idempotent: an existing one is kept (and reconfigured if needed). */
  ensure(sandboxId: string): Promise<void>;
  /** Removes it. Idempotent: absent is success. */
  remove(sandboxId: string): Promise<void>;
  exists(sandboxId: string): Promise<boolean>;
  /** Hyphenated ids of every sandbox that has one on this server (decoded from the exact name pattern). */
  list(): Promise<string[]>;
}

/** A gateway dispatch as Discord sends it (op 0). */
export interface GatewayDispatch {
  op: number;
  t: string | null;
  s: number | null;
  d: unknown;
}
