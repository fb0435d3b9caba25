import { FakeDiscord } from './index.ts';

const port = Number(process.env.FAKE_DISCORD_PORT ?? 3210);
// FAKE_DISCORD_SHARDS: the shard count GET /gateway/bot recommends (for trying SHARD_COUNT=auto).
const shards = process.env.FAKE_DISCORD_SHARDS ? Number(process.env.FAKE_DISCORD_SHARDS) : undefined;
const fake = await FakeDiscord.start({ port, token: process.env.FAKE_DISCORD_TOKEN, control: true, shards });

console.log(`DISCORD_API_URL=${fake.apiBase}`);
console.log(`DISCORD_TOKEN=${fake.token}`);
console.log(`DISCORD_APPLICATION_ID=${fake.applicationId}`);
console.log(`# control API: ${fake.baseUrl}/_control/ (POST guilds, DELETE guilds/:id?unavailable=1, POST commands, GET state)`);
fake.on('request', (r) => console.log(`${r.method} ${r.path}`));

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void fake.stop().then(() => process.exit(0)));
}
