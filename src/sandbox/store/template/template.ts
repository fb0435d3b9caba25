import { createHash } from 'node:crypto';
import { ErrorCode, SandboxError } from '../../errors.ts';
import { GENERATOR_VERSION, generateSchemaDdl, type SchemaDdl } from './generator.ts';
import { SCHEMA_IDENT_RE, render, type SqlExecutor } from './sql.ts';

/** The default template schema, made by our migration with today's three tables. */
export const DEFAULT_TEMPLATE = 'sandbox_template';

/** Same rule as is_sandbox_schema_name(): sandbox_<32 hex>. */
const SANDBOX_SCHEMA_RE = /^sandbox_[0-9a-f]{32}$/;

export function assertTemplateName(template: string): void {
  if (!SCHEMA_IDENT_RE.test(template) || SANDBOX_SCHEMA_RE.test(template) || template === 'public' || template.startsWith('pg_')) {
    throw new SandboxError(ErrorCode.InvalidInput, `Invalid template schema name ${JSON.stringify(template.slice(0, 70))}: use lower-case letters, digits and _ (not public, pg_*, or a sandbox's own schema name).`);
  }
}

export function assertSandboxSchema(schema: string): void {
  if (!SANDBOX_SCHEMA_RE.test(schema)) throw new SandboxError(ErrorCode.InvalidInput, `Not a sandbox schema name: ${JSON.stringify(schema.slice(0, 70))}`);
}

/** `<last applied file>@<its checksum>`, or 'initial' when no file has been applied. */
export async function templateVersion(sql: SqlExecutor, template = DEFAULT_TEMPLATE): Promise<string> {
  assertTemplateName(template);
  const [row] = await sql.query<{ v: string }>(`SELECT sandbox_template_version($1::text) AS v`, [template]);
  return row!.v;
}

/** The DDL cache key: sha256 of generator version, template name and template version (same as sandbox_template_cache_key()). */
export const templateCacheKey = (template: string, version: string, generator = GENERATOR_VERSION): string =>
  createHash('sha256').update(`${generator}\n${template}\n${version}`, 'utf8').digest('hex');

/**
 * Reads the template from the catalog and stores its DDL under the current version's key, unless
 * an entry is there already. Returns the key. Must run inside a transaction (catalog read uses SET LOCAL).
 */
export async function refreshTemplateCache(sql: SqlExecutor, template = DEFAULT_TEMPLATE, opts: { force?: boolean } = {}): Promise<{ key: string; version: string; generated: boolean }> {
  const version = await templateVersion(sql, template);
  const key = templateCacheKey(template, version);
  if (!opts.force) {
    const [hit] = await sql.query(`SELECT 1 FROM sandbox_template_cache WHERE cache_key = $1`, [key]);
    if (hit) return { key, version, generated: false };
  }
  const d = await generateSchemaDdl(sql, template);
  await sql.query(
    `INSERT INTO sandbox_template_cache (cache_key, template, version, ddl, seed, post) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb)
     ON CONFLICT (cache_key) DO UPDATE SET ddl = EXCLUDED.ddl, seed = EXCLUDED.seed, post = EXCLUDED.post, created_at = now()`,
    [key, template, version, JSON.stringify(d.ddl), JSON.stringify(d.seed), JSON.stringify(d.post)],
  );
  return { key, version, generated: true };
}

export interface BuildOptions {
  template?: string;
  /** Skip the template's rows (`create --empty`). */
  empty?: boolean;
}

/**
 * Creates `schema` (which must not exist) from the template's current version: structure, then the
 * template's rows unless `empty`. One round trip when the DDL is cached; on a miss it reads the
 * catalog once, caches, and retries. Returns the template version built (record it on the sandbox).
 * Run inside the provisioning transaction.
 */
export async function createSchemaFromTemplate(sql: SqlExecutor, schema: string, opts: BuildOptions = {}): Promise<string> {
  return viaCache(sql, 'sandbox_template_instantiate', schema, opts);
}

/**
 * Puts `schema` back to the template's current version (drop and rebuild, structure and seed) in the
 * caller's transaction, so other connections see the old state or the new one, never half of it.
 * Returns the template version it now has.
 */
export async function resetSchemaToTemplate(sql: SqlExecutor, schema: string, opts: BuildOptions = {}): Promise<string> {
  return viaCache(sql, 'sandbox_template_reset', schema, opts);
}

