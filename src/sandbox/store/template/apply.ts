import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import type { Logger } from '../../../logger.ts';
import { ErrorCode, SandboxError } from '../../errors.ts';
import { generateSchemaDdl } from './generator.ts';
import { pgExecutor, type SqlExecutor } from './sql.ts';
import { DEFAULT_TEMPLATE, assertSandboxSchema, assertTemplateName, refreshTemplateCache } from './template.ts';

export interface TemplateFile {
  name: string;
  sql: string;
  checksum: string;
}

export interface ApplyResult {
  template: string;
  applied: string[];
  skipped: string[];
  version: string;
}

const FILE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*\.sql$/;

export const fileChecksum = (sql: string): string => createHash('sha256').update(sql, 'utf8').digest('hex');

/** The directory's *.sql files, in name order. */
export async function readTemplateFiles(dir: string): Promise<TemplateFile[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new SandboxError(ErrorCode.InvalidInput, `Cannot read template directory ${dir}: ${(err as Error).message}`, {}, { cause: err });
  }
  const names = entries.filter((e) => e.isFile() && e.name.endsWith('.sql')).map((e) => e.name).sort();
  const bad = names.find((n) => !FILE_RE.test(n));
  if (bad) throw new SandboxError(ErrorCode.InvalidInput, `Template file name ${JSON.stringify(bad)} is not allowed: use letters, digits, '.', '_' and '-'.`);
  return Promise.all(names.map(async (name) => {
    const sql = await readFile(join(dir, name), 'utf8');
    return { name, sql, checksum: fileChecksum(sql) };
  }));
}

/**
 * `sandbox template apply <dir>`: applies the directory's *.sql files in name order to the template
 * schema, each in its own transaction with search_path = <template>, pg_catalog, and records each
 * (name, checksum, SQL). Files already recorded with the same checksum are skipped, so a second run is
 * a no-op; a recorded file whose checksum changed, or a new file that sorts before the last applied
 * one, is an error. After each file the template is read back from the catalog: an object kind a
 * sandbox cannot copy fails that file (rolled back), and the DDL cache for the new version is written.
 */
export async function applyTemplateDir(pool: pg.Pool, dir: string, opts: { template?: string; logger?: Logger } = {}): Promise<ApplyResult> {
  const template = opts.template ?? DEFAULT_TEMPLATE;
  assertTemplateName(template);
  const files = await readTemplateFiles(dir);
  const applied: string[] = [];
  const skipped: string[] = [];
  let version = '';
  const client = await pool.connect();
  try {
    const sql = pgExecutor(client);
    for (const file of files) {
      await client.query('BEGIN');
      try {
        await sql.query(`SELECT 1 AS ok FROM pg_advisory_xact_lock(hashtextextended($1::text, 0))`, [`sandbox-template:${template}`]);
        const recorded = await sql.query<{ name: string; checksum: string }>(
          `SELECT name, checksum FROM sandbox_template_migrations WHERE template = $1 ORDER BY name`,
          [template],
        );
        const same = recorded.find((r) => r.name === file.name);
        if (same) {
          if (same.checksum !== file.checksum) {
            throw new SandboxError(
              ErrorCode.Conflict,
              `Template file ${file.name} was changed after it was applied (recorded checksum ${same.checksum.slice(0, 12)}…, now ${file.checksum.slice(0, 12)}…). Put the change in a new file instead.`,
              { template, file: file.name },
            );
          }
          skipped.push(file.name);
          await client.query('COMMIT');
          continue;
        }
        const last = recorded.at(-1);
        if (last && last.name > file.name) {
          throw new SandboxError(ErrorCode.Conflict, `Template file ${file.name} sorts before ${last.name}, which is already applied. Name new files so they sort last.`, { template, file: file.name });
        }
        await client.query(`CREATE SCHEMA IF NOT EXISTS "${template}"`);
        try {
          await sql.query(`SELECT 1 AS ok FROM sandbox_run_in_schema($1::text, $2::text)`, [template, file.sql]);
        } catch (err) {
          throw new SandboxError(ErrorCode.InvalidInput, `Template file ${file.name} failed: ${(err as Error).message}`, { template, file: file.name }, { cause: err });
        }
        await sql.query(`INSERT INTO sandbox_template_migrations (template, name, checksum, sql) VALUES ($1, $2, $3, $4)`, [template, file.name, file.checksum, file.sql]);
        const r = await refreshTemplateCache(sql, template, { force: true });
        version = r.version;
        await client.query('COMMIT');
        applied.push(file.name);
        opts.logger?.info({ template, file: file.name, version }, 'template file applied');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    }
    if (!version) {
      const [row] = await sql.query<{ v: string }>(`SELECT sandbox_template_version($1::text) AS v`, [template]);
      version = row!.v;
    }
  } finally {
    client.release();
  }
  return { template, applied, skipped, version };
}

/**
 * `sandbox upgrade`: applies the template files recorded after `fromVersion` to a sandbox's schema,
 * in name order, each with search_path = <schema>, pg_catalog, in the caller's transaction. Returns the
 * version the schema is now at (record it on the sandbox). `fromVersion` must be a version of this
 * template ('initial' or `<file>@<checksum>` as recorded); anything else is an error, never a guess.
 */
export async function upgradeSandboxSchema(
  sql: SqlExecutor,
  schema: string,
  fromVersion: string,
  opts: { template?: string } = {},
): Promise<{ version: string; applied: string[] }> {
  const template = opts.template ?? DEFAULT_TEMPLATE;
  assertTemplateName(template);
  assertSandboxSchema(schema);
  const files = await sql.query<{ name: string; checksum: string; sql: string }>(
    `SELECT name, checksum, sql FROM sandbox_template_migrations WHERE template = $1 ORDER BY name`,
    [template],
  );
  let start = 0;
  if (fromVersion !== 'initial') {
    const at = files.findIndex((f) => `${f.name}@${f.checksum}` === fromVersion);
    if (at < 0) {
      throw new SandboxError(ErrorCode.Conflict, `The sandbox's template version ${fromVersion.slice(0, 80)} is not in template ${template}'s history; reset the sandbox instead.`, { template, fromVersion });
    }
    start = at + 1;
  }
  const todo = files.slice(start);
  for (const f of todo) {
    try {
      await sql.query(`SELECT 1 AS ok FROM sandbox_run_in_schema($1::text, $2::text)`, [schema, f.sql]);
    } catch (err) {
      throw new SandboxError(ErrorCode.SchemaFailed, `Template file ${f.name} failed on ${schema}: ${(err as Error).message}`, { schema, file: f.name }, { cause: err });
    }
  }
  if (todo.length > 0) await generateSchemaDdl(sql, schema); // refuses object kinds a later clone could not copy
  const last = files.at(-1);
  return { version: last ? `${last.name}@${last.checksum}` : 'initial', applied: todo.map((f) => f.name) };
}
