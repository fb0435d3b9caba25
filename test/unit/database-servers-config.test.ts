// SANDBOX_DATABASE_SERVERS: comma-separated name=url split at the first '=', names unique and of
// [a-z0-9_-]{1,32}, postgres(ql) URLs, `default` reserved for DATABASE_URL, refused on the embedded
// database. Problems are SANDBOX_013 and never echo a URL (it may hold a password).
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { SandboxError } from '../../src/sandbox/errors.ts';

const SECRET = 'config-test-secret-0123456789abcdef0123';
const base = { DATABASE_URL: 'postgresql://ctl@h1:5432/control', SANDBOX_CREDENTIAL_SECRET: SECRET };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(SandboxError);
    expect((err as SandboxError).code).toBe('SANDBOX_013');
    return (err as SandboxError).details.problems as string[];
  }
  throw new Error('configuration was accepted');
}

describe('SANDBOX_DATABASE_SERVERS', () => {
  it('defaults to the control database alone', () => {
    expect(loadConfig(base).databaseServers).toEqual([]);
  });

  it('keeps the configured order and splits each entry at its first =', () => {
    const c = loadConfig({ ...base, SANDBOX_DATABASE_SERVERS: ' eu-2=postgres://u:p=w@h2:5433/sb?sslmode=require , us_1=postgresql://h3/sb ,' });
    expect(c.databaseServers).toEqual([
      { name: 'eu-2', url: 'postgres://u:p=w@h2:5433/sb?sslmode=require' },
      { name: 'us_1', url: 'postgresql://h3/sb' },
    ]);
  });

  it('accepts default= with DATABASE_URL itself and adds nothing for it', () => {
    const c = loadConfig({ ...base, SANDBOX_DATABASE_SERVERS: 'default=postgresql://ctl@h1:5432/control,b=postgres://h2/x' });
    expect(c.databaseServers).toEqual([{ name: 'b', url: 'postgres://h2/x' }]);
  });

  it('reports every bad entry at once, without quoting the URLs', () => {
    const found = problems({
      ...base,
      SANDBOX_DATABASE_SERVERS: 'Upper=postgres://h/x,b=mysql://secret@h/x,c,d=not a url,e=postgres://h/e,e=postgres://h/f,default=postgres://pw-secret@other/x,f=postgresql://ctl@h1:5432/control,' + `${'x'.repeat(33)}=postgres://h/y`,
    });
    expect(found).toEqual([
      'SANDBOX_DATABASE_SERVERS entry 1: the name must be 1-32 characters of a-z, 0-9, _ and - (write name=postgres://…)',
      'SANDBOX_DATABASE_SERVERS entry 2 (b): the URL must use postgres: or postgresql:',
      'SANDBOX_DATABASE_SERVERS entry 3 (c): no URL after c=',
      'SANDBOX_DATABASE_SERVERS entry 4 (d): not a valid URL',
      'SANDBOX_DATABASE_SERVERS entry 6: the name e is listed twice',
      "SANDBOX_DATABASE_SERVERS entry 7: default is the control server (DATABASE_URL); list it with DATABASE_URL's exact value or not at all",
      'SANDBOX_DATABASE_SERVERS entry 8 (f): the same URL as default; each server is listed once',
      'SANDBOX_DATABASE_SERVERS entry 9: the name must be 1-32 characters of a-z, 0-9, _ and - (write name=postgres://…)',
    ]);
    expect(found.join(' ')).not.toMatch(/secret/);
  });

  it('is refused on the embedded database (no DATABASE_URL)', () => {
    expect(problems({ SANDBOX_DATABASE_SERVERS: 'b=postgres://h2/x' })).toEqual([
      'SANDBOX_DATABASE_SERVERS needs DATABASE_URL: the embedded database cannot place sandboxes on other servers',
    ]);
  });
});
