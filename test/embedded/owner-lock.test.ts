// The owner lock is held by an open descriptor: a second descriptor (in this process or another)
// cannot take it until the first closes, and closing (as dying does) frees it.
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openOwnerLock } from '../../src/db/owner-lock.ts';
import { PROJECT_ROOT } from '../../src/paths.ts';

const dir = mkdtempSync(join(tmpdir(), 'sbx-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Whether another process can take the lock right now (it exits, releasing it at once). */
function otherProcessCanLock(path: string, via: 'native' | 'flock-program'): boolean {
  const script = `import { openOwnerLock } from ${JSON.stringify(resolve(PROJECT_ROOT, 'src/db/owner-lock.ts'))};\nprocess.stdout.write(String(openOwnerLock(${JSON.stringify(path)}, { via: ${JSON.stringify(via)} }).tryLock()));`;
  return execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: PROJECT_ROOT, encoding: 'utf8' }) === 'true';
}

describe.each(['native', 'flock-program'] as const)('owner lock via %s', (via) => {
  it('excludes every other descriptor until released, whatever the file says', () => {
    const path = join(dir, `${via}.lock`);
    writeFileSync(path, String(process.pid)); // contents never matter
    const a = openOwnerLock(path, { via });
    const b = openOwnerLock(path, { via });
    expect(a.tryLock()).toBe(true);
    expect(a.tryLock()).toBe(true); // taking it again is harmless
    expect(b.tryLock()).toBe(false);
    expect(otherProcessCanLock(path, via)).toBe(false);
    a.release();
    expect(b.tryLock()).toBe(true);
    b.unlock();
    expect(otherProcessCanLock(path, via)).toBe(true);
    b.release();
  }, 30_000);
});
