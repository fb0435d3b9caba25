import type pg from 'pg';

/**
 * The one thing the template code needs from a database connection: run a statement with
 * positional parameters and get rows back. Adapters below cover a pg client and a Prisma
 * (interactive-transaction) client, so the same functions run in the manager's transactions.
 */
export interface SqlExecutor {
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

export function pgExecutor(client: Pick<pg.ClientBase, 'query'>): SqlExecutor {
  return {
    query: async <R extends object>(text: string, params: readonly unknown[] = []) =>
      (await client.query(text, params as unknown[])).rows as R[],
  };
}

/** A Prisma client or interactive transaction (`tx` inside `$transaction(async (tx) => …)`). */
export interface PrismaRaw {
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): Promise<T>;
}

export function prismaExecutor(tx: PrismaRaw): SqlExecutor {
  return { query: <R extends object>(text: string, params: readonly unknown[] = []) => tx.$queryRawUnsafe<R[]>(text, ...params) };
}

/** Schema names the template code accepts anywhere: lower-case, unquoted-safe, at most 63 bytes. */
export const SCHEMA_IDENT_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/** Always-quoted identifier (valid for every name, like format('%I') but unconditional). */
export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** A standard string literal (standard_conforming_strings is on since PostgreSQL 9.1). */
export const quoteLiteral = (value: string): string => `'${value.replace(/'/g, "''")}'`;

/** Marker for the new schema's name inside a generated statement. */
export const SCHEMA = Symbol('schema');
/** Marker for the new schema's name as a string literal. */
export const SCHEMA_LITERAL = Symbol('schema-literal');

/**
 * Builds one generated statement as a format() string: the new schema becomes %1$I (or %1$L),
 * every other interpolated text has its % doubled, so nothing but the schema name is substituted.
 */
export function stmt(parts: TemplateStringsArray, ...values: (string | number | Fragment | typeof SCHEMA | typeof SCHEMA_LITERAL)[]): string {
  let out = parts[0]!.replace(/%/g, '%%');
  values.forEach((v, i) => {
    out += v === SCHEMA ? '%1$I' : v === SCHEMA_LITERAL ? '%1$L' : v instanceof Fragment ? v.text : String(v).replace(/%/g, '%%');
    out += parts[i + 1]!.replace(/%/g, '%%');
  });
  return out;
}

/** A piece already built by stmt(), interpolated into another without escaping it twice. */
export class Fragment {
  constructor(readonly text: string) {}
}
export const fragment = (parts: TemplateStringsArray, ...values: Parameters<typeof stmt>[1][]): Fragment => new Fragment(stmt(parts, ...values));

/** TypeScript twin of the database's format(stmt, schema) for generated statements. */
export function render(statement: string, schema: string): string {
  if (!SCHEMA_IDENT_RE.test(schema)) throw new Error(`invalid schema name ${JSON.stringify(schema.slice(0, 70))}`);
  return statement.replace(/%(%|1\$I|1\$L)/g, (_m, k: string) => (k === '%' ? '%' : k === '1$I' ? quoteIdent(schema) : quoteLiteral(schema)));
}
