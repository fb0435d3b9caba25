import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * An exclusive lock held on an open file descriptor. The kernel releases it when the holder's
 * descriptor closes, which includes the holder dying by kill -9: a dead process cannot hold it,
 * and nothing written in the file (a PID, an address) decides who owns the data directory.
 *
 * The lock is taken with fs-native-extensions (open-file-description locks on Linux, flock on
 * macOS, LockFileEx on Windows; prebuilt, no install script). Where its prebuilt addon cannot load,
 * the util-linux/busybox `flock` program locks our descriptor, passed to it as fd 3: a flock lock
 * belongs to the open file description, so it stays held by this process after `flock` exits.
 */
export interface OwnerLock {
  /** Tries to take the lock without waiting; true when this process holds it (again). */
  tryLock(): boolean;
  /** Lets the lock go (a fresh descriptor is opened), e.g. after failing to serve. */
  unlock(): void;
  /** Closes the descriptor, which releases the lock. */
  release(): void;
}

type TryLock = (fd: number) => boolean;

let cached: TryLock | undefined;

function nativeTryLock(): TryLock | undefined {
  try {
    const fsx = createRequire(import.meta.url)('fs-native-extensions') as { tryLock(fd: number): boolean };
    return (fd) => fsx.tryLock(fd);
  } catch {
    return undefined;
  }
}

function flockProgramTryLock(fd: number): boolean {
  const r = spawnSync('flock', ['--nonblock', '--exclusive', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], timeout: 10_000 });
  if (r.error) throw new Error(`cannot lock the embedded database: no file-lock addon for this platform and no flock program (${r.error.message})`);
  return r.status === 0;
}

function tryLockFn(): TryLock {
  cached ??= nativeTryLock() ?? flockProgramTryLock;
  return cached;
}

/** `via` chooses the mechanism for tests; by default the addon, else the flock program. */
export function openOwnerLock(path: string, opts: { via?: 'native' | 'flock-program' } = {}): OwnerLock {
  // 'a' creates the file and never truncates it; the descriptor is close-on-exec (libuv), so
  // children we start later do not inherit the lock.
  let fd: number | undefined = openSync(path, 'a');
  const tryLock = opts.via === 'flock-program' ? flockProgramTryLock : tryLockFn();
  return {
    tryLock: () => (fd === undefined ? false : tryLock(fd)),
    unlock: () => {
      if (fd === undefined) return;
      closeSync(fd);
      fd = openSync(path, 'a');
    },
    release: () => {
      if (fd === undefined) return;
      closeSync(fd);
      fd = undefined;
    },
  };
}
