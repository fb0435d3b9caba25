import { canonicalSandboxId, sandboxEventsSubject, sandboxIdentityName, sandboxRedisPrefix, sandboxStreamName } from '../sandbox/naming.ts';
import { SandboxConnectError } from './errors.ts';

export type DeliverFrom = 'new' | 'all' | 'last';

export interface ConnectSandboxOptions {
  /** Where SANDBOX_* / production variables are read from (default process.env). Explicit options win. */
  env?: Record<string, string | undefined>;
  /** The sandbox's id. Without one (here or SANDBOX_ID), the worker runs against production. */
  sandboxId?: string;
  /** Its name, for error messages (SANDBOX_NAME). */
  sandboxName?: string;
  /** The PostgreSQL schema (SANDBOX_SCHEMA / PRODUCTION_SCHEMA). A sandbox's must be `sandbox_<32 hex>` of its id. */
  schema?: string;
  /** SANDBOX_DATABASE_URL / PRODUCTION_DATABASE_URL; `false` skips the database. */
  databaseUrl?: string | false;
  /** SANDBOX_REDIS_URL / REDIS_URL; `false` skips Redis. */
  redisUrl?: string | false;
  /** SANDBOX_NATS_URL / NATS_URL; `false` skips events. */
  natsUrl?: string | false;
  /** SANDBOX_NATS_STREAM (default `SANDBOX_<32 hex>`) / EVENTS_STREAM (default `DISCORD_EVENTS`). */
  stream?: string;
  /** SANDBOX_NATS_SUBJECT (default `sandbox.<uuid>.events.>`) / `<EVENTS_SUBJECT_PREFIX>.>` (default `events.>`). */
  subject?: string;
  /** Durable consumer: SANDBOX_NATS_CONSUMER / EVENTS_CONSUMER (default `worker`). */
  consumer?: string;
  /** Where a NEW durable consumer starts: SANDBOX_NATS_DELIVER / EVENTS_DELIVER (default `new`). An existing one resumes. */
  deliver?: DeliverFrom;
  /** Seconds before an unacked event is redelivered (default 30). */
  ackWaitSeconds?: number;
  /** Unacked events in flight at once (default 1000). */
  maxAckPending?: number;
  /** The control tables' schema, where sandbox_self_status() lives: SANDBOX_CONTROL_SCHEMA (default public). */
  controlSchema?: string;
  /** Pool size of `db` (default 10). */
  poolSize?: number;
}

export interface ResolvedSettings {
  mode: 'sandbox' | 'production';
  sandboxId: string | undefined;
  /** "sandbox <name> (<id>)" or "production": used in every error message. */
  label: string;
  schema: string;
  controlSchema: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  /** Prefix of every key and channel (`sandbox:<uuid>:`; production: PRODUCTION_REDIS_PREFIX, default none). */
  redisPrefix: string;
  natsUrl: string | undefined;
  stream: string;
  subject: string;
  consumer: string;
  deliver: DeliverFrom;
  ackWaitSeconds: number;
  maxAckPending: number;
  poolSize: number;
}

/** A schema this SDK will put in search_path: a plain lowercase identifier, so `-c search_path=` needs no quoting. */
const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;
const CONSUMER_RE = /^[A-Za-z0-9_-]{1,64}$/;
const STREAM_RE = /^[A-Za-z0-9_-]{1,64}$/;
const DELIVER = new Set<DeliverFrom>(['new', 'all', 'last']);

const fail = (message: string): never => {
  throw new SandboxConnectError('SDK_CONFIG', message);
};

function pick<T>(explicit: T | undefined, envValue: string | undefined): T | string | undefined {
  if (explicit !== undefined) return explicit;
  const v = envValue?.trim();
  return v ? v : undefined;
}

function positiveInt(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(`${name} must be a positive whole number`);
  return n;
}

