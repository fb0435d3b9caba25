#!/usr/bin/env node
// `npx sandbox ...`: the operator CLI. Generates the Prisma client first if the schema changed.
// Runs the compiled CLI (dist/) when it is newer than every source; otherwise the TypeScript
// source through tsx, so an edit is never run stale and a fresh clone needs no build.
// It never builds itself: concurrent invocations would race on dist/.
import { spawnSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, distFresh, prismaClientFresh } from '../scripts/freshness.mjs';

// WASM (PGlite, Prisma's query compiler) runs on the baseline compiler only: a short-lived CLI spends
// more on TurboFan compiling than it wins back (`list` on the embedded database: ~1.3 s → ~0.8 s).
// Set before either module is loaded, so it applies to both.
setFlagsFromString('--liftoff-only');

if (!prismaClientFresh()) {
  const gen = spawnSync(process.execPath, [resolve(ROOT, 'scripts/prisma-generate.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (gen.status !== 0) process.exit(gen.status ?? 1);
}
if (distFresh()) {
  await import(pathToFileURL(resolve(ROOT, 'dist/cli/main.js')).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(resolve(ROOT, 'src/cli/main.ts')).href);
}
