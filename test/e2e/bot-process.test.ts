// The bot as its own process (what several-process and kill -9 tests build on): it starts from src/main.ts with only
// environment variables, answers a command, and a SIGTERM stops it cleanly.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FakeDiscord } from '../fake-discord/index.ts';
import { processEnv, startBotProcess, type BotProcess } from '../support/bot-process.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { addGuild, finalText, sandboxCommand } from './support/harness.ts';

let fake: FakeDiscord;
let db: TestDatabase;
let bot: BotProcess | undefined;

beforeAll(async () => {
  fake = await FakeDiscord.start();
  db = await createTestDatabase();
});

afterAll(async () => {
  await bot?.kill();
  await fake?.stop();
  await db?.drop();
});

it('starts from the environment alone, answers /sandbox, and exits 0 on SIGTERM', async () => {
  const { guildId, ownerId } = addGuild(fake);
  bot = await startBotProcess(processEnv(fake, db.url));
  expect(bot.httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  await bot.waitReady();
  const handle = fake.sendCommand(sandboxCommand({ guildId, userId: ownerId, subcommand: 'list' }));
  expect(await finalText(handle, 20_000)).toContain('No sandboxes.');
  expect(await bot.stop()).toBe(0);
  expect(bot.logs.some((l) => l.msg === 'stopped')).toBe(true);
  // The token never reaches a log line.
  expect(bot.logs.filter((l) => JSON.stringify(l).includes(fake.token))).toEqual([]);
}, 120_000);

it('a SIGTERM while it is still starting stops it cleanly once started (exit 0), not by the default action', async () => {
  const starting = await startBotProcess(processEnv(fake, db.url), { name: 'starting' });
  // Resolved at "http server listening": the gateway login, reconciliation and registration are still to come.
  expect(starting.logs.some((l) => l.msg === 'gateway ready')).toBe(false);
  expect(await starting.stop()).toBe(0);
  const messages = starting.logs.map((l) => l.msg);
  expect(messages).toContain('stop requested while starting; stopping once started');
  expect(messages).toContain('gateway ready');
  expect(messages.indexOf('gateway ready')).toBeLessThan(messages.indexOf('stopped'));
  expect(messages).toContain('stopped');
}, 120_000);
