#!/usr/bin/env node
// Generates the Prisma client when prisma/schema.prisma changed since the last generation.
// `prisma generate` does not need the schema engine, but the CLI insists that
// PRISMA_SCHEMA_ENGINE_BINARY names an existing file when it cannot download one (offline).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const schema = readFileSync(resolve(root, 'prisma/schema.prisma'));
const pkg = readFileSync(resolve(root, 'node_modules/prisma/package.json'));
const hash = createHash('sha256').update(schema).update(pkg).digest('hex');
const stamp = resolve(root, 'src/generated/prisma/.schema-hash');
const force = process.argv.includes('--force');

if (!force && existsSync(stamp) && readFileSync(stamp, 'utf8') === hash && existsSync(resolve(root, 'src/generated/prisma/client.ts'))) {
  process.exit(0);
}
const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY || !existsSync(env.PRISMA_SCHEMA_ENGINE_BINARY)) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
env.PRISMA_HIDE_UPDATE_MESSAGE = '1';
const bin = resolve(root, 'node_modules/prisma/build/index.js');
const r = spawnSync(process.execPath, [bin, 'generate', '--schema', resolve(root, 'prisma/schema.prisma')], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
if (r.status !== 0) {
  process.stdout.write(r.stdout ?? '');
  console.error('prisma generate failed');
  process.exit(r.status ?? 1);
}
writeFileSync(stamp, hash);
