import { envReaders } from './env-readers.ts';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_DATA_DIR, PROJECT_ROOT } from './paths.ts';
import { ErrorCode, SandboxError } from './sandbox/errors.ts';
import { isSnowflake } from './sandbox/validation.ts';
import type { SandboxLimits } from './sandbox/types.ts';
import { Secret } from './sandbox/credentials.ts';
import { parseRoutingConfig, type RoutingConfig } from './routing/config.ts';
import { parseShardConfig, type ShardConfig } from './shards.ts';

export interface Config {
  databaseUrl: string | undefined;
  dataDir: string;
  redisUrl: string | undefined;
  logLevel: string;
  limits: SandboxLimits;
  adminIds: ReadonlySet<string>;
  discord: {
    token: string | undefined;
    apiUrl: string | undefined;
    devGuildId: string | undefined;
  };
  http: { port: number; host: string };
  sweeper: {
    intervalMs: number;
    graceMs: number;
    warnBeforeMs: number;
    stuckAfterMs: number;
  };
  /** Templates: the schema new sandboxes are built from (SANDBOX_TEMPLATE_SCHEMA, default sandbox_template). */
  templateSchema?: string;
  /** Event routing (NATS); off when routing.natsUrl is undefined. */
  routing: RoutingConfig;
  /** Per-user limit on mutating slash commands (issue 8 item 6). */
  rateLimit: { perMinute: number; keyPrefix: string };
  /**
   * Gateway sessions and the identify throttle in Redis (with REDIS_URL): key prefix GATEWAY_KEY_PREFIX.
   * GATEWAY_RESUME_AFTER_STOP: a clean stop keeps the sessions resumable too (default off: it ends them).
   * GATEWAY_IDENTIFY_WINDOW_MS: the Redis identify throttle's window, for tests only (Discord's is 5 s, the default).
   */
  gateway: { keyPrefix: string; resumeAfterStop: boolean; identifyWindowMs: number };
  /** Enforced isolation (per-sandbox PostgreSQL role and Redis ACL user). */
  isolation: IsolationConfig;
  /** SHARD_COUNT and SHARD_IDS: the gateway shards this process runs. */
  shards: ShardConfig;
  /**
   * SANDBOX_DATABASE_SERVERS: the servers sandbox schemas are placed on besides the control server
   * (always named `default`), in the configured order. Empty: every schema on the control database.
   */
  databaseServers: DatabaseServerConfig[];
}

export interface DatabaseServerConfig {
  /** [a-z0-9_-]{1,32}, unique; never `default`. */
  name: string;
  /** postgres(ql)://; may hold a password: never logged. */
  url: string;
}

export interface IsolationConfig {
  /** SANDBOX_ISOLATION: on by default with DATABASE_URL (a PostgreSQL server), off on the embedded database. */
  enabled: boolean;
  /** SANDBOX_CREDENTIAL_SECRET: required when enabled; never logged (Secret redacts itself). */
  credentialSecret: Secret | undefined;
}

