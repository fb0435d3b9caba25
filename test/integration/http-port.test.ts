// The bot started as a user would (`src/main.ts`) when HTTP_PORT is taken: one line naming the variable, no stack.
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
let busy: Server;
let port: number;

beforeAll(async () => {
  db = await createTestDatabase();
  busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  port = (busy.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((r) => busy.close(() => r()));
  await db?.drop();
});

it('says in one line that HTTP_PORT is in use, and exits 1', async () => {
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts'],
      {
        env: { PATH: process.env.PATH, DISCORD_TOKEN: 'not-used-here', DATABASE_URL: db.url, SANDBOX_CREDENTIAL_SECRET: 'test-secret-test-secret-test-secret-0123', HTTP_PORT: String(port), HTTP_HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
        timeout: 60_000,
      },
      (_err, _stdout, stderr) => resolve({ code: child.exitCode, stderr }),
    );
  });
  expect(result.code).toBe(1);
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(`HTTP_PORT ${port} is already in use`);
  expect(lines[0]).toContain('SANDBOX_013');
  expect(result.stderr).not.toMatch(/\n\s+at /);
}, 90_000);
