import { TX_OPTIONS, type PrismaClient } from '../../db/database.ts';
import type { Logger } from '../../logger.ts';
import { ErrorCode, SandboxError } from '../errors.ts';
import type { SchemaStats } from '../types.ts';
import { SCHEMA_NAME_RE, isUuid } from '../validation.ts';
import { upgradeSandboxSchema } from './template/apply.ts';
import { cloneSandboxSchema, createSandboxSchema, resetSandboxSchema, type TemplatedSchema } from './template/sandbox-schema.ts';
import { prismaExecutor, type PrismaRaw } from './template/sql.ts';

/**
 * The schema half of the store: the only code that calls the schema-management SQL functions.
 * Orphan and listing queries range-scan pg_namespace's name index (`sandbox_` ≤ name < `sandbox\``,
 * the backquote being the character after `_`) before the exact pattern is applied.
 */

/** Anything that can run raw SQL: the Prisma client or an interactive transaction. */
export type Sql = Pick<PrismaClient, '$queryRaw' | '$executeRaw'>;

const assertId = (sandboxId: string): void => {
  if (!isUuid(sandboxId)) throw new SandboxError(ErrorCode.InvalidInput, `Invalid sandbox id ${JSON.stringify(sandboxId.slice(0, 40))}.`);
};

/**
 * Thin, typed access to the PL/pgSQL schema-management functions. The schema name is derived
 * in SQL only (sandbox_schema_name), so the name recorded and the name created cannot differ.
 */
export class SchemaProvisioner {
  constructor(
    private readonly db: PrismaClient,
    private readonly logger: Logger,
  ) {}

  /**
   * Builds the sandbox's schema from the template's cached DDL (structure, and the seed rows unless
   * `empty`) in the caller's transaction. Returns the schema name and the template version built.
   * An existing schema is an error (SANDBOX_005 with `collision`), never adopted.
   */
  async buildSchema(sandboxId: string, tx: Sql & PrismaRaw, opts: { advisoryKey?: string; empty?: boolean; template?: string } = {}): Promise<TemplatedSchema> {
    const built = await createSandboxSchema(prismaExecutor(tx), sandboxId, opts);
    this.logger.debug({ sandboxId, ...built }, 'schema built from template');
    return built;
  }

  /** Puts the sandbox's schema back to the template's current version, in the caller's transaction. */
  resetSchema(sandboxId: string, tx: Sql & PrismaRaw, opts: { empty?: boolean; template?: string } = {}): Promise<TemplatedSchema> {
    return resetSandboxSchema(prismaExecutor(tx), sandboxId, opts);
  }

  /** Creates the target's schema as a copy of the source's (structure, rows, sequences), in the caller's transaction. */
  cloneSchema(sourceId: string, targetId: string, tx: Sql & PrismaRaw): Promise<{ schemaName: string }> {
    return cloneSandboxSchema(prismaExecutor(tx), sourceId, targetId);
  }

  /** Applies the template files recorded after `fromVersion` to the sandbox's schema, in the caller's transaction. */
  async upgradeSchema(schemaName: string, fromVersion: string, tx: Sql & PrismaRaw, opts: { template?: string } = {}): Promise<{ version: string; applied: string[] }> {
    return upgradeSandboxSchema(prismaExecutor(tx), schemaName, fromVersion, opts);
  }

  /** Idempotent. Returns true when a schema was dropped. */
  async dropSchema(sandboxId: string, sql: Sql = this.db): Promise<boolean> {
    assertId(sandboxId);
    const [row] = await sql.$queryRaw<{ dropped: boolean }[]>`SELECT drop_sandbox_schema(${sandboxId}::uuid) AS dropped`;
    return row!.dropped;
  }

  async schemaExists(sandboxId: string, sql: Sql = this.db): Promise<boolean> {
    assertId(sandboxId);
    const [row] = await sql.$queryRaw<{ exists: boolean }[]>`SELECT sandbox_schema_exists(${sandboxId}::uuid) AS exists`;
    return row!.exists;
  }

  async getSchemaStats(sandboxId: string, sql: Sql = this.db): Promise<SchemaStats> {
    assertId(sandboxId);
    const exists = await this.schemaExists(sandboxId, sql);
    const rows = await sql.$queryRaw<{ table_name: string; row_count: bigint }[]>`
      SELECT table_name, row_count FROM get_sandbox_schema_stats(${sandboxId}::uuid)`;
    const tables = rows.map((r) => ({ tableName: r.table_name, rowCount: Number(r.row_count) }));
    return { exists, tables, totalRows: tables.reduce((n, t) => n + t.rowCount, 0) };
  }

  /** Every schema whose name matches the sandbox pattern exactly (a regex, not LIKE). */
  async listSchemas(sql: Sql = this.db): Promise<string[]> {
    const rows = await sql.$queryRaw<{ nspname: string }[]>`
      SELECT nspname::text AS nspname FROM pg_namespace
      WHERE nspname >= 'sandbox_'::name AND nspname < 'sandbox\`'::name AND is_sandbox_schema_name(nspname::text) ORDER BY nspname`;
    return rows.map((r) => r.nspname);
  }

