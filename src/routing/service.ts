import type pg from 'pg';
import type { Client } from 'discord.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.ts';
import { publicNatsUrl, type RoutingConfig } from './config.ts';
import { AckedSequences } from './acked-sequences.ts';
import { attachIngest, type IngestOptions } from './ingest.ts';
import { RoutingMetrics } from './metrics.ts';
import { connectNats } from './nats.ts';
import { EventPublisher } from './publisher.ts';
import { RouteTable } from './route-table.ts';
import { EventRouter } from './router.ts';
import { SandboxStreams, ensureProductionStream, lazyStreamResource } from './streams.ts';
import type { ExternalResource } from './types.ts';
import type { EventsProbe } from '../sandbox/manager.ts';

export type EventsHealth = 'ok' | 'degraded' | 'disabled';

export interface RoutingServiceOptions {
  config: RoutingConfig;
  pool: pg.Pool;
  databaseUrl: string;
  /** The embedded database: poll the route version every second (NOTIFY never reaches another connection). */
  embedded: boolean;
  logger: Logger;
  /** Registers the routing metrics on it when given. */
  registry?: Registry;
}

/**
 * The data plane of one bot process, for app.ts: the route table (loaded and listening once `start` resolves: call it
 * before `client.login`), the NATS connection (made in the background, retried forever; events buffer meanwhile), the
 * publisher, the router and the stream driver for the manager's `resources`.
 */
export class RoutingService {
  readonly routes: RouteTable;
  readonly publisher: EventPublisher;
  readonly router: EventRouter;
  readonly metrics: RoutingMetrics | undefined;
  /** Per shard, the last gateway sequence whose dispatches are all published (what a RESUME may start after). */
  readonly acks = new AckedSequences();
  private readonly natsReady: Promise<NatsConnection>;
  private nc: NatsConnection | undefined;
  private streamsDriver: SandboxStreams | undefined;
  private detach: (() => void) | undefined;
  private readonly log: Logger;

  constructor(private readonly opts: RoutingServiceOptions) {
    const url = opts.config.natsUrl;
    if (!url) throw new Error('RoutingService needs NATS_URL');
    this.log = opts.logger.child({ component: 'routing' });
    this.metrics = opts.registry ? new RoutingMetrics(opts.registry) : undefined;
    this.routes = new RouteTable({
      pool: opts.pool,
      connectionString: opts.databaseUrl,
      logger: opts.logger,
      poll: opts.embedded,
      observer: this.metrics?.routeTableObserver(),
    });
    this.natsReady = connectNats(url, 'discord-server-sandboxes', opts.logger).then(async (nc) => {
      this.nc = nc;
      await this.ensureProduction(nc).catch((err: unknown) => this.log.warn({ err: { message: (err as Error).message } }, 'could not ensure the production stream'));
      return nc;
    });
    this.natsReady.catch(() => undefined);
    const { config } = opts;
    this.publisher = new EventPublisher({
      nc: this.natsReady,
      logger: opts.logger,
      bufferMessages: config.buffer.messages,
      bufferBytes: config.buffer.bytes,
      observer: this.metrics?.publisherObserver(),
      onProductionStreamMissing: () => void (this.nc ? this.ensureProduction(this.nc).catch(() => undefined) : undefined),
    });
    this.router = new EventRouter({ routes: this.routes, publisher: this.publisher, prefix: config.subjectPrefix });
  }

  /** Loads the route table and starts its change feed. Does not wait for NATS. */
  async start(): Promise<void> {
    await this.routes.start();
  }

  /** Routes every dispatch the client receives (except our own interactions). */
  attach(client: Client, ingest: Omit<IngestOptions, 'acks'> = {}): void {
    this.detach?.();
    this.detach = attachIngest(client, this.router, this.opts.logger, { ...ingest, acks: this.acks });
  }

  /** The manager's observer hook: a process applies its own committed mapping change at once. */
  routesChanged(): Promise<void> {
    return this.routes.catchUp();
  }

  /** For /readyz: `degraded` while NATS is away (events buffer), never a failure. */
  health(): EventsHealth {
    return this.publisher.degraded ? 'degraded' : 'ok';
  }

  /** The per-sandbox stream driver (an ExternalResource), once NATS is connected. */
  async streams(waitMs = 5000): Promise<SandboxStreams> {
    if (!this.streamsDriver) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`NATS is not connected (waited ${waitMs} ms)`)), waitMs);
      });
      const nc = await Promise.race([this.natsReady, late]).finally(() => clearTimeout(timer));
      this.streamsDriver = new SandboxStreams({
        jsm: await jetstreamManager(nc),
        logger: this.opts.logger,
        maxAgeHours: this.opts.config.sandboxStream.maxAgeHours,
        maxBytes: this.opts.config.sandboxStream.maxBytes,
      });
    }
    return this.streamsDriver;
  }

  /**
   * An ExternalResource for ManagerDeps.resources; each call waits at most 5 s for the first NATS connection. Best
   * effort, so a create while NATS is away does not fail (health shows the stream missing; the sweeper retries).
   */
  streamResource(): ExternalResource {
    return lazyStreamResource(() => this.streams());
  }

  /** The manager's events probe (health, `status`, SANDBOX_NATS_URL); waits at most 2 s for NATS. */
  eventsProbe(): EventsProbe {
    return {
      natsUrl: publicNatsUrl(this.opts.config.natsUrl!),
      stats: async (id) => (await this.streams(2000)).stats(id),
    };
  }

  async close(): Promise<void> {
    this.detach?.();
    await this.publisher.close();
    await this.routes.stop();
    await this.nc?.drain().catch(() => undefined);
  }

  private async ensureProduction(nc: NatsConnection): Promise<void> {
    await ensureProductionStream(await jetstreamManager(nc), this.opts.config.eventsStream, this.opts.config.subjectPrefix, this.opts.logger);
  }
}