async function viaCache(sql: SqlExecutor, fn: 'sandbox_template_instantiate' | 'sandbox_template_reset', schema: string, opts: BuildOptions): Promise<string> {
  const template = opts.template ?? DEFAULT_TEMPLATE;
  assertTemplateName(template);
  assertSandboxSchema(schema);
  const call = async (): Promise<string | null> => {
    const [row] = await sql.query<{ v: string | null }>(`SELECT ${fn}($1::text, $2::text, $3::int4, $4::boolean) AS v`, [
      schema,
      template,
      GENERATOR_VERSION,
      !opts.empty,
    ]);
    return row!.v;
  };
  const first = await call();
  if (first !== null) return first;
  await refreshTemplateCache(sql, template);
  const second = await call();
  if (second === null) throw new SandboxError(ErrorCode.SchemaFailed, `The template ${template} changed while the sandbox was being built; try again.`);
  return second;
}

/** Generated DDL of recently cloned sources, with the catalog fingerprint it was read at (a "golden" sandbox cloned often is read once). */
const cloneDdlCache = new Map<string, { fingerprint: string; ddl: SchemaDdl }>();
const CLONE_CACHE_SIZE = 64;

const cloneStatements = (d: SchemaDdl, empty: boolean): string[] => (empty ? [...d.ddl, ...d.post] : [...d.ddl, ...d.seed, ...d.post]);

/** One statement naming the source and target schemas and calling sandbox_clone_if_unchanged() on them with the cached fingerprint and statements. */
export type CloneCall = (fingerprint: string | null, statements: string | null) => Promise<{ source: string; target: string; fp: string | null }>;

/**
 * The clone core. `call` runs ONE statement: it names the schemas and calls sandbox_clone_if_unchanged(),
 * which builds the target from the cached statements when the source's catalog fingerprint
 * (sandbox_schema_fingerprint(): the oids and xmins of its catalog rows, so any DDL changes it) is
 * the cached one. On a miss or a changed source the catalog is read (which also refuses object kinds a
 * sandbox cannot copy), cached under `cacheKey` with that fingerprint, and the copy built.
 */
export async function cloneViaCache(sql: SqlExecutor, cacheKey: string, call: CloneCall, opts: { empty?: boolean } = {}): Promise<{ source: string; target: string; ddl: SchemaDdl }> {
  const empty = opts.empty ?? false;
  const cached = cloneDdlCache.get(cacheKey);
  const r = await call(cached?.fingerprint ?? null, cached ? JSON.stringify(cloneStatements(cached.ddl, empty)) : null);
  assertSandboxSchema(r.source);
  assertSandboxSchema(r.target);
  if (r.fp === null) throw new SandboxError(ErrorCode.NotFound, `Schema ${r.source} does not exist.`);
  if (cached && r.fp === cached.fingerprint) return { source: r.source, target: r.target, ddl: cached.ddl };
  const d = await generateSchemaDdl(sql, r.source);
  cloneDdlCache.delete(cacheKey);
  cloneDdlCache.set(cacheKey, { fingerprint: r.fp, ddl: d });
  if (cloneDdlCache.size > CLONE_CACHE_SIZE) cloneDdlCache.delete(cloneDdlCache.keys().next().value!);
  await sql.query(`SELECT 1 AS ok FROM sandbox_build_schema($1::text, $2::jsonb)`, [r.target, JSON.stringify(cloneStatements(d, empty))]);
  return { source: r.source, target: r.target, ddl: d };
}

/**
 * Creates `target` as a copy of `source`: structure read from the source's own catalog (so a sandbox
 * whose tables changed since its template is copied as it is), rows, and sequence states. Run inside
 * the clone transaction: a failure leaves nothing. (Cached by schema name; see cloneViaCache.)
 */
export async function cloneSchema(sql: SqlExecutor, source: string, target: string, opts: { empty?: boolean } = {}): Promise<SchemaDdl> {
  assertSandboxSchema(source);
  assertSandboxSchema(target);
  if (source === target) throw new SandboxError(ErrorCode.InvalidInput, 'A sandbox cannot be cloned onto itself.');
  const call: CloneCall = async (fingerprint, statements) => {
    const [row] = await sql.query<{ fp: string | null }>(`SELECT sandbox_clone_if_unchanged($1::text, $2::text, $3::text, $4::jsonb) AS fp`, [source, target, fingerprint, statements]);
    return { source, target, fp: row?.fp ?? null };
  };
  return (await cloneViaCache(sql, `schema:${source}`, call, opts)).ddl;
}

/** The generated statements for `schema`, rendered as plain SQL (for inspection, tests and the bench). */
export function renderDdl(d: SchemaDdl, schema: string, opts: { empty?: boolean } = {}): string[] {
  return (opts.empty ? [...d.ddl, ...d.post] : [...d.ddl, ...d.seed, ...d.post]).map((s) => render(s, schema));
}
