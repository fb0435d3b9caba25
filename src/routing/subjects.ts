import type { GatewayDispatch } from './types.ts';

/** The routing rule and every name the data plane uses, in one place. */

export const HEADER_MSG_ID = 'Nats-Msg-Id';
export const HEADER_GUILD_ID = 'Discord-Guild-Id';
export const HEADER_EVENT = 'Discord-Event';
export const HEADER_ROUTE_VERSION = 'Sandbox-Route-Version';
export const HEADER_SANDBOX_ID = 'Sandbox-Id';

export const DEFAULT_EVENTS_PREFIX = 'events';
export const DEFAULT_EVENTS_STREAM = 'DISCORD_EVENTS';
/** Every sandbox subject lives under this root; routers never consume it. */
export const SANDBOX_SUBJECT_ROOT = 'sandbox';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const STREAM_NAME = /^SANDBOX_([0-9a-f]{32})$/;
/** A dispatch type as Discord names them; anything else would not be one subject token. */
const EVENT_TYPE = /^[A-Z0-9_]{1,64}$/;
const GUILD_ID = /^[0-9]{17,20}$/;
/** Dispatches whose guild is `d.id` rather than `d.guild_id`. */
const GUILD_EVENTS = new Set(['GUILD_CREATE', 'GUILD_UPDATE', 'GUILD_DELETE']);

/** The guild a dispatch belongs to: `d.guild_id`, or `d.id` for GUILD_CREATE/UPDATE/DELETE; undefined for none. */
export function guildOf(packet: Pick<GatewayDispatch, 't' | 'd'>): string | undefined {
  const d = packet.d;
  if (d === null || typeof d !== 'object') return undefined;
  const raw = GUILD_EVENTS.has(packet.t ?? '') ? (d as { id?: unknown }).id : (d as { guild_id?: unknown }).guild_id;
  return typeof raw === 'string' && GUILD_ID.test(raw) ? raw : undefined;
}

export function isEventType(t: unknown): t is string {
  return typeof t === 'string' && EVENT_TYPE.test(t);
}

function assertUuid(sandboxId: string): void {
  if (!UUID.test(sandboxId)) throw new Error(`not a sandbox id: ${JSON.stringify(sandboxId)}`);
}

/** `sandbox.<uuid>.events.<T>` */
export function sandboxSubject(sandboxId: string, type: string): string {
  return `${SANDBOX_SUBJECT_ROOT}.${sandboxId}.events.${type}`;
}

/** What a worker subscribes to: `sandbox.<uuid>.events.>` */
export function sandboxEventsFilter(sandboxId: string): string {
  assertUuid(sandboxId);
  return `${SANDBOX_SUBJECT_ROOT}.${sandboxId}.events.>`;
}

/** The per-sandbox stream's subjects: `sandbox.<uuid>.>` */
export function sandboxStreamSubjects(sandboxId: string): string {
  assertUuid(sandboxId);
  return `${SANDBOX_SUBJECT_ROOT}.${sandboxId}.>`;
}

/** `<prefix>.<T>` */
export function productionSubject(prefix: string, type: string): string {
  return `${prefix}.${type}`;
}

/** The production stream's subjects: `<prefix>.>` */
export function productionFilter(prefix: string): string {
  return `${prefix}.>`;
}

/** `SANDBOX_<32 hex>` */
export function sandboxStreamName(sandboxId: string): string {
  assertUuid(sandboxId);
  return `SANDBOX_${sandboxId.replaceAll('-', '')}`;
}

/** The hyphenated sandbox id of an exact `SANDBOX_<32 lowercase hex>` stream name, else undefined. */
export function sandboxIdOfStream(name: string): string | undefined {
  const m = STREAM_NAME.exec(name);
  if (!m) return undefined;
  const h = m[1]!;
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The sandbox id of a sandbox subject (`sandbox.<uuid>.…`), else undefined. */
export function sandboxIdOfSubject(subject: string): string | undefined {
  const parts = subject.split('.');
  return parts[0] === SANDBOX_SUBJECT_ROOT && parts[1] && UUID.test(parts[1]) ? parts[1] : undefined;
}

/** `<shard>:<session_id>:<s>`: the same when a RESUME replays the dispatch. */
export function gatewayMsgId(shard: number, sessionId: string, seq: number): string {
  return `${shard}:${sessionId}:${seq}`;
}

/** A subject prefix of dot-separated tokens ([A-Za-z0-9_-]), no wildcards. */
export function isValidSubjectPrefix(prefix: string): boolean {
  return /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix);
}

/** A subject filter (tokens, `*` for one token, a final `>` for one or more). */
export function isValidFilter(filter: string): boolean {
  const tokens = filter.split('.');
  return tokens.every((tok, i) => tok === '*' || (tok === '>' && i === tokens.length - 1) || /^[A-Za-z0-9_-]+$/.test(tok));
}

/** True when some subject matches both filters (NATS wildcard semantics). */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === undefined || q === undefined) return p === undefined && q === undefined;
    if (p === '>') return q !== undefined;
    if (q === '>') return true;
    if (p !== '*' && q !== '*' && p !== q) return false;
  }
}
