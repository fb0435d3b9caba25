import type { Prisma } from '../../generated/prisma/client.ts';
import type { PrismaClient } from '../../db/database.ts';

/**
 * The queries the bot's own machinery needs (health, /metrics, state that survives a restart),
 * kept with the rest of the store so that no Prisma query runs anywhere else.
 */
export class BotStore {
  constructor(private readonly prisma: PrismaClient) {}

  /** Resolves when the database answers (the /readyz probe). */
  async ping(): Promise<void> {
    await this.prisma.$queryRaw`SELECT 1`;
  }

  /** Exact row counts by status, in one statement; statuses with no rows are absent. */
  async countByStatus(): Promise<Map<string, number>> {
    const rows = await this.prisma.$queryRaw<{ status: string; n: number }[]>`
      SELECT status::text AS status, count(*)::int AS n FROM sandboxes GROUP BY status`;
    return new Map(rows.map((r) => [r.status, Number(r.n)]));
  }

  /** A `bot_state` value, or null when the key was never written. */
  async readState(key: string): Promise<Prisma.JsonValue | null> {
    const row = await this.prisma.botState.findUnique({ where: { key } });
    return row?.value ?? null;
  }

  async writeState(key: string, value: Prisma.InputJsonValue): Promise<void> {
    await this.prisma.botState.upsert({ where: { key }, create: { key, value }, update: { value } });
  }

  async deleteState(key: string): Promise<void> {
    await this.prisma.botState.deleteMany({ where: { key } });
  }
}
