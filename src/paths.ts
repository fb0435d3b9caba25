import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root, resolved from this file's location rather than the current directory. */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const MIGRATIONS_DIR = resolve(PROJECT_ROOT, 'prisma', 'migrations');
export const DEFAULT_DATA_DIR = resolve(PROJECT_ROOT, '.data');