  /**
   * A keyset slice (by name) of the sandbox-pattern schemas of the database `sql` is connected to
   * (another server's: the per-server orphan pass), after `after`. `next` is null at the end.
   */
  async schemaSlice(sql: Sql, after: string | null, limit: number): Promise<{ schemas: string[]; next: string | null }> {
    const rows = await sql.$queryRaw<{ nspname: string; pattern: boolean }[]>`
      SELECT nspname::text AS nspname, is_sandbox_schema_name(nspname::text) AS pattern FROM pg_namespace
      WHERE nspname >= 'sandbox_'::name AND nspname < 'sandbox\`'::name AND nspname > ${after ?? 'sandbox_'}::name
      ORDER BY nspname LIMIT ${limit}::int`;
    return { schemas: rows.filter((r) => r.pattern).map((r) => r.nspname), next: rows.length === limit ? rows[rows.length - 1]!.nspname : null };
  }

  /** Which of these schema names exist in the database `sql` is connected to (one probe of pg_namespace's name index each). */
  async existingSchemas(sql: Sql, names: string[]): Promise<Set<string>> {
    if (!names.length) return new Set();
    const rows = await sql.$queryRaw<{ nspname: string }[]>`SELECT nspname::text AS nspname FROM pg_namespace WHERE nspname = ANY(${names}::text[]::name[])`;
    return new Set(rows.map((r) => r.nspname));
  }

  /**
   * Sandbox-pattern schemas with no live (not destroyed) row. One query: a range scan on
   * pg_namespace's name index, then the exact pattern, then an index probe of the live rows.
   * With `limit`, only the next slice of sandbox-pattern schemas after `after` is looked at.
   */
  async findOrphanedSchemas(sql: Sql = this.db, slice: { after?: string | null; limit?: number } = {}): Promise<string[]> {
    return (await this.findOrphanSlice(sql, slice)).orphans;
  }

  private async findOrphanSlice(sql: Sql, slice: { after?: string | null; limit?: number }): Promise<{ orphans: string[]; next: string | null }> {
    const after = slice.after ?? 'sandbox_';
    const limit = slice.limit ?? 2_147_483_647;
    // The slice comes from the name index alone (the regex would make the planner misjudge the
    // range and scan every schema); the exact pattern and the live-row probe (by the unique
    // schema_name index: COLLATE "default", since name's C collation would not use it) follow.
    // One row back, whatever the slice's size: the orphans, the slice's last name and its length.
    const [row] = await sql.$queryRaw<{ orphans: string[]; last: string | null; n: number }[]>`
      WITH slice AS MATERIALIZED (
        SELECT nspname FROM pg_namespace
        WHERE nspname >= 'sandbox_'::name AND nspname < 'sandbox\`'::name AND nspname > ${after}::name
        ORDER BY nspname LIMIT ${limit}::int
      )
      SELECT coalesce(array_agg(n.nspname::text ORDER BY n.nspname) FILTER (
               WHERE is_sandbox_schema_name(n.nspname::text)
                 AND NOT EXISTS (SELECT 1 FROM sandboxes s WHERE s.schema_name = n.nspname::text COLLATE "default" AND s.status <> 'destroyed')
             ), '{}') AS orphans,
             max(n.nspname)::text AS last, count(*)::int AS n
      FROM slice n`;
    return { orphans: row!.orphans, next: row!.n === limit ? row!.last : null };
  }

  /**
   * Drops orphaned schemas (all of them, or one slice: see findOrphanedSchemas). Each is
   * re-checked and dropped in its own transaction under the sandbox's advisory lock, so a sandbox
   * created meanwhile is never touched. `next` is the cursor for the following slice.
   */
  async cleanupOrphanedSchemas(slice: { after?: string | null; limit?: number } = {}): Promise<{ dropped: string[]; failed: { schema: string; error: string }[]; next: string | null }> {
    const dropped: string[] = [];
    const failed: { schema: string; error: string }[] = [];
    const { orphans, next } = await this.findOrphanSlice(this.db, slice);
    for (const schema of orphans) {
      if (!SCHEMA_NAME_RE.test(schema)) continue;
      const id = schemaToId(schema);
      try {
        const done = await this.db.$transaction(async (tx) => {
          await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`sandbox:${id}`}, 0))`;
          const [live] = await tx.$queryRaw<{ n: bigint }[]>`
            SELECT count(*) AS n FROM sandboxes WHERE schema_name = ${schema} AND status <> 'destroyed'`;
          if (Number(live!.n) > 0) return false;
          return this.dropSchema(id, tx);
        }, TX_OPTIONS);
        if (done) {
          dropped.push(schema);
          this.logger.warn({ schemaName: schema }, 'orphaned schema dropped');
        }
      } catch (err) {
        failed.push({ schema, error: (err as Error).message });
        this.logger.error({ schemaName: schema, err }, 'orphaned schema could not be dropped');
      }
    }
    return { dropped, failed, next };
  }
}

/** The inverse of sandbox_schema_name: `sandbox_<32 hex>` back to the hyphenated uuid. */
export function schemaToId(schema: string): string {
  if (!SCHEMA_NAME_RE.test(schema)) throw new SandboxError(ErrorCode.InvalidInput, `Not a sandbox schema name: ${JSON.stringify(schema.slice(0, 70))}`);
  const h = schema.slice('sandbox_'.length);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