/** Reads options and the environment (as `sandbox env` prints it) into one validated shape. */
export function resolveSettings(opts: ConnectSandboxOptions = {}): ResolvedSettings {
  const env = opts.env ?? process.env;
  const rawId = pick(opts.sandboxId, env.SANDBOX_ID) as string | undefined;
  const url = (v: string | false | undefined, key: string): string | undefined => (v === false ? undefined : (pick(v, env[key]) as string | undefined));
  const common = {
    ackWaitSeconds: positiveInt(opts.ackWaitSeconds, 'ackWaitSeconds', 30),
    maxAckPending: positiveInt(opts.maxAckPending, 'maxAckPending', 1000),
    poolSize: positiveInt(opts.poolSize, 'poolSize', 10),
    controlSchema: (pick(opts.controlSchema, env.SANDBOX_CONTROL_SCHEMA) as string | undefined) ?? 'public',
  };

  let s: ResolvedSettings;
  if (rawId !== undefined) {
    let id: string;
    try {
      id = canonicalSandboxId(rawId);
    } catch {
      return fail(`SANDBOX_ID ${JSON.stringify(rawId.slice(0, 40))} is not a sandbox id (a UUID, as \`sandbox env\` prints it)`);
    }
    const name = pick(opts.sandboxName, env.SANDBOX_NAME) as string | undefined;
    const label = name ? `sandbox ${JSON.stringify(name)} (${id})` : `sandbox ${id}`;
    const expectedSchema = sandboxIdentityName(id);
    const schema = (pick(opts.schema, env.SANDBOX_SCHEMA) as string | undefined) ?? expectedSchema;
    // Lesson 1: a schema name that differs from the one the id derives is never used.
    if (schema !== expectedSchema) fail(`${label}: SANDBOX_SCHEMA is ${JSON.stringify(schema)}, but this sandbox's schema is ${expectedSchema}`);
    s = {
      mode: 'sandbox',
      sandboxId: id,
      label,
      schema,
      databaseUrl: url(opts.databaseUrl, 'SANDBOX_DATABASE_URL'),
      redisUrl: url(opts.redisUrl, 'SANDBOX_REDIS_URL'),
      redisPrefix: sandboxRedisPrefix(id),
      natsUrl: url(opts.natsUrl, 'SANDBOX_NATS_URL'),
      stream: (pick(opts.stream, env.SANDBOX_NATS_STREAM) as string | undefined) ?? sandboxStreamName(id),
      subject: (pick(opts.subject, env.SANDBOX_NATS_SUBJECT) as string | undefined) ?? sandboxEventsSubject(id),
      consumer: (pick(opts.consumer, env.SANDBOX_NATS_CONSUMER) as string | undefined) ?? 'worker',
      deliver: ((pick(opts.deliver, env.SANDBOX_NATS_DELIVER) as string | undefined) ?? 'new') as DeliverFrom,
      ...common,
    };
    if (!s.subject.startsWith(`sandbox.${id}.`)) fail(`${label}: SANDBOX_NATS_SUBJECT must be under sandbox.${id}.`);
  } else {
    const prefix = (env.EVENTS_SUBJECT_PREFIX?.trim() || 'events');
    s = {
      mode: 'production',
      sandboxId: undefined,
      label: 'production',
      schema: (pick(opts.schema, env.PRODUCTION_SCHEMA) as string | undefined) ?? 'public',
      databaseUrl: url(opts.databaseUrl, 'PRODUCTION_DATABASE_URL'),
      redisUrl: url(opts.redisUrl, 'REDIS_URL'),
      redisPrefix: env.PRODUCTION_REDIS_PREFIX?.trim() ?? '',
      natsUrl: url(opts.natsUrl, 'NATS_URL'),
      stream: (pick(opts.stream, env.EVENTS_STREAM) as string | undefined) ?? 'DISCORD_EVENTS',
      subject: (pick(opts.subject, undefined) as string | undefined) ?? `${prefix}.>`,
      consumer: (pick(opts.consumer, env.EVENTS_CONSUMER) as string | undefined) ?? 'worker',
      deliver: ((pick(opts.deliver, env.EVENTS_DELIVER) as string | undefined) ?? 'new') as DeliverFrom,
      ...common,
    };
    if (s.subject.startsWith('sandbox.')) fail('production: the events subject may not be a sandbox subject');
  }
  if (!SCHEMA_RE.test(s.schema)) fail(`${s.label}: schema ${JSON.stringify(s.schema.slice(0, 70))} must be a lowercase identifier`);
  if (!SCHEMA_RE.test(s.controlSchema)) fail(`${s.label}: control schema must be a lowercase identifier`);
  if (!STREAM_RE.test(s.stream)) fail(`${s.label}: stream name ${JSON.stringify(s.stream.slice(0, 70))} is not valid`);
  if (!CONSUMER_RE.test(s.consumer)) fail(`${s.label}: consumer name must be 1-64 of [A-Za-z0-9_-]`);
  if (!DELIVER.has(s.deliver)) fail(`${s.label}: deliver must be new, all or last`);
  for (const [key, value, protocols] of [
    ['database URL', s.databaseUrl, ['postgres:', 'postgresql:']],
    ['Redis URL', s.redisUrl, ['redis:', 'rediss:']],
  ] as const) {
    if (value === undefined) continue;
    let u: URL | undefined;
    try {
      u = new URL(value);
    } catch {
      // The URL may hold a password: never echo it.
    }
    if (!u || !(protocols as readonly string[]).includes(u.protocol)) fail(`${s.label}: the ${key} is not a valid ${protocols.join('/')} URL`);
  }
  return s;
}
