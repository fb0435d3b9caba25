import { ErrorCode, SandboxError } from '../../errors.ts';
import { SCHEMA, SCHEMA_IDENT_RE, SCHEMA_LITERAL, fragment, quoteIdent, quoteLiteral, stmt, type SqlExecutor } from './sql.ts';

/** Bumped whenever the generated DDL changes shape, so cached entries of older generators are never used. */
export const GENERATOR_VERSION = 1;

/**
 * DDL that rebuilds a schema under another name. Every statement is a format() string whose one
 * argument is the new schema's name, run with search_path = <new schema>, pg_catalog.
 *  - ddl:  enums, domains, sequences, tables with columns, defaults and identity; sequence ownership
 *  - seed: copies the source schema's rows (INSERT … SELECT) and sets sequences past them
 *  - post: primary key, unique, exclusion and check constraints, indexes, foreign keys, comments
 * Constraints and indexes come after the rows, so they are built once over the data and foreign
 * keys are checked in bulk whatever the order of the tables (cycles and self-references included).
 */
export interface SchemaDdl {
  source: string;
  ddl: string[];
  seed: string[];
  post: string[];
  tables: string[];
}

interface Row {
  [k: string]: unknown;
}

const UNSUPPORTED = `
  SELECT kind, name FROM (
    SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
                          WHEN 'p' THEN 'partitioned table' WHEN 'c' THEN 'composite type' ELSE 'relation' END AS kind,
           c.relname::text AS name
      FROM pg_catalog.pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind NOT IN ('r', 'S', 'i')
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window function' ELSE 'function' END,
           p.proname::text
      FROM pg_catalog.pg_proc p WHERE p.pronamespace = $1::regnamespace
    UNION ALL
    SELECT 'trigger', t.tgname::text || ' on ' || c.relname::text
      FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
     WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal
    UNION ALL
    SELECT 'rule', r.rulename::text || ' on ' || c.relname::text
      FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
     WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r'
    UNION ALL
    SELECT 'policy', p.polname::text || ' on ' || c.relname::text
      FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = $1::regnamespace
    UNION ALL
    SELECT 'table inheritance', c.relname::text
      FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid WHERE c.relnamespace = $1::regnamespace
    UNION ALL
    SELECT CASE t.typtype WHEN 'r' THEN 'range type' WHEN 'm' THEN 'multirange type' WHEN 'b' THEN 'base type'
                          WHEN 'p' THEN 'pseudo-type' ELSE 'type' END, t.typname::text
      FROM pg_catalog.pg_type t
     WHERE t.typnamespace = $1::regnamespace AND t.typtype NOT IN ('e', 'd', 'c')
       AND NOT (t.typelem <> 0 AND EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.oid = t.typelem AND e.typarray = t.oid))
    UNION ALL
    SELECT 'statistics object', s.stxname::text FROM pg_catalog.pg_statistic_ext s WHERE s.stxnamespace = $1::regnamespace
    UNION ALL
    SELECT 'collation', c.collname::text FROM pg_catalog.pg_collation c WHERE c.collnamespace = $1::regnamespace
    UNION ALL
    SELECT 'operator', o.oprname::text FROM pg_catalog.pg_operator o WHERE o.oprnamespace = $1::regnamespace
    UNION ALL
    SELECT 'text search configuration', c.cfgname::text FROM pg_catalog.pg_ts_config c WHERE c.cfgnamespace = $1::regnamespace
    UNION ALL
    SELECT 'foreign key to a table outside the schema', c.conname::text || ' on ' || r.relname::text
      FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
      JOIN pg_catalog.pg_class f ON f.oid = c.confrelid
     WHERE c.contype = 'f' AND r.relnamespace = $1::regnamespace AND f.relnamespace <> $1::regnamespace
    UNION ALL
    SELECT 'column default using a sequence outside the schema', c.relname::text || '.' || a.attname::text
      FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_class c ON c.oid = d.adrelid
      JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
      JOIN pg_catalog.pg_depend dep ON dep.classid = 'pg_catalog.pg_attrdef'::regclass AND dep.objid = d.oid
           AND dep.refclassid = 'pg_catalog.pg_class'::regclass
      JOIN pg_catalog.pg_class s ON s.oid = dep.refobjid
     WHERE c.relnamespace = $1::regnamespace AND s.relkind = 'S' AND s.relnamespace <> $1::regnamespace
    UNION ALL
    SELECT 'constraint trigger', c.conname::text
      FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
     WHERE c.contype = 't' AND r.relnamespace = $1::regnamespace
  ) x ORDER BY kind, name`;

