import type { PrismaClient } from '../../db/database.ts';
import { Prisma } from '../../generated/prisma/client.ts';
import { scramSha256Verifier, type SandboxCredentials } from '../credentials.ts';
import { canonicalSandboxId } from '../naming.ts';
import { PreparedCreate, type PostgresResource } from '../resources.ts';

/** Anything that runs raw SQL: the Prisma client or an interactive transaction client. */
export type RoleSql = Pick<PrismaClient, '$queryRaw'>;

export interface SandboxRoleInfo {
  sandboxId: string;
  roleName: string;
  /** Whether the role may connect to this database (a role made by this control database may). */
  connectsHere: boolean;
}

/**
 * The PostgreSQL side of a sandbox's identity: its login role `sandbox_<32 hex>`. Create and drop run
 * INSIDE the caller's provisioning/teardown transaction (the role and its grants commit or roll back
 * with the schema). The password is derived from the credential secret and sent as a SCRAM verifier.
 * Only for PostgreSQL servers with isolation on: the embedded database has no meaningful roles.
 */
export class SandboxRoles implements PostgresResource {
  readonly kind = 'role';

  constructor(private readonly credentials: SandboxCredentials) {}

  /** Creates the role (or re-keys and re-grants an existing one) after the schema exists in `tx`. Returns the role name. */
  async create(tx: RoleSql, sandboxId: string, prepared?: PreparedCreate): Promise<string> {
    const [row] = await tx.$queryRaw<{ name: string }[]>`SELECT ${await this.createExpression(sandboxId, prepared)} AS name`;
    return row!.name;
  }

  /** create() as an expression (its value is the role name), for the provisioning transaction's last statement. */
  async createExpression(sandboxId: string, prepared?: PreparedCreate): Promise<Prisma.Sql> {
    const id = canonicalSandboxId(sandboxId);
    const verifier = prepared && canonicalSandboxId(prepared.sandboxId) === id ? await prepared.value : await this.verifierFor(id);
    return Prisma.sql`create_sandbox_role(${id}::uuid, ${verifier})`;
  }

  /** Starts computing the role's SCRAM verifier (PBKDF2 on the thread pool) so that it overlaps the schema DDL. */
  prepare(sandboxId: string): PreparedCreate {
    return new PreparedCreate(sandboxId, this.verifierFor(canonicalSandboxId(sandboxId)));
  }

  private verifierFor(id: string): Promise<string> {
    return scramSha256Verifier(this.credentials.postgresPassword(id));
  }

  /** Idempotent: true when a role was dropped. Call after (or before) dropping the schema, in the same transaction. */
  async drop(tx: RoleSql, sandboxId: string): Promise<boolean> {
    const [row] = await tx.$queryRaw<{ dropped: boolean }[]>`SELECT ${this.dropExpression(sandboxId)} AS dropped`;
    return row!.dropped;
  }

  /** drop() as an expression, for the teardown statement (see PostgresResource.dropExpression). */
  dropExpression(sandboxId: string): Prisma.Sql {
    return Prisma.sql`drop_sandbox_role(${canonicalSandboxId(sandboxId)}::uuid)`;
  }

  /** Re-keys the role with the current secret (rotate-credentials). False when it does not exist. */
  async rotate(tx: RoleSql, sandboxId: string): Promise<boolean> {
    const id = canonicalSandboxId(sandboxId);
    const verifier = await scramSha256Verifier(this.credentials.postgresPassword(id));
    const [row] = await tx.$queryRaw<{ done: boolean }[]>`SELECT set_sandbox_role_password(${id}::uuid, ${verifier}) AS done`;
    return row!.done;
  }

  /** Drops `sandbox_connect_<oid>` group roles whose database is gone (exact pattern; never a live database's). */
  async dropOrphanGroups(db: RoleSql): Promise<string[]> {
    const rows = await db.$queryRaw<{ name: string }[]>`SELECT drop_orphan_sandbox_connect_roles() AS name`;
    return rows.map((r) => r.name);
  }

  async exists(tx: RoleSql, sandboxId: string): Promise<boolean> {
    const id = canonicalSandboxId(sandboxId);
    const [row] = await tx.$queryRaw<{ exists: boolean }[]>`SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = sandbox_role_name(${id}::uuid)) AS exists`;
    return row!.exists;
  }

  /** Of these ids, those with no role (the sweeper recreates them for live sandboxes). */
  async missingAmong(tx: RoleSql, sandboxIds: string[]): Promise<string[]> {
    if (!sandboxIds.length) return [];
    const ids = sandboxIds.map(canonicalSandboxId);
    const rows = await tx.$queryRaw<{ id: string }[]>`
      SELECT i::text AS id FROM unnest(${ids}::text[]::uuid[]) AS i
      WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = sandbox_role_name(i))
      ORDER BY i`;
    return rows.map((r) => r.id);
  }

  /**
   * A keyset slice of `sandbox_<32 hex>` roles on the server by name: a range scan of pg_authid's name
   * index (`sandbox_` <= name < `sandbox\``), then the exact pattern. `next` is null at the end.
   */
  async listSlice(tx: RoleSql, after: string | null, limit: number): Promise<{ ids: string[]; next: string | null }> {
    const from = after ?? 'sandbox_';
    const rows = await tx.$queryRaw<{ rolname: string; pattern: boolean }[]>`
      SELECT rolname::text AS rolname, is_sandbox_role_name(rolname::text) AS pattern FROM pg_roles
      WHERE rolname >= 'sandbox_'::name AND rolname < 'sandbox\`'::name AND rolname > ${from}::name
      ORDER BY rolname LIMIT ${limit}::int`;
    const ids = rows.filter((r) => r.pattern).map((r) => hexToId(r.rolname.slice('sandbox_'.length)));
    // The cursor is the last role name looked at (opaque to the caller).
    return { ids, next: rows.length === limit ? rows[rows.length - 1]!.rolname : null };
  }

  /**
   * Every `sandbox_<32 hex>` role on the server (roles are cluster-wide, so other databases' sandboxes
   * appear too). The sweeper drops one only when THIS database has a destroyed or failed row for it.
   */
  async list(tx: RoleSql): Promise<SandboxRoleInfo[]> {
    const rows = await tx.$queryRaw<{ sandbox_id: string; role_name: string; connects_here: boolean }[]>`
      SELECT sandbox_id::text AS sandbox_id, role_name, connects_here FROM list_sandbox_roles()`;
    return rows.map((r) => ({ sandboxId: r.sandbox_id, roleName: r.role_name, connectsHere: r.connects_here }));
  }
}

const hexToId = (h: string): string => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
