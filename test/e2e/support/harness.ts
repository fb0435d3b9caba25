import { Writable } from 'node:stream';
import { startApp, type App, type AppOptions } from '../../../src/app.ts';
import { loadConfig } from '../../../src/config.ts';
import { createLogger, type Logger } from '../../../src/logger.ts';
import { FakeDiscord, type CommandOptions, type InteractionHandle } from '../../fake-discord/index.ts';
import { createTestDatabase, snowflake, type TestDatabase } from '../../support/db.ts';

/** Log lines written by the bot through the product's logger (with its redaction), raw and parsed. */
export class LogCapture {
  readonly lines: Record<string, unknown>[] = [];
  readonly raw: string[] = [];
  readonly logger: Logger;

  constructor() {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const line of chunk.toString().split('\n')) {
          if (!line.trim()) continue;
          this.raw.push(line);
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        }
        done();
      },
    });
    this.logger = createLogger('info', sink);
  }

  find(predicate: (line: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
    return this.lines.find(predicate);
  }

  /** Log lines containing any of these secrets (should be none). */
  leaking(secrets: readonly string[]): string[] {
    return this.raw.filter((line) => secrets.some((secret) => line.includes(secret)));
  }
}

/** The credential secret of the bots the harness starts (isolation is on: DATABASE_URL is a PostgreSQL server). */
export const E2E_SECRET = 'e2e-harness-credential-secret-0123456789abcdef';

export interface Env {
  fake: FakeDiscord;
  db: TestDatabase;
  logs: LogCapture;
  adminId: string;
  /** Starts the bot (a fresh discord.js client) on this fake and database. The rate limit is set
   *  out of reach unless `env` sets RATE_LIMIT_PER_MINUTE (the rate-limit test does). */
  start(overrides?: Partial<AppOptions>, env?: Record<string, string>): Promise<App>;
  /** Stops every app started and the fake, and drops the database. */
  close(): Promise<void>;
}

export async function setupEnv(): Promise<Env> {
  const fake = await FakeDiscord.start();
  const db = await createTestDatabase();
  const logs = new LogCapture();
  const adminId = snowflake();
  const apps: App[] = [];
  return {
    fake,
    db,
    logs,
    adminId,
    async start(overrides = {}, env = {}) {
      // A PostgreSQL server, so isolation is on as in production (each sandbox gets its role).
      const config = loadConfig(
        { DISCORD_TOKEN: fake.token, BOT_ADMIN_IDS: adminId, HTTP_PORT: '0', RATE_LIMIT_PER_MINUTE: '100000', DATABASE_URL: db.url, SANDBOX_CREDENTIAL_SECRET: E2E_SECRET, ...env },
        { requireDiscordToken: true },
      );
      const app = await startApp({ config, logger: logs.logger, databaseUrl: db.url, apiUrl: fake.apiBase, ...overrides });
      apps.push(app);
      return app;
    },
    async close() {
      for (const app of apps) await app.stop().catch(() => undefined);
      await fake.stop();
      await db.drop();
      // Every e2e file checks that no interaction token or bot token reached a log line.
      const secrets = [...fake.state.interactionsByToken.keys(), fake.token];
      const leaks = logs.leaking(secrets);
      if (leaks.length) throw new Error(`${leaks.length} log line(s) contain a token, e.g. ${leaks[0]!.slice(0, 300)}`);
    },
  };
}

export const sandboxCommand = (opts: Omit<CommandOptions, 'name'>): CommandOptions => ({ name: 'sandbox', ...opts });

/** Polls a condition that the bot reaches asynchronously (gateway events); fails after `timeoutMs`. */
export async function eventually<T>(probe: () => Promise<T | null | undefined | false> | T | null | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The final text of a command's reply: content plus embed text. */
export async function finalText(handle: InteractionHandle, timeoutMs = 10_000): Promise<string> {
  await handle.settled({ timeoutMs });
  return messageText(handle.edits.at(-1) ?? (handle.callback?.data as Record<string, unknown> | undefined) ?? {});
}

export function messageText(body: Record<string, unknown>): string {
  const embeds = (body.embeds as { title?: string; description?: string; fields?: { name: string; value: string }[] }[] | undefined) ?? [];
  const parts = [String(body.content ?? '')];
  for (const e of embeds) parts.push(e.title ?? '', e.description ?? '', ...(e.fields ?? []).map((f) => `${f.name}: ${f.value}`));
  return parts.filter(Boolean).join('\n');
}

/** Records INTERACTION_CREATE → first callback and → final edit, for the closing note. */
export class LatencyLog {
  private readonly ack: number[] = [];
  private readonly final: number[] = [];

  record(handle: InteractionHandle): void {
    const first = handle.responses[0];
    const last = handle.responses.filter((r) => r.kind === 'edit').at(-1);
    if (first) this.ack.push(first.at - handle.sentAt);
    if (last) this.final.push(last.at - handle.sentAt);
  }

  report(label: string): void {
    const stats = (xs: number[]) => {
      const sorted = [...xs].sort((a, b) => a - b);
      const median = sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : NaN;
      return `median ${median.toFixed(1)} ms, max ${(sorted.at(-1) ?? NaN).toFixed(1)} ms (n=${sorted.length})`;
    };
    console.log(`[latency ${label}] INTERACTION_CREATE → first callback: ${stats(this.ack)}; → final edit: ${stats(this.final)}`);
  }
}

/** A guild in the fake whose owner is a fresh user; extra members may lack Manage Server. */
export function addGuild(fake: FakeDiscord, opts: { id?: string; ownerId?: string; members?: string[]; managers?: string[] } = {}): { guildId: string; ownerId: string } {
  const ownerId = opts.ownerId ?? snowflake();
  const managerRole = snowflake();
  const guildId = fake.addGuild({
    ...(opts.id ? { id: opts.id } : {}),
    ownerId,
    roles: [{ id: managerRole, name: 'managers', permissions: '32' }],
    members: [...(opts.members ?? []).map((userId) => ({ userId })), ...(opts.managers ?? []).map((userId) => ({ userId, roles: [managerRole] }))],
  });
  return { guildId, ownerId };
}