const ENUMS = `
  SELECT t.typname::text AS name,
         (SELECT string_agg(pg_catalog.quote_literal(e.enumlabel::text), ', ' ORDER BY e.enumsortorder)
            FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid) AS labels
    FROM pg_catalog.pg_type t WHERE t.typnamespace = $1::regnamespace AND t.typtype = 'e' ORDER BY t.oid`;

const DOMAINS = `
  SELECT t.typname::text AS name, pg_catalog.format_type(t.typbasetype, t.typtypmod) AS base, t.typnotnull AS notnull,
         CASE WHEN t.typdefaultbin IS NOT NULL THEN pg_catalog.pg_get_expr(t.typdefaultbin, 0) END AS def,
         CASE WHEN t.typcollation <> 0 AND t.typcollation <> (SELECT b.typcollation FROM pg_catalog.pg_type b WHERE b.oid = t.typbasetype)
              THEN (SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.collname)
                      FROM pg_catalog.pg_collation c JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace WHERE c.oid = t.typcollation) END AS coll,
         coalesce((SELECT string_agg(' CONSTRAINT ' || pg_catalog.quote_ident(c.conname) || ' ' || pg_catalog.pg_get_constraintdef(c.oid), '' ORDER BY c.conname)
                     FROM pg_catalog.pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'), '') AS checks
    FROM pg_catalog.pg_type t WHERE t.typnamespace = $1::regnamespace AND t.typtype = 'd' ORDER BY t.oid`;

const SEQUENCES = `
  SELECT c.relname::text AS name, pg_catalog.format_type(s.seqtypid, NULL) AS type, s.seqincrement::text AS inc,
         s.seqmin::text AS min, s.seqmax::text AS max, s.seqstart::text AS start, s.seqcache::text AS cache, s.seqcycle AS cycle,
         d.deptype::text AS deptype, t.relname::text AS tbl, a.attname::text AS col
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
    LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
         AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
    LEFT JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
   WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'S' ORDER BY c.oid`;

const TABLES = `
  SELECT c.oid::int8::text AS oid, c.relname::text AS name, c.relpersistence::text AS persistence
    FROM pg_catalog.pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' ORDER BY c.oid`;

const COLUMNS = `
  SELECT a.attrelid::int8::text AS rel, a.attname::text AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
         a.attnotnull AS notnull, a.attidentity::text AS identity,
         (t.typnamespace = $1::regnamespace OR EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.oid = t.typelem AND e.typnamespace = $1::regnamespace)) AS local, a.attgenerated::text AS generated,
         CASE WHEN d.adbin IS NOT NULL THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END AS def,
         CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
              THEN (SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(co.collname)
                      FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace WHERE co.oid = a.attcollation) END AS coll,
         s.seqincrement::text AS inc, s.seqmin::text AS min, s.seqmax::text AS max, s.seqstart::text AS start,
         s.seqcache::text AS cache, s.seqcycle AS cycle, pg_catalog.format_type(s.seqtypid, NULL) AS seqtype
    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    LEFT JOIN pg_catalog.pg_depend dep ON a.attidentity <> '' AND dep.refclassid = 'pg_catalog.pg_class'::regclass
         AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum AND dep.deptype = 'i' AND dep.classid = 'pg_catalog.pg_class'::regclass
    LEFT JOIN pg_catalog.pg_sequence s ON s.seqrelid = dep.objid
   WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
   ORDER BY a.attrelid, a.attnum`;

// contype 'n' (NOT NULL, PostgreSQL 18 / PGlite) is skipped: attnotnull carries it.
const CONSTRAINTS = `
  SELECT r.relname::text AS tbl, c.conname::text AS name, c.contype::text AS type, pg_catalog.pg_get_constraintdef(c.oid) AS def
    FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
   WHERE r.relnamespace = $1::regnamespace AND r.relkind = 'r' AND c.contype IN ('p', 'u', 'x', 'c', 'f')
   ORDER BY CASE c.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'x' THEN 2 WHEN 'c' THEN 3 ELSE 4 END, r.oid, c.conname`;

