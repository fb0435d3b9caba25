#!/usr/bin/env node
// `npx sandbox ...`: runs the TypeScript CLI through tsx, generating the Prisma client first if needed.
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const gen = spawnSync(process.execPath, [resolve(root, 'scripts/prisma-generate.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
if (gen.status !== 0) process.exit(gen.status ?? 1);
const { register } = await import('tsx/esm/api');
register();
await import(resolve(root, 'src/cli/main.ts'));
