// Example worker: keeps a profile per member from Discord events, using only the SDK.
//
//   eval "$(sandbox env my-sandbox)" && npx tsx examples/profile-worker.ts   # against a sandbox
//   PRODUCTION_DATABASE_URL=… REDIS_URL=… NATS_URL=… npx tsx examples/profile-worker.ts   # production
//
// The same code runs in both places: connectSandbox() reads SANDBOX_* when SANDBOX_ID is set, and
// production's variables otherwise. Outside this repository, import from 'discord-server-sandboxes/sdk'.
//
// - MESSAGE_CREATE: upserts the guild's community and the author's profile, counting messages in
//   activity_score, and caches the time of the author's last message in Redis.
// - GUILD_MEMBER_ADD: inserts a profile for the new member (0 messages).
// Each message is counted once: its id is claimed in Redis (SET NX) before the database write, and
// released again if the write fails, so a redelivered event is acked without counting twice.
import { pathToFileURL } from 'node:url';
import { connectSandbox, type SandboxConnection, type SandboxEvent } from '../src/sdk/index.ts';

interface Author {
  id: string;
  bot?: boolean;
}
interface MessageCreate {
  id: string;
  guild_id?: string;
  author: Author;
  timestamp?: string;
}
interface GuildMemberAdd {
  guild_id: string;
  user: Author;
}

const DAY_SECONDS = 86_400;

/** The guild's community row (made on first sight) and the member's profile, in one statement. */
const UPSERT_PROFILE = `
  WITH community AS (
    INSERT INTO communities (name, discord_guild_id) VALUES ('guild ' || $1, $1)
    ON CONFLICT (discord_guild_id) DO UPDATE SET updated_at = now()
    RETURNING id
  )
  INSERT INTO profiles (community_id, discord_id, activity_score)
  SELECT id, $2, $3 FROM community
  ON CONFLICT (community_id, discord_id)
  DO UPDATE SET activity_score = profiles.activity_score + EXCLUDED.activity_score, updated_at = now()`;

export async function onMessageCreate(sb: SandboxConnection, m: MessageCreate): Promise<void> {
  if (!m.guild_id || m.author.bot) return;
  // Claim the message id first: a redelivered event finds it and is not counted again.
  const claimed = await sb.redis.set(`seen:${m.id}`, '1', 'EX', DAY_SECONDS, 'NX');
  if (claimed === null) return;
  try {
    await sb.db.query(UPSERT_PROFILE, [m.guild_id, m.author.id, 1]);
  } catch (err) {
    await sb.redis.del(`seen:${m.id}`);
    throw err;
  }
  await sb.redis.set(`last-message:${m.guild_id}:${m.author.id}`, m.timestamp ?? new Date().toISOString(), 'EX', 30 * DAY_SECONDS);
}

export async function onGuildMemberAdd(sb: SandboxConnection, m: GuildMemberAdd): Promise<void> {
  if (m.user.bot) return;
  await sb.db.query(UPSERT_PROFILE, [m.guild_id, m.user.id, 0]);
}

export async function handle(sb: SandboxConnection, ev: SandboxEvent): Promise<void> {
  if (ev.type === 'MESSAGE_CREATE') await onMessageCreate(sb, ev.data as MessageCreate);
  else if (ev.type === 'GUILD_MEMBER_ADD') await onGuildMemberAdd(sb, ev.data as GuildMemberAdd);
}

async function main(): Promise<void> {
  const sb = await connectSandbox();
  const where = sb.mode === 'sandbox' ? `sandbox ${sb.sandboxId}` : 'production';
  const shutdown = (): void => void sb.close();
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  console.log(JSON.stringify({ msg: 'profile worker ready', where, schema: sb.schema, stream: sb.events.stream }));
  for await (const ev of sb.events) {
    try {
      await handle(sb, ev);
      ev.ack();
    } catch (err) {
      // Never crash on one event: log it and let it come back in a few seconds.
      console.error(JSON.stringify({ msg: 'event failed', type: ev.type, error: (err as Error).message }));
      ev.nak(5_000);
    }
  }
  await sb.close();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? `${err.name}: ${err.message}` : err);
    process.exit(1);
  });
}
