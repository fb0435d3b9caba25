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