// pg_get_indexdef names the source schema; keep only what follows "USING " after checking the prefix.
const INDEXES = `
  SELECT r.relname::text AS tbl, i.relname::text AS name, x.indisunique AS unique, pg_catalog.pg_get_indexdef(x.indexrelid) AS def,
         'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || pg_catalog.quote_ident(i.relname) || ' ON '
           || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(r.relname) || ' USING ' AS prefix
    FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
    JOIN pg_catalog.pg_class r ON r.oid = x.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
   WHERE r.relnamespace = $1::regnamespace AND r.relkind = 'r'
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = x.indexrelid AND c.contype IN ('p', 'u', 'x'))
   ORDER BY x.indexrelid`;

const COMMENTS = `
  SELECT k.kind, k.target, k.owner, pg_catalog.quote_literal(d.description) AS text FROM (
    SELECT 'TABLE' AS kind, c.oid AS objoid, 'pg_catalog.pg_class'::regclass AS classoid, 0 AS subid, pg_catalog.quote_ident(c.relname) AS target,
           NULL::text AS owner
      FROM pg_catalog.pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r'
    UNION ALL
    SELECT 'COLUMN', a.attrelid, 'pg_catalog.pg_class'::regclass, a.attnum, pg_catalog.quote_ident(c.relname) || '.' || pg_catalog.quote_ident(a.attname), NULL
      FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
     WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'INDEX' END, c.oid, 'pg_catalog.pg_class'::regclass, 0, pg_catalog.quote_ident(c.relname), NULL
      FROM pg_catalog.pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('S', 'i')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'i')
    UNION ALL
    SELECT 'TYPE', t.oid, 'pg_catalog.pg_type'::regclass, 0, pg_catalog.quote_ident(t.typname), NULL
      FROM pg_catalog.pg_type t WHERE t.typnamespace = $1::regnamespace AND t.typtype IN ('e', 'd')
    UNION ALL
    SELECT 'CONSTRAINT', c.oid, 'pg_catalog.pg_constraint'::regclass, 0, pg_catalog.quote_ident(c.conname),
           CASE WHEN c.contypid <> 0 THEN 'DOMAIN ' ELSE '' END || pg_catalog.quote_ident(coalesce(t.typname, r.relname))
      FROM pg_catalog.pg_constraint c LEFT JOIN pg_catalog.pg_class r ON r.oid = c.conrelid LEFT JOIN pg_catalog.pg_type t ON t.oid = c.contypid
     WHERE (r.relnamespace = $1::regnamespace OR t.typnamespace = $1::regnamespace) AND c.contype <> 'n'
  ) k JOIN pg_catalog.pg_description d ON d.objoid = k.objoid AND d.classoid = k.classoid AND d.objsubid = k.subid
  ORDER BY k.kind, k.target`;

const seqOptions = (r: Row): string =>
  `INCREMENT BY ${r.inc} MINVALUE ${r.min} MAXVALUE ${r.max} START WITH ${r.start} CACHE ${r.cache}${r.cycle ? ' CYCLE' : ' NO CYCLE'}`;

/**
 * Reads `source` from the catalog and returns DDL that rebuilds it under any name (see SchemaDdl).
 * Must run inside a transaction: it sets search_path = <source>, pg_catalog for the transaction so
 * the catalog prints the source's own objects unqualified, and restores it before returning.
 * Object kinds it cannot copy (views, functions, triggers, …) fail with one error naming them all.
 */
