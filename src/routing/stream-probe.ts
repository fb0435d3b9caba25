import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { Logger } from '../logger.ts';
import type { EventsProbe } from '../sandbox/manager.ts';
import { publicNatsUrl, type RoutingConfig } from './config.ts';
import { SandboxStreams, lazyStreamResource } from './streams.ts';
import type { ExternalResource } from './types.ts';

/**
 * The sandbox streams for a short-lived process (the CLI): NATS is connected on first use only, failing fast (no
 * command that does not touch a stream waits for NATS), and closed with the process. Gives the manager its stream
 * resource (create/destroy/sweep) and its health probe (`status`).
 */
export class StreamAccess implements EventsProbe {
  /** Without credentials: it is printed for workers. */
  readonly natsUrl: string;
  private readonly url: string;
  private driver: Promise<{ nc: NatsConnection; streams: SandboxStreams }> | undefined;

  constructor(
    private readonly config: RoutingConfig,
    private readonly logger: Logger,
    private readonly timeoutMs = 3000,
  ) {
    if (!config.natsUrl) throw new Error('StreamAccess needs NATS_URL');
    this.url = config.natsUrl;
    this.natsUrl = publicNatsUrl(config.natsUrl);
  }

  private streams(): Promise<SandboxStreams> {
    this.driver ??= (async () => {
      const nc = await connect({ servers: this.url.split(',').map((s) => s.trim()), name: 'sandbox-cli', timeout: this.timeoutMs });
      const streams = new SandboxStreams({
        jsm: await jetstreamManager(nc, { timeout: this.timeoutMs }),
        logger: this.logger,
        maxAgeHours: this.config.sandboxStream.maxAgeHours,
        maxBytes: this.config.sandboxStream.maxBytes,
      });
      return { nc, streams };
    })();
    // A failed connection is retried by the next use.
    this.driver.catch(() => (this.driver = undefined));
    return this.driver.then((d) => d.streams);
  }

  stats(sandboxId: string): Promise<{ messages: number; bytes: number } | undefined> {
    return this.streams().then((s) => s.stats(sandboxId));
  }

  resource(): ExternalResource {
    return lazyStreamResource(() => this.streams());
  }

  async close(): Promise<void> {
    const d = await this.driver?.catch(() => undefined);
    this.driver = undefined;
    await d?.nc.close().catch(() => undefined);
  }
}
