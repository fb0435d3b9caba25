// Server-side names of a sandbox's resources, derived from its id. No imports: the SDK uses it too.
// Hyphenated UUID in subjects, Redis keys and channels; the 32-hex form in server-side names
// (schema, PostgreSQL role, Redis ACL user, stream), matching sandbox_schema_name() in SQL.

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Exactly the pattern of a sandbox schema, role or ACL user name. */
export const SANDBOX_IDENTITY_RE = /^sandbox_([0-9a-f]{32})$/;

/** The canonical (lowercase, hyphenated) form of a sandbox id; throws on anything else. */
export function canonicalSandboxId(id: string): string {
  const lower = String(id).toLowerCase();
  if (!UUID_RE.test(lower)) throw new TypeError(`Not a sandbox id: ${JSON.stringify(String(id).slice(0, 40))}`);
  return lower;
}

export const sandboxHex = (id: string): string => canonicalSandboxId(id).replaceAll('-', '');

/** `sandbox_<32 hex>`: the schema, the PostgreSQL role and the Redis ACL user all use it. */
export const sandboxIdentityName = (id: string): string => `sandbox_${sandboxHex(id)}`;

/** The hyphenated id encoded in an exact `sandbox_<32 hex>` name, or undefined for any other name. */
export function sandboxIdFromIdentityName(name: string): string | undefined {
  const m = SANDBOX_IDENTITY_RE.exec(name);
  if (!m) return undefined;
  const h = m[1]!;
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** `sandbox:<uuid>:`: the prefix of every Redis key and channel the sandbox owns. */
export const sandboxRedisPrefix = (id: string): string => `sandbox:${canonicalSandboxId(id)}:`;

/** `SANDBOX_<32 hex>`: the sandbox's JetStream stream. */
export const sandboxStreamName = (id: string): string => `SANDBOX_${sandboxHex(id)}`;

/** `sandbox.<uuid>.events.>`: every event subject of the sandbox. */
export const sandboxEventsSubject = (id: string): string => `sandbox.${canonicalSandboxId(id)}.events.>`;
