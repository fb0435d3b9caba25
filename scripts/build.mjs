#!/usr/bin/env node
// `npm run build` (and the first step of `npm start`): generates the Prisma client if the schema
// changed, then compiles src/ to dist/ with tsconfig.build.json, unless dist/ is already newer than
// every input. `--force` always compiles. tsc itself is incremental (dist/.tsbuildinfo).
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { DIST_STAMP, ROOT, distFresh, prismaClientFresh } from './freshness.mjs';

const force = process.argv.includes('--force');
const run = (args) => {
  const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

if (!prismaClientFresh()) run([resolve(ROOT, 'scripts/prisma-generate.mjs')]);
if (!force && distFresh()) process.exit(0);

// The stamp carries the time the compile STARTED, so a source edited during the compile counts as newer.
const started = new Date();
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
process.stderr.write('building dist/ (tsc -p tsconfig.build.json)\n');
run([tsc, '-p', resolve(ROOT, 'tsconfig.build.json')]);
mkdirSync(resolve(ROOT, 'dist'), { recursive: true });
closeSync(openSync(DIST_STAMP, 'w'));
utimesSync(DIST_STAMP, started, started);
