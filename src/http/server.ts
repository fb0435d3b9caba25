import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.ts';
import { ErrorCode, SandboxError } from '../sandbox/errors.ts';

export interface HttpServerDeps {
  host: string;
  /** 0 picks a free port (tests); read the bound one from start()'s result or `port`. */
  port: number;
  registry: Registry;
  /** Resolves when the database answers (BotStore.ping). */
  pingDatabase: () => Promise<unknown>;
  isGatewayReady: () => boolean;
  /** Event routing: `degraded` while NATS is away (still ready: events buffer), `disabled` without NATS_URL (default). */
  eventsHealth?: () => 'ok' | 'degraded' | 'disabled';
  logger: Logger;
  /** How long /readyz waits for the database (default 2 s). */
  dbTimeoutMs?: number;
}

class Timeout extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * Liveness, readiness and Prometheus metrics over node:http.
 * - GET /healthz: 200 while the process serves requests.
 * - GET /readyz: 200 only when the database answers and the gateway is ready; else 503 with reasons. `checks.events`
 *   reports event routing (ok | degraded | disabled) and never makes it 503: while NATS is away events buffer.
 * - GET /metrics: Prometheus text format.
 */
export class HttpServer {
  private server: Server | undefined;
  private readonly log: Logger;
  private readonly dbTimeoutMs: number;

  constructor(private readonly deps: HttpServerDeps) {
    this.log = deps.logger.child({ component: 'http' });
    this.dbTimeoutMs = deps.dbTimeoutMs ?? 2000;
  }

  /** The bound port once started. */
  get port(): number {
    const address = this.server?.address() as AddressInfo | null | undefined;
    if (!address) throw new Error('the HTTP server is not listening');
    return address.port;
  }

  async start(): Promise<{ host: string; port: number }> {
    if (this.server) return { host: this.deps.host, port: this.port };
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.error({ err, url: req.url }, 'request failed');
        if (!res.headersSent) send(res, 500, { status: 'error' });
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(listenError(err, this.deps.host, this.deps.port)));
      server.listen(this.deps.port, this.deps.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err }, 'http server error'));
    this.server = server;
    this.log.info({ host: this.deps.host, port: this.port }, 'http server listening');
    return { host: this.deps.host, port: this.port };
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const force = setTimeout(() => server.closeAllConnections(), 2000);
    force.unref();
    await closed;
    clearTimeout(force);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route = ROUTES[path];
    if (!route) return send(res, 404, { status: 'not_found' });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, { status: 'method_not_allowed' });
    }
    switch (route) {
      case 'healthz':
        return send(res, 200, { status: 'ok' });
      case 'readyz':
        return this.readyz(res);
      case 'metrics': {
        const body = await this.deps.registry.metrics();
        res.writeHead(200, { 'Content-Type': this.deps.registry.contentType, 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
    }
  }

  private async readyz(res: ServerResponse): Promise<void> {
    const reasons: string[] = [];
    let events: 'ok' | 'degraded' | 'disabled' = 'disabled';
    try {
      events = this.deps.eventsHealth?.() ?? 'disabled';
    } catch {
      events = 'degraded';
    }
    const checks: { database: 'ok' | 'error' | 'timeout'; gateway: 'ready' | 'not_ready'; events: 'ok' | 'degraded' | 'disabled' } = {
      database: 'ok',
      gateway: 'ready',
      events,
    };
    try {
      await withTimeout(this.deps.pingDatabase(), this.dbTimeoutMs);
    } catch (err) {
      checks.database = err instanceof Timeout ? 'timeout' : 'error';
      reasons.push(err instanceof Timeout ? 'database_timeout' : 'database_unavailable');
      this.log.warn({ err: { message: (err as Error)?.message } }, 'readiness: database check failed');
    }
    let gatewayReady = false;
    try {
      gatewayReady = this.deps.isGatewayReady();
    } catch {
      gatewayReady = false;
    }
    if (!gatewayReady) {
      checks.gateway = 'not_ready';
      reasons.push('gateway_not_ready');
    }
    if (reasons.length) send(res, 503, { status: 'not_ready', reasons, checks });
    else send(res, 200, { status: 'ready', checks });
  }
}

const ROUTES: Record<string, 'healthz' | 'readyz' | 'metrics'> = { '/healthz': 'healthz', '/readyz': 'readyz', '/metrics': 'metrics' };

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

/** A port we cannot bind is a configuration problem: one sentence naming HTTP_PORT/HTTP_HOST, no stack. */
export function listenError(err: Error, host: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new SandboxError(ErrorCode.Config, `HTTP_PORT ${port} is already in use on ${host}: stop whatever listens there, or set HTTP_PORT to a free port (0 picks one).`, {}, { cause: err });
  }
  if (code === 'EACCES') {
    return new SandboxError(ErrorCode.Config, `HTTP_PORT ${port} on ${host} needs privileges this process lacks: set HTTP_PORT to a port above 1023.`, {}, { cause: err });
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
    return new SandboxError(ErrorCode.Config, `HTTP_HOST ${host} is not an address of this machine: set HTTP_HOST (default 127.0.0.1).`, {}, { cause: err });
  }
  return err;
}
