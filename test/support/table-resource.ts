import type pg from 'pg';
import type { ExternalResource } from '../../src/sandbox/resources.ts';

/**
 * A real external resource for tests of the two-phase paths: one row per sandbox in a table of
 * the test database, written through its own pool connection, so it commits outside the
 * manager's transactions exactly as a NATS stream or a Redis ACL user would. `failing` makes
 * the next ensure/remove calls throw, as an unreachable server would.
 */
export class TableResource implements ExternalResource {
  readonly failing = { ensure: false, remove: false };

  constructor(
    private readonly pool: pg.Pool,
    private readonly table: string,
    readonly kind = 'test-table',
    readonly bestEffort = false,
  ) {
    if (!/^[a-z_]+$/.test(table)) throw new Error('bad table name');
  }

  async install(): Promise<this> {
    await this.pool.query(`CREATE TABLE IF NOT EXISTS ${this.table} (sandbox_id uuid PRIMARY KEY)`);
    return this;
  }

  async ensure(sandboxId: string): Promise<void> {
    if (this.failing.ensure) throw new Error(`${this.kind} unreachable (ensure)`);
    await this.pool.query(`INSERT INTO ${this.table} (sandbox_id) VALUES ($1) ON CONFLICT DO NOTHING`, [sandboxId]);
  }

  async remove(sandboxId: string): Promise<void> {
    if (this.failing.remove) throw new Error(`${this.kind} unreachable (remove)`);
    await this.pool.query(`DELETE FROM ${this.table} WHERE sandbox_id = $1`, [sandboxId]);
  }

  async exists(sandboxId: string): Promise<boolean> {
    return ((await this.pool.query(`SELECT 1 FROM ${this.table} WHERE sandbox_id = $1`, [sandboxId])).rowCount ?? 0) > 0;
  }

  async list(): Promise<string[]> {
    return (await this.pool.query<{ id: string }>(`SELECT sandbox_id::text AS id FROM ${this.table} ORDER BY 1`)).rows.map((r) => r.id);
  }
}
