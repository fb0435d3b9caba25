// Cheap checks (a hash of two small files, a stat walk of src/) that decide whether the Prisma
// client and the compiled dist/ are up to date, so `npm start`, `npm run build` and `npx sandbox`
// skip work that is already done.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const PRISMA_STAMP = resolve(ROOT, 'src/generated/prisma/.schema-hash');
export const DIST_STAMP = resolve(ROOT, 'dist/.build-stamp');

/** Hash of what the generated client depends on: the schema and the Prisma CLI's version. */
export function prismaInputHash() {
  const schema = readFileSync(resolve(ROOT, 'prisma/schema.prisma'));
  const pkg = readFileSync(resolve(ROOT, 'node_modules/prisma/package.json'));
  return createHash('sha256').update(schema).update(pkg).digest('hex');
}

export function prismaClientFresh() {
  return (
    existsSync(PRISMA_STAMP) &&
    existsSync(resolve(ROOT, 'src/generated/prisma/client.ts')) &&
    readFileSync(PRISMA_STAMP, 'utf8') === prismaInputHash()
  );
}

/** Newest mtime (ms) of every file and directory under `dir` (a deleted file shows as a newer directory). */
function newestMtime(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Newest mtime of the build's inputs: src/ (with the generated client) and the tsconfig files. */
export function newestBuildInput() {
  return Math.max(
    newestMtime(resolve(ROOT, 'src')),
    ...['tsconfig.json', 'tsconfig.build.json'].map((f) => statSync(resolve(ROOT, f)).mtimeMs),
  );
}

/** True when dist/ was built (stamp dated at the build's start) after the last change to any input. */
export function distFresh() {
  if (!existsSync(DIST_STAMP) || !existsSync(resolve(ROOT, 'dist/main.js')) || !existsSync(resolve(ROOT, 'dist/cli/main.js'))) return false;
  return statSync(DIST_STAMP).mtimeMs >= newestBuildInput();
}