export async function generateSchemaDdl(sql: SqlExecutor, source: string): Promise<SchemaDdl> {
  if (!SCHEMA_IDENT_RE.test(source)) {
    throw new SandboxError(ErrorCode.InvalidInput, `Invalid schema name ${JSON.stringify(source.slice(0, 70))}.`);
  }
  const [{ old } = { old: '' }] = await sql.query<{ old: string }>(`SELECT pg_catalog.current_setting('search_path') AS old`);
  const [exists] = await sql.query(`SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1`, [source]);
  if (!exists) throw new SandboxError(ErrorCode.NotFound, `Schema ${source} does not exist.`);
  const path = `${quoteIdent(source)}, pg_catalog`;
  await sql.query(`SELECT pg_catalog.set_config('search_path', $1, true)`, [path]);
  try {
    const [check] = await sql.query<{ p: string }>(`SELECT pg_catalog.current_setting('search_path') AS p`);
    if (check?.p !== path) throw new Error('generateSchemaDdl must run inside a transaction');
    // One round trip: every catalog read as a JSON array.
    const parts = { unsupported: UNSUPPORTED, enums: ENUMS, domains: DOMAINS, sequences: SEQUENCES, tables: TABLES, columns: COLUMNS, constraints: CONSTRAINTS, indexes: INDEXES, comments: COMMENTS };
    const select = Object.entries(parts)
      .map(([k, q]) => `(SELECT coalesce(pg_catalog.json_agg(x), '[]'::json) FROM (${q}) x) AS ${k}`)
      .join(',\n');
    const [cat] = await sql.query<Record<keyof typeof parts, Row[] | string>>(`SELECT ${select}`, [source]);
    const read = (k: keyof typeof parts): Row[] => {
      const v = cat![k];
      return (typeof v === 'string' ? JSON.parse(v) : v) as Row[];
    };
    const unsupported = read('unsupported') as { kind: string; name: string }[];
    if (unsupported.length > 0) {
      const list = unsupported.map((u) => `${u.kind} ${u.name}`).join(', ');
      throw new SandboxError(
        ErrorCode.InvalidInput,
        `Schema ${source} holds objects a sandbox cannot copy: ${list}. Templates support tables, columns with defaults, identity columns, sequences, primary key/unique/check/exclusion constraints, indexes, foreign keys inside the schema, comments, enums and domains.`,
        { schema: source, unsupported },
      );
    }
    const [enums, domains, sequences, tables, columns, constraints, indexes, comments] = (
      ['enums', 'domains', 'sequences', 'tables', 'columns', 'constraints', 'indexes', 'comments'] as const
    ).map(read) as Row[][];
    return build(source, { enums: enums!, domains: domains!, sequences: sequences!, tables: tables!, columns: columns!, constraints: constraints!, indexes: indexes!, comments: comments! });
  } finally {
    await sql.query(`SELECT pg_catalog.set_config('search_path', $1, true)`, [old]);
  }
}

