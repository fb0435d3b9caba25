#!/usr/bin/env node
// Generates the Prisma client when prisma/schema.prisma changed since the last generation.
// `prisma generate` does not need the schema engine, but the CLI insists that
// PRISMA_SCHEMA_ENGINE_BINARY names an existing file when it cannot download one (offline).
import { existsSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { PRISMA_STAMP, ROOT, prismaClientFresh, prismaInputHash } from './freshness.mjs';

const force = process.argv.includes('--force');
if (!force && prismaClientFresh()) process.exit(0);

const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY || !existsSync(env.PRISMA_SCHEMA_ENGINE_BINARY)) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
env.PRISMA_HIDE_UPDATE_MESSAGE = '1';
const bin = resolve(ROOT, 'node_modules/prisma/build/index.js');
const r = spawnSync(process.execPath, [bin, 'generate', '--schema', resolve(ROOT, 'prisma/schema.prisma')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
if (r.status !== 0) {
  process.stdout.write(r.stdout ?? '');
  console.error('prisma generate failed');
  process.exit(r.status ?? 1);
}
writeFileSync(PRISMA_STAMP, prismaInputHash());