/** Loads `.env` from the project root (then the current directory) when present. Real env wins. */
export function loadDotEnv(): void {
  for (const file of [resolve(PROJECT_ROOT, '.env'), resolve(process.cwd(), '.env')]) {
    if (existsSync(file)) {
      process.loadEnvFile(file);
      return;
    }
  }
}

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/**
 * Validates the whole configuration before anything touches state. Collects every problem
 * and throws one SandboxError (SANDBOX_013) listing them all.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, opts: { requireDiscordToken?: boolean } = {}): Config {
  const problems: string[] = [];
  const { str, int } = envReaders(env, problems);
  const url = (key: string, protocols: string[]): string | undefined => {
    const raw = str(key);
    if (raw === undefined) return undefined;
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol)) problems.push(`${key} must use ${protocols.join(' or ')}`);
    } catch {
      problems.push(`${key} is not a valid URL`);
    }
    return raw;
  };

  const token = str('DISCORD_TOKEN');
  if (opts.requireDiscordToken && !token) {
    problems.push('DISCORD_TOKEN is not set: put DISCORD_TOKEN=<your bot token> in .env (see .env.example) or the environment');
  }
  const adminIds = (str('BOT_ADMIN_IDS') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of adminIds) if (!isSnowflake(id)) problems.push(`BOT_ADMIN_IDS contains ${JSON.stringify(id)}, which is not a Discord user id`);
  const devGuildId = str('DEV_GUILD_ID');
  if (devGuildId && !isSnowflake(devGuildId)) problems.push('DEV_GUILD_ID must be a Discord guild id (17-20 digits)');
  const logLevel = str('LOG_LEVEL') ?? 'info';
  if (!LEVELS.has(logLevel)) problems.push(`LOG_LEVEL must be one of ${[...LEVELS].join(', ')}`);

  const maxTtlHours = int('SANDBOX_MAX_TTL_HOURS', 168, 1, 8760);
  const config: Config = {
    databaseUrl: url('DATABASE_URL', ['postgres:', 'postgresql:']),
    dataDir: resolve(str('SANDBOX_DATA_DIR') ?? DEFAULT_DATA_DIR),
    redisUrl: url('REDIS_URL', ['redis:', 'rediss:']),
    logLevel,
    limits: {
      maxPerOwner: int('SANDBOX_MAX_PER_OWNER', 5, 1, 1000),
      defaultTtlHours: int('SANDBOX_DEFAULT_TTL_HOURS', 24, 1, 8760),
      maxTtlHours,
      maxTotal: int('SANDBOX_MAX_TOTAL', 500, 1, 10_000_000),
      claimTtlHours: int('CLAIM_TTL_HOURS', 72, 1, 8760),
      maxClaimsPerUser: int('MAX_CLAIMS_PER_USER', 10, 1, 100_000),
      maxClaimCheckAttempts: int('CLAIM_CHECK_ATTEMPTS', 5, 1, 1000),
      destroyLeaseMs: int('DESTROY_LEASE_SECONDS', 60, 1, 86_400) * 1000,
    },
    adminIds: new Set(adminIds),
    discord: { token, apiUrl: url('DISCORD_API_URL', ['http:', 'https:']), devGuildId },
    http: { port: int('HTTP_PORT', 8080, 0, 65535), host: str('HTTP_HOST') ?? '127.0.0.1' },
    sweeper: {
      intervalMs: int('SWEEP_INTERVAL_SECONDS', 60, 1, 86_400) * 1000,
      graceMs: int('EXPIRY_GRACE_MINUTES', 60, 0, 10_080) * 60_000,
      warnBeforeMs: int('EXPIRY_WARNING_MINUTES', 60, 0, 10_080) * 60_000,
      stuckAfterMs: int('STUCK_THRESHOLD_MINUTES', 10, 1, 1440) * 60_000,
    },
    // Mutating commands per user and minute; buckets live in Redis under the prefix when REDIS_URL is set.
    rateLimit: {
      perMinute: int('RATE_LIMIT_PER_MINUTE', 10, 1, 1_000_000),
      keyPrefix: str('RATE_LIMIT_KEY_PREFIX') ?? 'sandbox-bot:ratelimit:',
    },
    gateway: {
      keyPrefix: str('GATEWAY_KEY_PREFIX') ?? 'sandbox-bot:gateway:',
      resumeAfterStop: onOff(env, 'GATEWAY_RESUME_AFTER_STOP', false, problems),
      identifyWindowMs: int('GATEWAY_IDENTIFY_WINDOW_MS', 5000, 100, 60_000),
    },
    isolation: { enabled: false, credentialSecret: undefined },
    routing: parseRoutingConfig(env, problems),
    shards: parseShardConfig(env, problems),
    databaseServers: [],
  };
  config.databaseServers = parseDatabaseServers(str('SANDBOX_DATABASE_SERVERS'), config.databaseUrl, problems);
  config.isolation = isolationConfig(env, config.databaseUrl, problems);
  // Templates: the schema new sandboxes are built from.
  const templateSchema = str('SANDBOX_TEMPLATE_SCHEMA') ?? 'sandbox_template';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(templateSchema) || /^sandbox_[0-9a-f]{32}$/.test(templateSchema) || templateSchema === 'public' || templateSchema.startsWith('pg_')) {
    problems.push('SANDBOX_TEMPLATE_SCHEMA must be a schema name of a-z, 0-9 and _ (not public, pg_*, or a sandbox schema name)');
  }
  config.templateSchema = templateSchema;
  if (config.limits.defaultTtlHours > maxTtlHours) problems.push('SANDBOX_DEFAULT_TTL_HOURS must not exceed SANDBOX_MAX_TTL_HOURS');
  if (problems.length) {
    throw new SandboxError(ErrorCode.Config, `Invalid configuration: ${problems.join('; ')}`, { problems });
  }
  return config;
}

const ON = new Set(['on', 'true', '1', 'yes']);
const OFF = new Set(['off', 'false', '0', 'no']);

/** An on/off switch; anything else is a problem. */
function onOff(env: NodeJS.ProcessEnv, key: string, fallback: boolean, problems: string[]): boolean {
  const raw = env[key]?.trim().toLowerCase();
  if (!raw) return fallback;
  if (ON.has(raw)) return true;
  if (OFF.has(raw)) return false;
  problems.push(`${key} must be on or off`);
  return fallback;
}

