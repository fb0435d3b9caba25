import { randomInt } from 'node:crypto';
import { startApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { FakeDiscord } from '../../test/fake-discord/index.ts';
import { BENCH_ACTOR } from '../operations.ts';
import { summarize, type LatencyStats } from '../stats.ts';

export interface AckResult {
  commands: number;
  /** INTERACTION_CREATE dispatched → first callback received by the fake (the defer). */
  ack: LatencyStats;
  /** INTERACTION_CREATE dispatched → last edit of the reply (the answer itself). */
  final: LatencyStats;
  /** Commands whose first callback was not a deferral (should be 0). */
  notDeferred: number;
}

const snowflake = (): string => `${1 + randomInt(9)}${Array.from({ length: 17 }, () => randomInt(10)).join('')}`;

/**
 * The real bot (startApp, a discord.js client) against the e2e fake Discord, on the bench
 * database. Alternates `/sandbox list` and `/sandbox status <sandbox>`, one at a time, each
 * waited for until it settles.
 */
export async function runInteractionAck(databaseUrl: string, opts: { commands: number; warmup: number }): Promise<AckResult> {
  const fake = await FakeDiscord.start();
  const userId = snowflake();
  const guildId = fake.addGuild({ ownerId: userId });
  const config = loadConfig({ DISCORD_TOKEN: fake.token, HTTP_PORT: '0', LOG_LEVEL: 'silent' }, { requireDiscordToken: true });
  try {
    const app = await startApp({ config, logger: silentLogger(), databaseUrl, apiUrl: fake.apiBase });
    try {
      const { sandbox } = await app.manager.create({ owner: userId, name: 'bench-status' }, BENCH_ACTOR);
      const send = (i: number) =>
        fake.sendCommand(
          i % 2 === 0
            ? { name: 'sandbox', guildId, userId, subcommand: 'list' }
            : { name: 'sandbox', guildId, userId, subcommand: 'status', options: { sandbox: sandbox.name } },
        );
      const ack: number[] = [];
      const final: number[] = [];
      let notDeferred = 0;
      for (let i = 0; i < opts.warmup + opts.commands; i++) {
        const handle = send(i);
        await handle.settled({ quietMs: 20, timeoutMs: 15_000 });
        if (i < opts.warmup) continue;
        const first = handle.responses[0]!;
        const last = handle.responses.filter((r) => r.kind === 'edit').at(-1) ?? first;
        ack.push(first.at - handle.sentAt);
        final.push(last.at - handle.sentAt);
        if (!handle.deferred) notDeferred++;
      }
      await app.manager.destroy(sandbox.id, BENCH_ACTOR);
      return { commands: opts.commands, ack: summarize(ack), final: summarize(final), notDeferred };
    } finally {
      await app.stop();
    }
  } finally {
    await fake.stop();
  }
}
