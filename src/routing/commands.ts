import { jetstreamManager } from '@nats-io/jetstream';
import type { CliContext } from '../cli/context.ts';
import { ErrorCode, SandboxError } from '../sandbox/errors.ts';
import { ExternalRouter, assertNoLoop } from './external-router.ts';
import { connectNats } from './nats.ts';
import { EventPublisher } from './publisher.ts';
import { RouteTable } from './route-table.ts';
import { EventRouter } from './router.ts';
import { ensureProductionStream } from './streams.ts';
import { sandboxStreamName } from './subjects.ts';
import { tailStream } from './tail.ts';

function natsUrlOf(ctx: CliContext): string {
  const url = ctx.config.routing.natsUrl;
  if (!url) throw new SandboxError(ErrorCode.Config, 'NATS_URL is not set: event routing needs a NATS server with JetStream (e.g. NATS_URL=nats://127.0.0.1:4222).');
  return url;
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

/** `sandbox route`: the external router, until SIGINT/SIGTERM. */
export async function runRouteCommand(ctx: CliContext, out: (line: string) => void, stopped: Promise<void> = untilSignal()): Promise<void> {
  const r = ctx.config.routing;
  assertNoLoop([r.ingestSubject], r.subjectPrefix);
  const nc = await connectNats(natsUrlOf(ctx), 'sandbox-route', ctx.logger);
  const routes = new RouteTable({ pool: ctx.db.pool, connectionString: ctx.db.url, logger: ctx.logger, poll: ctx.db.embedded });
  try {
    const jsm = await jetstreamManager(nc);
    await ensureProductionStream(jsm, r.eventsStream, r.subjectPrefix, ctx.logger);
    await routes.start();
    const publisher = new EventPublisher({
      nc,
      logger: ctx.logger,
      bufferMessages: r.buffer.messages,
      bufferBytes: r.buffer.bytes,
      onProductionStreamMissing: () => void ensureProductionStream(jsm, r.eventsStream, r.subjectPrefix, ctx.logger).catch(() => undefined),
    });
    const router = new EventRouter({ routes, publisher, prefix: r.subjectPrefix });
    const external = new ExternalRouter({ nc, jsm, logger: ctx.logger, router, publisher, ingestSubject: r.ingestSubject, prefix: r.subjectPrefix });
    await external.start();
    out(`routing ${r.ingestSubject} (stream ${external.ingestStream}) to sandbox.<id>.events.<T> and ${r.subjectPrefix}.<T>; Ctrl-C stops`);
    await stopped;
    await external.stop();
    await publisher.close();
  } finally {
    await routes.stop();
    await nc.drain().catch(() => undefined);
  }
}

/** `sandbox events <sandbox> [--follow] [--production]`: one JSON line per stored event. */
export async function runEventsCommand(
  ctx: CliContext,
  ref: string | undefined,
  o: { follow?: boolean; production?: boolean },
  out: (line: string) => void,
): Promise<void> {
  let stream: string;
  if (o.production) {
    stream = ctx.config.routing.eventsStream;
  } else {
    if (!ref) throw new SandboxError(ErrorCode.InvalidInput, 'Name a sandbox, or pass --production for the production stream.');
    const sandbox = await ctx.manager.resolve(ref);
    stream = sandboxStreamName(sandbox.id);
  }
  const nc = await connectNats(natsUrlOf(ctx), 'sandbox-events', ctx.logger);
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  try {
    await tailStream({ nc, stream, follow: Boolean(o.follow), out, signal: abort.signal });
  } finally {
    process.off('SIGINT', stop);
    await nc.close().catch(() => undefined);
  }
}