/** SANDBOX_ISOLATION and SANDBOX_CREDENTIAL_SECRET. The secret's value never appears in a problem message. */
function isolationConfig(env: NodeJS.ProcessEnv, databaseUrl: string | undefined, problems: string[]): IsolationConfig {
  const enabled = onOff(env, 'SANDBOX_ISOLATION', databaseUrl !== undefined, problems);
  // Off by default without DATABASE_URL, so on here means SANDBOX_ISOLATION=on.
  if (enabled && databaseUrl === undefined) {
    problems.push('SANDBOX_ISOLATION=on needs DATABASE_URL: the embedded database has no login roles, so it cannot enforce isolation');
  }
  const secret = env.SANDBOX_CREDENTIAL_SECRET?.trim();
  if (enabled && !secret) {
    problems.push('SANDBOX_CREDENTIAL_SECRET is required when sandbox isolation is on (it is on with DATABASE_URL; set SANDBOX_ISOLATION=off to opt out): generate one with `openssl rand -hex 32`');
  } else if (secret && secret.length < 32) {
    problems.push('SANDBOX_CREDENTIAL_SECRET must be at least 32 characters');
  }
  return { enabled, credentialSecret: secret ? new Secret(secret) : undefined };
}

const SERVER_NAME_RE = /^[a-z0-9_-]{1,32}$/;

/**
 * SANDBOX_DATABASE_SERVERS: comma-separated `name=url`, split at the first `=` (a URL may hold more).
 * The control server is always `default` (its URL is DATABASE_URL): listing `default=` again is
 * allowed only with DATABASE_URL itself, and adds nothing. Not allowed on the embedded database.
 * Problems never quote a URL (it may hold a password).
 */
export function parseDatabaseServers(raw: string | undefined, databaseUrl: string | undefined, problems: string[]): DatabaseServerConfig[] {
  if (raw === undefined) return [];
  if (databaseUrl === undefined) {
    problems.push('SANDBOX_DATABASE_SERVERS needs DATABASE_URL: the embedded database cannot place sandboxes on other servers');
    return [];
  }
  const servers: DatabaseServerConfig[] = [];
  const seenUrls = new Map<string, string>([[databaseUrl, 'default']]);
  const seenNames = new Set<string>();
  for (const [i, entry] of raw.split(',').map((e) => e.trim()).entries()) {
    if (!entry) continue;
    const eq = entry.indexOf('=');
    const name = eq < 0 ? entry : entry.slice(0, eq).trim();
    const url = eq < 0 ? '' : entry.slice(eq + 1).trim();
    const where = `SANDBOX_DATABASE_SERVERS entry ${i + 1}`;
    if (!SERVER_NAME_RE.test(name)) {
      problems.push(`${where}: the name must be 1-32 characters of a-z, 0-9, _ and - (write name=postgres://…)`);
      continue;
    }
    if (seenNames.has(name)) {
      problems.push(`${where}: the name ${name} is listed twice`);
      continue;
    }
    seenNames.add(name);
    if (!url) {
      problems.push(`${where} (${name}): no URL after ${name}=`);
      continue;
    }
    try {
      const u = new URL(url);
      if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
        problems.push(`${where} (${name}): the URL must use postgres: or postgresql:`);
        continue;
      }
    } catch {
      problems.push(`${where} (${name}): not a valid URL`);
      continue;
    }
    if (name === 'default') {
      if (url !== databaseUrl) problems.push(`${where}: default is the control server (DATABASE_URL); list it with DATABASE_URL's exact value or not at all`);
      continue;
    }
    const other = seenUrls.get(url);
    if (other !== undefined) {
      problems.push(`${where} (${name}): the same URL as ${other}; each server is listed once`);
      continue;
    }
    seenUrls.set(url, name);
    servers.push({ name, url });
  }
  return servers;
}
