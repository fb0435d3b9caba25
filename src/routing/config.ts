import { envReaders } from '../env-readers.ts';
import { GatewayIntentBits } from 'discord-api-types/v10';
import { DEFAULT_EVENTS_PREFIX, DEFAULT_EVENTS_STREAM, SANDBOX_SUBJECT_ROOT, filtersOverlap, isValidFilter, isValidSubjectPrefix, productionFilter } from './subjects.ts';

export interface RoutingConfig {
  /** Undefined: routing is off. */
  natsUrl: string | undefined;
  subjectPrefix: string;
  eventsStream: string;
  sandboxStream: { maxAgeHours: number; maxBytes: number };
  buffer: { messages: number; bytes: number };
  /** GatewayIntentBits names, `Guilds` always included, and their bitfield. */
  intents: { names: string[]; bits: number };
  ingestSubject: string;
}

const DEFAULT_INTENTS = ['Guilds', 'GuildMessages', 'GuildMessageReactions'];
const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Parses the routing block of the environment. Problems are pushed onto `problems` (the caller reports them
 * all at once, as loadConfig does).
 */
export function parseRoutingConfig(env: NodeJS.ProcessEnv, problems: string[]): RoutingConfig {
  const { str, int } = envReaders(env, problems);

  let natsUrl = str('NATS_URL');
  if (natsUrl) {
    const urls = natsUrl.split(',').map((s) => s.trim());
    for (const u of urls) {
      try {
        const p = new URL(u.includes('://') ? u : `nats://${u}`).protocol;
        if (!['nats:', 'tls:', 'ws:', 'wss:'].includes(p)) problems.push('NATS_URL must use nats:// or tls://');
      } catch {
        problems.push('NATS_URL is not a valid URL');
        natsUrl = undefined;
      }
    }
  }

  const subjectPrefix = str('EVENTS_SUBJECT_PREFIX') ?? DEFAULT_EVENTS_PREFIX;
  if (!isValidSubjectPrefix(subjectPrefix)) {
    problems.push('EVENTS_SUBJECT_PREFIX must be dot-separated tokens of letters, digits, _ and - (no wildcards)');
  } else if (filtersOverlap(productionFilter(subjectPrefix), `${SANDBOX_SUBJECT_ROOT}.>`)) {
    problems.push(`EVENTS_SUBJECT_PREFIX must not start with "${SANDBOX_SUBJECT_ROOT}", which sandbox subjects use`);
  }
  const eventsStream = str('EVENTS_STREAM') ?? DEFAULT_EVENTS_STREAM;
  if (!STREAM_NAME.test(eventsStream)) problems.push('EVENTS_STREAM must be 1-64 letters, digits, _ or -');
  else if (/^SANDBOX_/.test(eventsStream)) problems.push('EVENTS_STREAM must not start with SANDBOX_, which names sandbox streams');

  const ingestSubject = str('ROUTER_INGEST_SUBJECT') ?? 'discord.ingest.>';
  if (!isValidFilter(ingestSubject)) {
    problems.push('ROUTER_INGEST_SUBJECT must be a subject filter (tokens, * and a final >)');
  } else {
    for (const out of [productionFilter(subjectPrefix), `${SANDBOX_SUBJECT_ROOT}.>`]) {
      if (isValidSubjectPrefix(subjectPrefix) && filtersOverlap(ingestSubject, out)) {
        problems.push(`ROUTER_INGEST_SUBJECT ${ingestSubject} overlaps the router's output ${out}: a router must never consume what it publishes`);
      }
    }
  }

  const names = (str('GATEWAY_INTENTS') ?? DEFAULT_INTENTS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  const known = GatewayIntentBits as unknown as Record<string, number | string>;
  const intentNames = ['Guilds'];
  let bits = GatewayIntentBits.Guilds as number;
  for (const name of names) {
    const bit = Object.hasOwn(known, name) ? known[name] : undefined;
    if (typeof bit !== 'number') {
      problems.push(`GATEWAY_INTENTS contains ${JSON.stringify(name.slice(0, 40))}, which is not a GatewayIntentBits name (e.g. Guilds, GuildMessages, GuildMembers)`);
      continue;
    }
    if (!intentNames.includes(name)) intentNames.push(name);
    bits |= bit;
  }

  return {
    natsUrl,
    subjectPrefix,
    eventsStream,
    sandboxStream: {
      maxAgeHours: int('SANDBOX_EVENTS_MAX_AGE_HOURS', 24, 1, 8760),
      maxBytes: int('SANDBOX_EVENTS_MAX_BYTES', 16 * 1024 * 1024, 64 * 1024, 1024 ** 4),
    },
    buffer: {
      messages: int('EVENTS_BUFFER', 10_000, 1, 10_000_000),
      bytes: int('EVENTS_BUFFER_BYTES', 64 * 1024 * 1024, 1024 * 1024, 16 * 1024 ** 3),
    },
    intents: { names: intentNames, bits },
    ingestSubject,
  };
}

/**
 * NATS_URL as a worker may be shown it (SANDBOX_NATS_URL in `sandbox env` and `/sandbox connect`):
 * every server of the list without its `user:password@` or `token@` part, otherwise as written.
 * Everything up to the last `@` after the scheme goes, so a password holding `@` or `/` does not
 * leak either (NATS server URLs have no path).
 */
export function publicNatsUrl(natsUrl: string): string {
  return natsUrl
    .split(',')
    .map((raw) => {
      const u = raw.trim();
      const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(u)?.[0] ?? '';
      const at = u.lastIndexOf('@');
      return at < scheme.length ? u : scheme + u.slice(at + 1);
    })
    .join(',');
}
