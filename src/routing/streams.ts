import { nanos } from '@nats-io/transport-node';
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import type { Logger } from '../logger.ts';
import { productionFilter, sandboxIdOfStream, sandboxStreamName, sandboxStreamSubjects } from './subjects.ts';
import type { ExternalResource } from './types.ts';

/** Tag in every stream we make (nats-server 2.9 has no stream metadata). */
export const STREAM_TAG = 'discord-server-sandboxes';
const MIN_DUPLICATE_WINDOW_MS = 2 * 60_000;

export function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

export interface StreamStats {
  messages: number;
  bytes: number;
}

export interface SandboxStreamOptions {
  jsm: JetStreamManager;
  logger: Logger;
  maxAgeHours: number;
  maxBytes: number;
  /** At least 2 minutes (default 2 minutes). */
  duplicateWindowMs?: number;
}

/**
 * The per-sandbox stream `SANDBOX_<hex>` with subjects `sandbox.<id>.>`: file storage, limits retention, discard old.
 * Best effort: a stream that cannot be made never fails a create; the guild's events are dropped (`no_stream`), never
 * sent to production, and the sweeper retries.
 */
export class SandboxStreams implements ExternalResource {
  readonly kind = 'stream';
  readonly bestEffort = true;
  private readonly log: Logger;

  constructor(private readonly opts: SandboxStreamOptions) {
    this.log = opts.logger.child({ component: 'sandbox-streams' });
  }

  configFor(sandboxId: string): StreamConfig {
    return {
      name: sandboxStreamName(sandboxId),
      subjects: [sandboxStreamSubjects(sandboxId)],
      description: `${STREAM_TAG} sandbox ${sandboxId}`,
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: nanos(this.opts.maxAgeHours * 3_600_000),
      max_bytes: this.opts.maxBytes,
      duplicate_window: nanos(Math.max(MIN_DUPLICATE_WINDOW_MS, this.opts.duplicateWindowMs ?? MIN_DUPLICATE_WINDOW_MS)),
      num_replicas: 1,
    } as StreamConfig;
  }

  async ensure(sandboxId: string): Promise<void> {
    const want = this.configFor(sandboxId);
    const { jsm } = this.opts;
    try {
      const info = await jsm.streams.info(want.name);
      const c = info.config;
      if (
        c.max_age !== want.max_age ||
        c.max_bytes !== want.max_bytes ||
        c.duplicate_window !== want.duplicate_window ||
        c.discard !== want.discard ||
        c.description !== want.description ||
        c.subjects?.join(',') !== want.subjects.join(',')
      ) {
        const { name: _n, storage: _s, retention: _r, ...update } = want;
        await jsm.streams.update(want.name, update);
        this.log.info({ sandboxId, stream: want.name }, 'sandbox stream reconfigured');
      }
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
      await jsm.streams.add(want);
      this.log.debug({ sandboxId, stream: want.name }, 'sandbox stream created');
    }
  }

  async remove(sandboxId: string): Promise<void> {
    try {
      await this.opts.jsm.streams.delete(sandboxStreamName(sandboxId));
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
    }
  }

  /** Reset: drops every message of the sandbox's stream, keeping the stream and its config. Absent is success. */
  async purge(sandboxId: string): Promise<void> {
    try {
      await this.opts.jsm.streams.purge(sandboxStreamName(sandboxId));
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
    }
  }

  async exists(sandboxId: string): Promise<boolean> {
    return (await this.stats(sandboxId)) !== undefined;
  }

  /** Messages and bytes in the sandbox's stream, or undefined when it has none (for health and `status`). */
  async stats(sandboxId: string): Promise<StreamStats | undefined> {
    try {
      const info = await this.opts.jsm.streams.info(sandboxStreamName(sandboxId));
      return { messages: info.state.messages, bytes: info.state.bytes };
    } catch (err) {
      if (isStreamNotFound(err)) return undefined;
      throw err;
    }
  }

  async list(): Promise<string[]> {
    const ids: string[] = [];
    for await (const name of this.opts.jsm.streams.names()) {
      const id = sandboxIdOfStream(name);
      if (id) ids.push(id);
    }
    return ids;
  }
}

/** Creates the production stream (`<prefix>.>`) when missing; an existing one is kept as the operator configured it. */
export async function ensureProductionStream(jsm: JetStreamManager, name: string, prefix: string, logger: Logger): Promise<void> {
  try {
    const info = await jsm.streams.info(name);
    const subjects = info.config.subjects ?? [];
    if (!subjects.includes(productionFilter(prefix))) {
      logger.warn({ stream: name, subjects, expected: productionFilter(prefix) }, 'production stream does not list the events subject');
    }
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
    await jsm.streams.add({
      name,
      subjects: [productionFilter(prefix)],
      description: `${STREAM_TAG} production events`,
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(MIN_DUPLICATE_WINDOW_MS),
    });
    logger.info({ stream: name, subjects: [productionFilter(prefix)] }, 'production stream created');
  }
}

/**
 * The stream driver as an ExternalResource whose NATS connection is made on first use (the bot and
 * the CLI connect lazily). Best effort: a create while NATS is away does not fail; health shows the
 * stream missing and the sweeper makes it later. Every driver operation is forwarded, purge included
 * (a reset empties the sandbox's stream).
 */
export function lazyStreamResource(streams: () => Promise<SandboxStreams>): ExternalResource {
  return {
    kind: 'stream',
    bestEffort: true,
    ensure: async (id) => (await streams()).ensure(id),
    remove: async (id) => (await streams()).remove(id),
    exists: async (id) => (await streams()).exists(id),
    list: async () => (await streams()).list(),
    purge: async (id) => (await streams()).purge(id),
  };
}
