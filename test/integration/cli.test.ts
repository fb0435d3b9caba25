// The operator CLI, run in-process through its real argument parser against a real database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { botJoined, countRows, createTestDatabase, schemaExists, snowflake, type TestDatabase } from '../support/db.ts';
import { runCli } from '../../src/cli/program.ts';
import { exportLines } from '../../src/cli/shell.ts';

let db: TestDatabase;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

beforeAll(async () => {
  db = await createTestDatabase();
  process.env.DATABASE_URL = db.url;
  process.env.SANDBOX_OPERATOR = 'ops';
  process.env.SANDBOX_CREDENTIAL_SECRET ??= 'cli-test-secret-0123456789abcdef0123456789';
  delete process.env.DISCORD_TOKEN;
});
afterAll(async () => db?.drop());

describe('sandbox CLI', () => {
  it('create --json prints a running sandbox in the documented shape', async () => {
    const guild = snowflake();
    await botJoined(db, guild);
    const r = await cli('create', 'demo', '--owner', '123456789012345678', '--ttl', '500', '--guild', guild, '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out);
    expect(Object.keys(s)).toEqual([
      'id', 'name', 'owner', 'status', 'schemaName', 'guildIds', 'createdAt', 'expiresAt', 'destroyedAt', 'lastActivityAt', 'metadata', 'templateVersion', 'server', 'notices', 'claimedGuildIds',
    ]);
    expect(s).toMatchObject({ name: 'demo', owner: '123456789012345678', status: 'running', guildIds: [guild], destroyedAt: null });
    expect(s.notices).toEqual(['TTL capped at the maximum of 168 hours (you asked for 500).']);
    expect(await schemaExists(db, s.schemaName)).toBe(true);
  });

  it('defaults the owner to cli:<os user> and audits the operator as actor', async () => {
    const r = await cli('create', '--json');
    const s = JSON.parse(r.out);
    expect(s.owner).toBe('cli:ops');
    expect(s.name).toMatch(/^sandbox-ops-[0-9a-z]{6}$/);
    expect(await countRows(db, 'sandbox_audit_log', `sandbox_id = $1 AND event_type = 'created' AND actor = 'cli:ops'`, [s.id])).toBe(1);
  });

  it('list, status, extend, register-guild, unregister-guild and destroy work by name', async () => {
    const list = JSON.parse((await cli('list', '--json')).out);
    expect(list.map((s: { name: string }) => s.name)).toContain('demo');
    expect(JSON.parse((await cli('list', '--owner', '123456789012345678', '--json')).out)).toHaveLength(1);
    expect(JSON.parse((await cli('list', '--status', 'destroyed', '--json')).out)).toEqual([]);
    expect((await cli('list')).out).toMatch(/^NAME\s+STATUS\s+OWNER/);

    const status = JSON.parse((await cli('status', 'demo', '--json')).out);
    expect(status.health).toMatchObject({ healthy: true, schema: { state: 'ok', tables: [{ tableName: 'badges' }, { tableName: 'communities' }, { tableName: 'profiles' }] } });

    const before = JSON.parse((await cli('status', 'demo', '--json')).out).expiresAt;
    const extended = JSON.parse((await cli('extend', 'demo', '--hours', '2', '--json')).out);
    expect(new Date(extended.expiresAt).getTime()).toBeGreaterThanOrEqual(new Date(before).getTime());

    const guild = snowflake();
    expect((await cli('register-guild', 'demo', guild)).out).toMatch(/not in guild .* recorded a claim/);
    await botJoined(db, guild);
    const g2 = snowflake();
    await botJoined(db, g2);
    expect(JSON.parse((await cli('register-guild', 'demo', g2, '--json')).out)).toMatchObject({ outcome: 'mapped' });
    expect((await cli('unregister-guild', 'demo', g2)).out).toBe(`Guild ${g2} is no longer mapped to demo.`);
    // With the guild id alone, whatever holds the guild (here demo's claim on it) is released.
    expect((await cli('unregister-guild', guild)).out).toBe(`Guild ${guild}: claim by demo removed.`);
    const none = await cli('unregister-guild', guild);
    expect(none.code).toBe(1);
    expect(none.err).toBe(`error SANDBOX_004: Server ${guild} is not registered to any sandbox.`);

    const refused = await cli('destroy', 'demo');
    expect(refused.code).toBe(1);
    expect(refused.err).toBe('error SANDBOX_008: Refusing to destroy demo without --yes.');
    const destroyed = JSON.parse((await cli('destroy', 'demo', '--yes', '--json')).out);
    expect(destroyed).toMatchObject({ status: 'destroyed', guildIds: [] });
    expect(destroyed.destroyedAt).not.toBeNull();
    expect(await schemaExists(db, destroyed.schemaName)).toBe(false);
    expect(JSON.parse((await cli('list', '--all', '--json')).out).map((s: { status: string }) => s.status)).toContain('destroyed');
  });

  it('errors are one line on stderr with the code, and a non-zero exit', async () => {
    for (const [args, pattern] of [
      [['status', 'nope-not-here'], /^error SANDBOX_004: No sandbox named or with id "nope-not-here"\.$/],
      [['create', 'BAD NAME'], /^error SANDBOX_008: Invalid sandbox name/],
      [['create', 'ttl-zero', '--ttl', '0'], /^error SANDBOX_008: TTL must be at least 1 hour, got 0\.$/],
      [['create', 'ttl-text', '--ttl', 'soon'], /^error SANDBOX_008: option '--ttl <hours>' argument 'soon' is invalid\. Expected a whole number\./],
      [['extend', 'x-y-z', '--hours', '500'], /^error SANDBOX_008: Hours must be a whole number from 1 to 168/],
      [['register-guild', 'x-y-z', '1; rm -rf /'], /^error SANDBOX_008: Invalid guild id/],
      [['list', '--status', 'sideways'], /^error SANDBOX_008: Unknown status "sideways"/],
    ] as const) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.err).toMatch(pattern);
      expect(r.err.split('\n')).toHaveLength(1);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
    expect((await cli('frobnicate')).code).toBe(1);
  });

  it("commander's errors use the same one-line format with a code", async () => {
    const typo = await cli('lst');
    expect(typo.code).toBe(1);
    expect(typo.out).toBe('');
    expect(typo.err).toBe("error SANDBOX_008: unknown command 'lst' (did you mean list?). Run sandbox --help for usage.");
    const missing = await cli('status');
    expect(missing.err).toBe("error SANDBOX_008: missing required argument 'sandbox'. Run sandbox --help for usage.");
    const unknownOption = await cli('list', '--colour');
    expect(unknownOption.err).toMatch(/^error SANDBOX_008: unknown option '--colour'/);
    expect(unknownOption.err.split('\n')).toHaveLength(1);
  });

  it('with --json, errors are JSON on stderr, commander errors included', async () => {
    for (const args of [['lst', '--json'], ['status', 'nope-not-here', '--json'], ['create', 'x-y-z', '--ttl', 'abc', '--json']]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.out).toBe('');
      const parsed = JSON.parse(r.err) as { error: { code: string; message: string } };
      expect(Object.keys(parsed)).toEqual(['error']);
      expect(Object.keys(parsed.error)).toEqual(['code', 'message']);
    }
    expect(JSON.parse((await cli('status', 'nope-not-here', '--json')).err).error).toEqual({
      code: 'SANDBOX_004',
      message: 'No sandbox named or with id "nope-not-here".',
    });
    expect(JSON.parse((await cli('create', 'x-y-z', '--ttl', 'abc', '--json')).err).error.message).toContain("'--ttl <hours>'");
  });

  it('--version prints the package version', async () => {
    const r = await cli('--version');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.err).toBe('');
  });

  it('does not validate HTTP_PORT, which only the bot uses', async () => {
    process.env.HTTP_PORT = 'not-a-port';
    try {
      const r = await cli('list', '--json');
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
    } finally {
      delete process.env.HTTP_PORT;
    }
  });

  it('extend prints the new expiry; status of a destroyed sandbox says when it was destroyed', async () => {
    const created = JSON.parse((await cli('create', 'out-put', '--ttl', '2', '--json')).out);
    const extended = await cli('extend', 'out-put', '--hours', '3');
    expect(extended.code).toBe(0);
    const expiresAt = JSON.parse((await cli('status', 'out-put', '--json')).out).expiresAt;
    expect(extended.out).toMatch(new RegExp(`^out-put now expires ${expiresAt.replace(/\./g, '\\.')} \\(in 4h \\d+m\\)\\.$`));

    await cli('destroy', 'out-put', '--yes');
    const status = await cli('status', created.id);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(/^destroyed\s+\d{4}-\d\d-\d\dT[\d:.]+Z \(\d+m ago\)$/m);
    expect(status.out).not.toMatch(/expires|unhealthy/);
  });

  it('env prints export lines that a real bash evaluates to exactly the values', async () => {
    const s = JSON.parse((await cli('create', 'env-me', '--json')).out);
    const r = await cli('env', 'env-me');
    const got = execFileSync('bash', ['-c', `${r.out}\nprintf '%s\\n' "$SANDBOX_ID" "$SANDBOX_SCHEMA" "$SANDBOX_REDIS_PREFIX" "$SANDBOX_NATS_PREFIX"`], { encoding: 'utf8' });
    expect(got).toBe(`${s.id}\n${s.schemaName}\nsandbox:${s.id}:\nsandbox.${s.id}.\n`);
  });

  it("env (isolation on) prints the sandbox's own database and Redis logins and its NATS consumer, safe to eval", async () => {
    const saved = { REDIS_URL: process.env.REDIS_URL, NATS_URL: process.env.NATS_URL };
    process.env.REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
    process.env.NATS_URL = 'nats://127.0.0.1:4222';
    try {
      const s = JSON.parse((await cli('create', 'env-iso', '--json')).out);
      const hex = s.id.replaceAll('-', '');
      const r = await cli('env', 'env-iso');
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const got = execFileSync('bash', ['-c', `${r.out}\nprintf '%s\\n' "$SANDBOX_DATABASE_URL" "$SANDBOX_REDIS_URL" "$SANDBOX_NATS_URL" "$SANDBOX_NATS_CONSUMER"`], { encoding: 'utf8' }).split('\n');
      const secret = process.env.SANDBOX_CREDENTIAL_SECRET!;
      const pgPassword = createHmac('sha256', secret).update(`postgres:${s.id}`).digest('hex');
      const redisPassword = createHmac('sha256', secret).update(`redis:${s.id}`).digest('hex');
      const dbUrl = new URL(got[0]!);
      expect([dbUrl.username, dbUrl.password, dbUrl.pathname]).toEqual([`sandbox_${hex}`, pgPassword, `/${db.name}`]);
      const redisUrl = new URL(got[1]!);
      expect([redisUrl.username, redisUrl.password]).toEqual([`sandbox_${hex}`, redisPassword]);
      expect(got.slice(2, 4)).toEqual(['nats://127.0.0.1:4222', 'worker']);
      // The printed login is the sandbox's role, and it works in its schema only.
      const worker = new pg.Client({ connectionString: got[0] });
      await worker.connect();
      try {
        expect((await worker.query('SELECT session_user::text AS u')).rows[0].u).toBe(`sandbox_${hex}`);
        await worker.query(`SELECT count(*) FROM sandbox_${hex}.profiles`);
        await expect(worker.query('SELECT count(*) FROM public.sandboxes')).rejects.toThrow(/permission denied/);
      } finally {
        await worker.end();
      }
      // The CLI made the ACL user (REDIS_URL set), and its destroy removes it with the role.
      const redis = new Redis(process.env.REDIS_URL);
      try {
        expect(await redis.call('ACL', 'GETUSER', `sandbox_${hex}`)).not.toBeNull();
        const d = await cli('destroy', 'env-iso', '--yes');
        expect(d.err).toBe('');
        expect(await redis.call('ACL', 'GETUSER', `sandbox_${hex}`)).toBeNull();
      } finally {
        redis.disconnect();
      }
      expect(await countRows(db, 'pg_roles', 'rolname = $1', [`sandbox_${hex}`])).toBe(0);
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('rotate-credentials re-keys the live sandboxes and audits each', async () => {
    const s = JSON.parse((await cli('create', 'rotate-me', '--json')).out);
    const r = await cli('rotate-credentials');
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^Re-keyed \d+ sandbox\(es\) with the current SANDBOX_CREDENTIAL_SECRET\.$/);
    expect(await countRows(db, 'sandbox_audit_log', `sandbox_id = $1 AND event_type = 'credentials_rotated' AND actor = 'cli:ops'`, [s.id])).toBe(1);
    expect(await countRows(db, 'sandbox_audit_log', `sandbox_id IS NULL AND event_type = 'credentials_rotation_finished' AND actor = 'cli:ops' AND (details->>'failed')::int = 0`)).toBe(1);
  });

  it('rotate-credentials with isolation off says there is nothing to rotate', async () => {
    process.env.SANDBOX_ISOLATION = 'off';
    try {
      const r = await cli('rotate-credentials');
      expect(r.code).toBe(1);
      expect(r.err).toBe('error SANDBOX_008: Sandbox isolation is off (no DATABASE_URL, or SANDBOX_ISOLATION=off): there are no credentials to rotate.');
    } finally {
      delete process.env.SANDBOX_ISOLATION;
    }
  });

  it('env quoting survives hostile values under eval in a real bash', () => {
    const hostile = {
      A: '$(touch /tmp/sbx-pwned-a)',
      B: '`touch /tmp/sbx-pwned-b`',
      C: `it's "quoted" \\ back\\slash`,
      D: 'line one\nline two; echo injected',
      E: "'; touch /tmp/sbx-pwned-e; echo '",
      F: '${HOME} $PATH !! *',
      G: '',
    };
    const script = `eval "$(cat)"\nfor k in A B C D E F G; do printf '%s\\0' "\${!k}"; done`;
    const out = execFileSync('bash', ['-c', script], { input: exportLines(hostile), encoding: 'utf8' });
    expect(out.split('\0').slice(0, -1)).toEqual(Object.values(hostile));
    expect(() => execFileSync('test', ['-e', '/tmp/sbx-pwned-a'])).toThrow();
    expect(() => exportLines({ 'BAD NAME': 'x' })).toThrow(/invalid variable name/);
  });
});
