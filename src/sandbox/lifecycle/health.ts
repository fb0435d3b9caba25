import { ErrorCode, SandboxError } from '../errors.ts';
import { DEFAULT_SERVER } from '../servers.ts';
import type { Actor, Sandbox, SandboxHealth } from '../types.ts';
import { guard, type LifecycleContext } from './context.ts';
import { resolveFor } from './lookups.ts';
import { withServer } from './on-server.ts';

/** A sandbox and its health, resolved once (CLI `status`, `/sandbox status`). SANDBOX_011 when its database server is down. */
export const getStatus = (ctx: LifecycleContext, ref: string, actor: Actor): Promise<{ sandbox: Sandbox; health: SandboxHealth }> =>
  guard(async () => {
    const sandbox = await resolveFor(ctx, ref, actor);
    return { sandbox, health: await healthOf(ctx, sandbox) };
  });

/** Real checks: the schema and its exact row counts, the guilds, the TTL left, a Redis PING, the event stream. */
async function healthOf(ctx: LifecycleContext, sandbox: Sandbox): Promise<SandboxHealth> {
  let schema: SandboxHealth['schema'];
  try {
    const stats = await withServer(ctx, sandbox.server, (db) => ctx.schemas.getSchemaStats(sandbox.id, db));
    schema = { ...stats, state: stats.exists ? 'ok' : 'missing' };
  } catch (err) {
    // The server holding it is down: say so (SANDBOX_011, naming it), rather than a schema "error".
    if (err instanceof SandboxError && err.code === ErrorCode.Unavailable && sandbox.status !== 'destroyed') throw err;
    schema = { exists: false, tables: [], totalRows: 0, state: 'error' };
    ctx.log.warn({ sandboxId: sandbox.id, err }, 'schema stats failed');
  }
  let redis: SandboxHealth['redis'] = { state: 'disabled' };
  if (ctx.redis) {
    try {
      await ctx.redis.ping();
      redis = { state: 'ok' };
    } catch (err) {
      redis = { state: 'error', detail: (err as Error).message };
    }
  }
  let events: SandboxHealth['events'] = { state: 'disabled' };
  if (ctx.events) {
    try {
      const stats = await ctx.events.stats(sandbox.id);
      events = stats ? { state: 'ok', messages: stats.messages, bytes: stats.bytes } : { state: 'missing' };
    } catch (err) {
      events = { state: 'error', detail: (err as Error).message };
    }
  }
  return {
    sandboxId: sandbox.id,
    status: sandbox.status,
    // The tables are the template's (any number): a schema that exists and answers is healthy.
    healthy: sandbox.status === 'running' && schema.state === 'ok' && redis.state !== 'error' && (events.state === 'ok' || events.state === 'disabled'),
    schema,
    guildCount: sandbox.guildIds.length,
    ttlRemainingMs: Math.max(0, sandbox.expiresAt.getTime() - ctx.clock().getTime()),
    redis,
    events,
    checkedAt: ctx.clock(),
  };
}

/**
 * Environment for code under test, as the SDK reads it. With isolation on it includes the sandbox's
 * own derived credentials (SANDBOX_DATABASE_URL, SANDBOX_REDIS_URL): only its owner or an admin
 * gets here, and the bot replies ephemerally. Never the control role's credentials.
 */
export const getConnectionDetails = (ctx: LifecycleContext, ref: string, actor: Actor): Promise<Record<string, string>> =>
  guard(async () => {
    const s = await resolveFor(ctx, ref, actor);
    return {
      SANDBOX_ID: s.id,
      SANDBOX_NAME: s.name,
      SANDBOX_SCHEMA: s.schemaName,
      SANDBOX_REDIS_PREFIX: `sandbox:${s.id}:`,
      SANDBOX_NATS_PREFIX: `sandbox.${s.id}.`,
      // The worker's events: its stream and the subjects in it (see the README, "Event routing").
      SANDBOX_NATS_SUBJECT: `sandbox.${s.id}.events.>`,
      SANDBOX_NATS_STREAM: `SANDBOX_${s.id.replaceAll('-', '')}`,
      ...(ctx.events ? { SANDBOX_NATS_URL: ctx.events.natsUrl } : {}),
      SANDBOX_GUILD_IDS: s.guildIds.join(','),
      // Credentials and the NATS consumer (isolation and routing wiring: src/isolation.ts).
      // Several servers: which one holds it (its URL is SANDBOX_DATABASE_URL's host).
      ...(ctx.servers.several ? { SANDBOX_DATABASE_SERVER: s.server } : {}),
      ...ctx.connectionEnv?.(s, s.server === DEFAULT_SERVER ? undefined : ctx.servers.handle(s.server).url),
    };
  });
