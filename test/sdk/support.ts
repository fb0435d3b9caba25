// Helpers for the SDK and isolation tests: a migrated control database of their own, sandboxes made
// the way provisioning makes them (row, schema, role), and URLs that log in as a sandbox's role.
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { SandboxCredentials, Secret } from '../../src/sandbox/credentials.ts';
import { SandboxRoles } from '../../src/sandbox/roles.ts';

export const SECRET = 'sdk-test-credential-secret-0123456789abcdef';
export const credentials = new SandboxCredentials(new Secret(SECRET));
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

export interface TestSandbox {
  id: string;
  hex: string;
  schema: string;
  name: string;
}

export class IsolationFixture {
  readonly roles = new SandboxRoles(credentials);
  private readonly made: string[] = [];
  private constructor(readonly db: TestDatabase) {}

  static async create(): Promise<IsolationFixture> {
    return new IsolationFixture(await createTestDatabase({ poolSize: 5 }));
  }

  /** Inserts the row, then creates schema and role in one transaction, as provisioning does. */
  async sandbox(status = 'running', opts: { role?: boolean } = {}): Promise<TestSandbox> {
    const id = randomUUID();
    const hex = id.replaceAll('-', '');
    const name = `sdk-${hex.slice(0, 8)}`;
    await this.db.pool.query(
      `INSERT INTO sandboxes (id, name, owner, status, schema_name, expires_at) VALUES ($1, $2, 'cli:test', $3, sandbox_schema_name($1), now() + interval '1 hour')`,
      [id, name, status],
    );
    this.made.push(id);
    await this.db.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT create_sandbox_schema(${id}::uuid)`;
      if (opts.role !== false) await this.roles.create(tx, id);
    });
    return { id, hex, schema: `sandbox_${hex}`, name };
  }

  /** The control database URL logged in as the sandbox's role, with its derived password. */
  roleUrl(id: string): string {
    return credentials.databaseUrl(this.db.url, id);
  }

  /** Drops every role this fixture made (roles are cluster-wide), then the database. */
  async drop(): Promise<void> {
    for (const id of this.made) await this.roles.drop(this.db.prisma, id).catch(() => undefined);
    await this.db.drop();
  }
}
