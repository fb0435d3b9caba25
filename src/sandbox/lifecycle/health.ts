import type { Actor, Sandbox, SandboxHealth } from '../types.ts';
import { guard, type LifecycleContext } from './context.ts';
import { resolveFor } from './lookups.ts';

/** A sandbox and its health, resolved once (CLI `status`, `/sandbox status`). */
export const getStatus = (ctx: LifecycleContext, ref: string, actor: Actor): Promise<{ sandbox: Sandbox; health: SandboxHealth }> =>
  guard(async () => {
    const sandbox = await resolveFor(ctx, ref, actor);
    return { sandbox, health: await healthOf(ctx, sandbox) };
  });

/** Real checks: the schema and its exact row counts, the guilds, the TTL left, a Redis PING, the event stream. */
async function healthOf(ctx: LifecycleContext, sandbox: Sandbox): Promise<SandboxHealth> {
  let schema: SandboxHealth['schema'];
  try {
    const stats = await ctx.schemas.getSchemaStats(sandbox.id);
    schema = { ...stats, state: stats.exists ? 'ok' : 'missing' };
  } catch (err) {
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
      ...ctx.connectionEnv?.(s),
    };
  });
