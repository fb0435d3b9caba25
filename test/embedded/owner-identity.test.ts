// server.json is only a hint: a process that is not the owner connects to the address there only
// when the database behind it answers with this data directory's owner token.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbedded } from '../../src/db/embedded.ts';
import { openOwnerLock } from '../../src/db/owner-lock.ts';
import { silentLogger } from '../../src/logger.ts';

const dirs: string[] = [];
const mk = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'sbx-identity-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('embedded database identity', () => {
  it("never trusts an address served by another data directory's database", async () => {
    const dirA = mk();
    const a = await openEmbedded(dirA, silentLogger());
    const dirB = mk();
    const held = openOwnerLock(join(dirB, 'owner.lock'));
    try {
      expect(a.owner).toBe(true);
      expect(held.tryLock()).toBe(true);
      // B's owner is alive (holds the lock) but not serving yet; its server.json is stale and names
      // a port that another data directory's database now serves.
      const aInfo = JSON.parse(readFileSync(join(dirA, 'server.json'), 'utf8'));
      writeFileSync(join(dirB, 'server.json'), JSON.stringify({ ...aInfo, pid: 4242, token: 'stale-token-of-b' }));
      const started = Date.now();
      await expect(openEmbedded(dirB, silentLogger(), { waitMs: 1_500 })).rejects.toMatchObject({ code: 'SANDBOX_011' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);

      // Once B's lock is free, the next process becomes B's owner.
      held.release();
      const b = await openEmbedded(dirB, silentLogger());
      try {
        expect(b.owner).toBe(true);
        expect(b.url).not.toBe(a.url);
      } finally {
        await b.close();
      }
    } finally {
      held.release();
      await a.close();
    }
  }, 60_000);

  it('a second opener in the same process is a client of the first, not a second owner', async () => {
    const dir = mk();
    const first = await openEmbedded(dir, silentLogger());
    try {
      const second = await openEmbedded(dir, silentLogger(), { waitMs: 5_000 });
      expect(first.owner).toBe(true);
      expect(second.owner).toBe(false);
      expect(second.url).toBe(first.url);
      await second.close();
    } finally {
      await first.close();
    }
  }, 60_000);
});
