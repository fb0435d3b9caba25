import { customAlphabet } from 'nanoid';
import { invalidInput } from './errors.ts';
import { SANDBOX_STATUSES, type Actor, type SandboxStatus } from './types.ts';

const NAME_RE = /^[a-z0-9][a-z0-9-]{2,63}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SNOWFLAKE_RE = /^[0-9]{17,20}$/;
const OPERATOR_NAME = '[a-z0-9][a-z0-9._-]{0,31}';
const SYSTEM_JOB = '[a-z0-9-]{1,32}';
const OPERATOR_NAME_RE = new RegExp(`^${OPERATOR_NAME}$`);
const SYSTEM_JOB_RE = new RegExp(`^${SYSTEM_JOB}$`);
const CLI_OWNER_RE = new RegExp(`^cli:${OPERATOR_NAME}$`);
const SYSTEM_OWNER_RE = new RegExp(`^system:${SYSTEM_JOB}$`);
export const SCHEMA_NAME_RE = /^sandbox_[0-9a-f]{32}$/;

const suffix = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 6);

/** Quotes a value for error messages without echoing kilobytes of hostile input. */
export const preview = (value: unknown): string => {
  const s = typeof value === 'string' ? value : String(value);
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
};

export const isUuid = (value: string): boolean => UUID_RE.test(value);
export const isSnowflake = (value: string): boolean => SNOWFLAKE_RE.test(value) && BigInt(value) > 0n;
/** An operator's name as operatorName() makes it: the `<name>` of `cli:<name>`. */
export const isOperatorName = (value: string): boolean => OPERATOR_NAME_RE.test(value);
/** A system job's name: the `<job>` of `system:<job>`. */
export const isSystemJob = (value: string): boolean => SYSTEM_JOB_RE.test(value);

/**
 * The inverse of actorLabel (types.ts), strict: `discord:<snowflake>`, `cli:<operator name>` or
 * `system:<job>`. Anything else (an unknown prefix, `discord:` without a snowflake, an empty or
 * malformed name) is null, never a guess: admin rights are not decided from a string's shape.
 */
export function parseActorLabel(label: string): Actor | null {
  if (typeof label !== 'string') return null;
  const colon = label.indexOf(':');
  if (colon < 0) return null;
  const prefix = label.slice(0, colon);
  const rest = label.slice(colon + 1);
  switch (prefix) {
    case 'discord':
      return isSnowflake(rest) ? { kind: 'discord', id: rest } : null;
    case 'cli':
      return isOperatorName(rest) ? { kind: 'operator', name: rest } : null;
    case 'system':
      return isSystemJob(rest) ? { kind: 'system', job: rest } : null;
    default:
      return null;
  }
}

export function validateName(name: string): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw invalidInput(
      `Invalid sandbox name ${preview(name)}: use 3-64 characters of a-z, 0-9 and '-', starting with a letter or digit.`,
      { field: 'name' },
    );
  }
  if (isUuid(name)) throw invalidInput('A sandbox name may not look like a UUID.', { field: 'name' });
  return name;
}

export function validateSnowflake(value: string, field = 'guild id'): string {
  if (typeof value !== 'string' || !isSnowflake(value)) {
    throw invalidInput(`Invalid ${field} ${preview(value)}: expected a Discord snowflake (17-20 digits).`, { field });
  }
  return value;
}

export function validateGuildIds(ids: readonly string[] | undefined): string[] {
  const out = [...new Set((ids ?? []).map((id) => validateSnowflake(id)))];
  if (out.length > 25) throw invalidInput('At most 25 guilds can be registered at once.', { field: 'guildIds' });
  return out;
}

export function validateOwner(owner: string): string {
  if (typeof owner === 'string' && (isSnowflake(owner) || CLI_OWNER_RE.test(owner) || SYSTEM_OWNER_RE.test(owner))) return owner;
  throw invalidInput(
    `Invalid owner ${preview(owner)}: expected a Discord user id (17-20 digits) or cli:<name> (lowercase, up to 32 characters).`,
    { field: 'owner' },
  );
}

/** Operator names come from the OS user; normalise them into the cli:<name> form. */
export function operatorName(raw: string): string {
  const cleaned = raw.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 32);
  return cleaned || 'operator';
}

/** Whole hours, at least 1. Values above max are capped, and the caller is told. */
export function validateTtlHours(hours: unknown, maxTtlHours: number): { hours: number; capped: boolean } {
  if (typeof hours !== 'number' || !Number.isInteger(hours)) {
    throw invalidInput(`TTL must be a whole number of hours, got ${preview(hours)}.`, { field: 'ttlHours' });
  }
  if (hours < 1) throw invalidInput(`TTL must be at least 1 hour, got ${hours}.`, { field: 'ttlHours' });
  return hours > maxTtlHours ? { hours: maxTtlHours, capped: true } : { hours, capped: false };
}

/** Extend hours: an integer from 1 to max (not capped: a typo should not silently extend by a week). */
export function validateExtendHours(hours: unknown, maxTtlHours: number): number {
  if (typeof hours !== 'number' || !Number.isInteger(hours) || hours < 1 || hours > maxTtlHours) {
    throw invalidInput(`Hours must be a whole number from 1 to ${maxTtlHours}, got ${preview(hours)}.`, { field: 'hours' });
  }
  return hours;
}

export function validateStatus(status: string): SandboxStatus {
  if ((SANDBOX_STATUSES as readonly string[]).includes(status)) return status as SandboxStatus;
  throw invalidInput(`Unknown status ${preview(status)}: expected one of ${SANDBOX_STATUSES.join(', ')}.`, { field: 'status' });
}

export function validateMetadata(metadata: unknown): Record<string, unknown> {
  if (metadata === undefined) return {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw invalidInput('Metadata must be a JSON object.', { field: 'metadata' });
  }
  if (JSON.stringify(metadata).length > 16_384) throw invalidInput('Metadata is larger than 16 kB.', { field: 'metadata' });
  return metadata as Record<string, unknown>;
}

/** A sandbox reference is a UUID or a name; anything else is rejected before it reaches SQL. */
export function validateRef(ref: string): { kind: 'id' | 'name'; value: string } {
  if (typeof ref === 'string' && isUuid(ref)) return { kind: 'id', value: ref.toLowerCase() };
  return { kind: 'name', value: validateName(ref) };
}

/** `sandbox-<owner slug>-<6 chars>`, truncated to fit 64 characters. */
export function defaultName(owner: string): string {
  const slug = owner.toLowerCase().replace(/^cli:/, '').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'owner';
  const tail = `-${suffix()}`;
  const head = `sandbox-${slug}`.slice(0, 64 - tail.length).replace(/-+$/, '');
  return `${head}${tail}`;
}
