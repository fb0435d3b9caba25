// What an operator sees when DATABASE_URL points at the wrong place: the CLI, in-process, against the real server.
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.ts';

async function cliWith(databaseUrl: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  process.env.DATABASE_URL = databaseUrl;
  // Isolation is on with a PostgreSQL server, and then the credential secret is required.
  process.env.SANDBOX_CREDENTIAL_SECRET = 'test-secret-test-secret-test-secret-0123';
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

afterEach(() => {
  delete process.env.DATABASE_URL;
  delete process.env.SANDBOX_CREDENTIAL_SECRET;
});

describe('database connection errors', () => {
  it('a database that does not exist is a configuration error naming it and DATABASE_URL', async () => {
    for (const command of ['list', 'migrate']) {
      const r = await cliWith('postgres://postgres@127.0.0.1:5432/polish_no_such_database', command);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^error SANDBOX_013: /);
      expect(r.err).toContain('database "polish_no_such_database" does not exist');
      expect(r.err).toContain('DATABASE_URL');
      expect(r.err).not.toContain('internal error');
    }
  });

  it('a role that does not exist is a configuration error naming it', async () => {
    const r = await cliWith('postgres://polish_no_such_role@127.0.0.1:5432/postgres', 'list', '--json');
    expect(r.code).toBe(1);
    const { error } = JSON.parse(r.err) as { error: { code: string; message: string } };
    expect(error.code).toBe('SANDBOX_013');
    expect(error.message).toContain('role "polish_no_such_role" does not exist');
    expect(error.message).toContain('user name in DATABASE_URL');
  });

  it('a refused connection names the host and port and says the URL may be wrong', async () => {
    const r = await cliWith('postgres://postgres@127.0.0.1:1/postgres', 'list');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error SANDBOX_011: Cannot connect to PostgreSQL at 127\.0\.0\.1:1: the connection was refused\./);
    expect(r.err).toContain('DATABASE_URL may be wrong');
    expect(r.err.split('\n')).toHaveLength(1);
  });
});