function build(source: string, c: Record<'enums' | 'domains' | 'sequences' | 'tables' | 'columns' | 'constraints' | 'indexes' | 'comments', Row[]>): SchemaDdl {
  const ddl: string[] = [];
  const seed: string[] = [];
  const post: string[] = [];
  const src = quoteIdent(source);

  for (const e of c.enums) ddl.push(stmt`CREATE TYPE ${SCHEMA}.${quoteIdent(String(e.name))} AS ENUM (${String(e.labels ?? '')})`);
  for (const d of c.domains) {
    let s = `AS ${d.base}`;
    if (d.coll) s += ` COLLATE ${d.coll}`;
    if (d.def != null) s += ` DEFAULT ${d.def}`;
    if (d.notnull) s += ' NOT NULL';
    s += String(d.checks);
    ddl.push(stmt`CREATE DOMAIN ${SCHEMA}.${quoteIdent(String(d.name))} ${s}`);
  }
  // Sequences that are not identity sequences (those come with their column).
  const standalone = c.sequences.filter((s) => s.deptype !== 'i');
  for (const s of standalone) ddl.push(stmt`CREATE SEQUENCE ${SCHEMA}.${quoteIdent(String(s.name))} AS ${String(s.type)} ${seqOptions(s)}`);

  const byTable = new Map<string, Row[]>();
  for (const col of c.columns) byTable.set(String(col.rel), [...(byTable.get(String(col.rel)) ?? []), col]);
  const tableNames: string[] = [];
  for (const t of c.tables) {
    const name = String(t.name);
    tableNames.push(name);
    const cols = byTable.get(String(t.oid)) ?? [];
    const defs = cols.map((col) => {
      let s = `${quoteIdent(String(col.name))} ${col.type}`;
      if (col.coll) s += ` COLLATE ${col.coll}`;
      if (col.generated === 's') s += ` GENERATED ALWAYS AS (${col.def}) STORED`;
      else if (col.identity === 'a' || col.identity === 'd') {
        s += ` GENERATED ${col.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY (${seqOptions(col)})`;
      } else if (col.def != null) s += ` DEFAULT ${col.def}`;
      if (col.notnull) s += ' NOT NULL';
      return s;
    });
    ddl.push(stmt`CREATE ${t.persistence === 'u' ? 'UNLOGGED ' : ''}TABLE ${SCHEMA}.${quoteIdent(name)} (${defs.join(', ')})`);

    // Seed: every stored column (generated ones are recomputed), identity values kept as they are.
    // Values of the source's own types (enums, domains) go through text into the new schema's types.
    const stored = cols.filter((col) => col.generated !== 's');
    const into = stored.map((col) => quoteIdent(String(col.name))).join(', ');
    const from = stored.map((col) => (col.local ? `${quoteIdent(String(col.name))}::text::${col.type}` : quoteIdent(String(col.name)))).join(', ');
    const override = cols.some((col) => col.identity === 'a') ? ' OVERRIDING SYSTEM VALUE' : '';
    if (into) seed.push(stmt`INSERT INTO ${SCHEMA}.${quoteIdent(name)} (${into})${override} SELECT ${from} FROM ${src}.${quoteIdent(name)}`);
  }
  for (const s of standalone.filter((x) => x.deptype === 'a')) {
    ddl.push(stmt`ALTER SEQUENCE ${SCHEMA}.${quoteIdent(String(s.name))} OWNED BY ${SCHEMA}.${quoteIdent(String(s.tbl))}.${quoteIdent(String(s.col))}`);
  }

  // Sequences: the source's state first, then past the largest copied value of the owning column.
  for (const s of c.sequences) {
    const target =
      s.deptype === 'i'
        ? fragment`pg_catalog.pg_get_serial_sequence(pg_catalog.format('%I.%I', ${SCHEMA_LITERAL}, ${quoteLiteral(String(s.tbl))}), ${quoteLiteral(String(s.col))})::regclass`
        : fragment`pg_catalog.format('%I.%I', ${SCHEMA_LITERAL}, ${quoteLiteral(String(s.name))})::regclass`;
    seed.push(stmt`SELECT pg_catalog.setval(${target}, v.last_value, v.is_called) FROM ${src}.${quoteIdent(String(s.name))} v`);
    if ((s.deptype === 'i' || s.deptype === 'a') && Number(s.inc) > 0) {
      seed.push(
        stmt`SELECT pg_catalog.setval(${target}, x.m) FROM (SELECT max(${quoteIdent(String(s.col))})::int8 AS m FROM ${SCHEMA}.${quoteIdent(String(s.tbl))}) x WHERE x.m >= coalesce(pg_catalog.pg_sequence_last_value(${target}) + 1, ${String(s.start)})`,
      );
    }
  }

  const fks: string[] = [];
  for (const k of c.constraints) {
    const s = stmt`ALTER TABLE ${SCHEMA}.${quoteIdent(String(k.tbl))} ADD CONSTRAINT ${quoteIdent(String(k.name))} ${String(k.def)}`;
    if (k.type === 'f') fks.push(s);
    else post.push(s);
  }
  for (const i of c.indexes) {
    const def = String(i.def);
    const prefix = String(i.prefix);
    if (!def.startsWith(prefix)) {
      throw new SandboxError(ErrorCode.InvalidInput, `Index ${String(i.name)} on ${String(i.tbl)} has a definition the template cannot copy.`, { def });
    }
    post.push(stmt`CREATE ${i.unique ? 'UNIQUE ' : ''}INDEX ${quoteIdent(String(i.name))} ON ${SCHEMA}.${quoteIdent(String(i.tbl))} USING ${def.slice(prefix.length)}`);
  }
  post.push(...fks);
  for (const m of c.comments) {
    const kind = String(m.kind);
    const target = String(m.target);
    if (kind !== 'CONSTRAINT') {
      post.push(stmt`COMMENT ON ${kind} ${SCHEMA}.${target} IS ${String(m.text)}`);
      continue;
    }
    // owner is 'DOMAIN "d"' or '"table"', both already quoted.
    const owner = String(m.owner);
    const domain = owner.startsWith('DOMAIN ');
    const ownerName = domain ? owner.slice('DOMAIN '.length) : owner;
    post.push(stmt`COMMENT ON CONSTRAINT ${target} ON ${domain ? 'DOMAIN ' : ''}${SCHEMA}.${ownerName} IS ${String(m.text)}`);
  }
  return { source, ddl, seed, post, tables: tableNames };
}
