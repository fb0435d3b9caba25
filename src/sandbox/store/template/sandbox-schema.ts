import { ErrorCode, SandboxError, isDuplicateSchema } from '../../errors.ts';
import { isUuid } from '../../validation.ts';
import type { SqlExecutor } from './sql.ts';
import { GENERATOR_VERSION } from './generator.ts';
import { DEFAULT_TEMPLATE, assertTemplateName, cloneViaCache, refreshTemplateCache, resetSchemaToTemplate, type BuildOptions, type CloneCall } from './template.ts';

/**
 * Sandbox-id entry points for the provisioner/manager. The schema name comes from the database's one
 * naming function (sandbox_schema_name), never from TypeScript, so the recorded and the real name
 * cannot differ. Each runs in the caller's transaction.
 */
export interface TemplatedSchema {
  schemaName: string;
  /** Record on the sandbox row (sandboxes.template_version). Clones get the source's recorded version from the caller. */
  templateVersion: string;
}

const assertId = (id: string): void => {
  if (!isUuid(id)) throw new SandboxError(ErrorCode.InvalidInput, `Invalid sandbox id ${JSON.stringify(id.slice(0, 40))}.`);
};

async function nameFor(sql: SqlExecutor, sandboxId: string): Promise<string> {
  assertId(sandboxId);
  const [row] = await sql.query<{ name: string }>(`SELECT sandbox_schema_name($1::uuid) AS name`, [sandboxId]);
  return row!.name;
}

const schemaFailed = (err: unknown, sandboxId: string, what: string): SandboxError => {
  if (err instanceof SandboxError) return err;
  const collision = isDuplicateSchema(err);
  return new SandboxError(
    ErrorCode.SchemaFailed,
    collision ? 'A schema with this sandbox’s name already exists; it was left untouched.' : `The sandbox schema could not be ${what}.`,
    { sandboxId, collision },
    { cause: err },
  );
};

/**
 * Creates the sandbox's schema from the template (seed unless `empty`). With a cached DDL entry this
 * is ONE statement: the advisory lock (when `advisoryKey` is given, taken first: FROM is evaluated
 * before the target list), the name from sandbox_schema_name(), and the cached DDL. On a cache miss
 * the template is read from the catalog once, cached, and the build retried.
 */
export async function createSandboxSchema(sql: SqlExecutor, sandboxId: string, opts: BuildOptions & { advisoryKey?: string } = {}): Promise<TemplatedSchema> {
  assertId(sandboxId);
  const template = opts.template ?? DEFAULT_TEMPLATE;
  assertTemplateName(template);
  const lock = opts.advisoryKey ? ', (SELECT pg_advisory_xact_lock(hashtextextended($5::text, 0))) AS k' : '';
  const params: unknown[] = [sandboxId, template, GENERATOR_VERSION, !opts.empty];
  if (opts.advisoryKey) params.push(opts.advisoryKey);
  try {
    const call = async (): Promise<{ name: string; v: string | null }> => {
      const [row] = await sql.query<{ name: string; v: string | null }>(
        `SELECT n.name, sandbox_template_instantiate(n.name, $2::text, $3::int4, $4::boolean) AS v
         FROM (SELECT sandbox_schema_name($1::uuid) AS name) AS n${lock}`,
        params,
      );
      return row!;
    };
    const first = await call();
    if (first.v !== null) return { schemaName: first.name, templateVersion: first.v };
    await refreshTemplateCache(sql, template);
    const second = await call();
    if (second.v === null) throw new SandboxError(ErrorCode.SchemaFailed, `The template ${template} changed while the sandbox was being built; try again.`);
    return { schemaName: second.name, templateVersion: second.v };
  } catch (err) {
    throw schemaFailed(err, sandboxId, 'created');
  }
}

/** Puts the sandbox's schema back to the template's current version (structure and seed unless `empty`). */
export async function resetSandboxSchema(sql: SqlExecutor, sandboxId: string, opts: BuildOptions = {}): Promise<TemplatedSchema> {
  const schemaName = await nameFor(sql, sandboxId);
  try {
    return { schemaName, templateVersion: await resetSchemaToTemplate(sql, schemaName, opts) };
  } catch (err) {
    throw schemaFailed(err, sandboxId, 'reset');
  }
}

/** Creates the target sandbox's schema as a copy of the source sandbox's schema (structure, rows, sequences). */
export async function cloneSandboxSchema(sql: SqlExecutor, sourceId: string, targetId: string): Promise<{ schemaName: string }> {
  assertId(sourceId);
  assertId(targetId);
  if (sourceId === targetId) throw new SandboxError(ErrorCode.InvalidInput, 'A sandbox cannot be cloned onto itself.');
  // ONE statement on a cache hit: both names from sandbox_schema_name(), the fingerprint check and the build.
  const call: CloneCall = async (fingerprint, statements) => {
    const [row] = await sql.query<{ source: string; target: string; fp: string | null }>(
      `SELECT n.source, n.target, sandbox_clone_if_unchanged(n.source, n.target, $3::text, $4::jsonb) AS fp
       FROM (SELECT sandbox_schema_name($1::uuid) AS source, sandbox_schema_name($2::uuid) AS target) n`,
      [sourceId, targetId, fingerprint, statements],
    );
    return row!;
  };
  try {
    return { schemaName: (await cloneViaCache(sql, `sandbox:${sourceId}`, call)).target };
  } catch (err) {
    if (err instanceof SandboxError && err.code === ErrorCode.NotFound) {
      throw new SandboxError(ErrorCode.SchemaFailed, 'The source sandbox has no schema to clone.', { sandboxId: sourceId });
    }
    throw schemaFailed(err, targetId, 'cloned');
  }
}
