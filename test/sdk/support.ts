// Helpers for the SDK and isolation tests: a migrated control database of their own, sandboxes made
// by the SandboxManager with the role driver (row, schema, role in the provisioning transaction), and
// URLs that log in as a sandbox's role.
import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { SandboxCredentials, Secret } from '../../src/sandbox/credentials.ts';
import { SandboxRoles } from '../../src/sandbox/store/roles.ts';
import { SandboxManager } from '../../src/sandbox/manager.ts';
import type { ExternalResource } from '../../src/sandbox/resources.ts';
import type { Actor, SandboxStatus } from '../../src/sandbox/types.ts';
import { silentLogger } from '../../src/logger.ts';

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

export const OPERATOR: Actor = { kind: 'operator', name: 'sdk-test' };

export class IsolationFixture {
  readonly roles = new SandboxRoles(credentials);
  readonly manager: SandboxManager;
  private readonly made: string[] = [];
  private constructor(
    readonly db: TestDatabase,
    resources: ExternalResource[],
  ) {
    this.manager = new SandboxManager({ prisma: db.prisma, logger: silentLogger(), postgresResources: [this.roles], resources, limits: { maxPerOwner: 1000 } });
  }

  /** `resources`: external drivers the manager also gets (Redis ACL user and keys, a stream). */
  static async create(opts: { resources?: ExternalResource[] } = {}): Promise<IsolationFixture> {
    return new IsolationFixture(await createTestDatabase({ poolSize: 5 }), opts.resources ?? []);
  }

  /**
   * A sandbox made by the manager (schema and role in the provisioning transaction), then moved to
   * `status`. `role: false` drops the role afterwards (a sandbox whose role is missing).
   */
  async sandbox(status: SandboxStatus = 'running', opts: { role?: boolean } = {}): Promise<TestSandbox> {
    const name = `sdk-${randomUUID().slice(0, 8)}`;
    const { sandbox } = await this.manager.create({ name }, OPERATOR);
    const id = sandbox.id;
    this.made.push(id);
    if (status !== 'running') await this.manager.transition(id, 'running', status, OPERATOR);
    if (opts.role === false) await this.roles.drop(this.db.prisma, id);
    const hex = id.replaceAll('-', '');
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
