import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { apiError, readBody } from './http.ts';
import type { RestResult } from './http.ts';
import { RouteHooks } from './hooks.ts';
import { interactionRoutes } from './rest-interactions.ts';
import { restRoutes } from './rest.ts';
import { matchRoute } from './router.ts';
import type { Route } from './router.ts';
import type { FakeState } from './state.ts';

export const API_PREFIX = '/api/v10/';

export interface RequestRecord {
  method: string;
  /** Percent-decoded path after `/api/v10`, e.g. `/webhooks/1/tok/messages/@original`. */
  path: string;
  query: string;
  body: unknown;
  /** `performance.now()` when the request arrived. */
  at: number;
  /** Set once answered. */
  status: number | null;
}

const ROUTES: readonly Route[] = [...restRoutes, ...interactionRoutes];

/** Serves `/api/v10/*`: logging, test hooks, auth, then the route table. */
export class ApiHandler extends EventEmitter<{ request: [RequestRecord] }> {
  readonly requests: RequestRecord[] = [];
  readonly unhandled: RequestRecord[] = [];
  readonly hooks = new RouteHooks();

  constructor(
    private readonly state: FakeState,
    private readonly token: string,
    private readonly gatewayUrl: () => string,
  ) {
    super();
  }

  async handle(req: IncomingMessage, url: URL): Promise<RestResult> {
    const at = performance.now();
    const method = req.method ?? 'GET';
    const segments = url.pathname.slice(API_PREFIX.length).split('/').filter(Boolean).map(decodeSegment);
    const record: RequestRecord = {
      method,
      path: `/${segments.join('/')}`,
      query: url.search,
      body: await readBody(req),
      at,
      status: null,
    };
    this.requests.push(record);
    this.emit('request', record);
    const result = await this.respond(record, segments, url.searchParams, req.headers.authorization);
    record.status = result.status;
    return result;
  }

  private async respond(record: RequestRecord, segments: string[], query: URLSearchParams, auth: string | undefined): Promise<RestResult> {
    const failure = await this.hooks.apply(`${record.method} ${record.path}`);
    if (failure) return failure;
    const match = matchRoute(ROUTES, record.method, segments);
    if (!match) {
      this.unhandled.push(record);
      return apiError(404, 0, '404: Not Found');
    }
    if (match.route.auth && auth !== `Bot ${this.token}`) return apiError(401, 0, '401: Unauthorized');
    return match.route.handle({
      state: this.state,
      gatewayUrl: this.gatewayUrl(),
      params: match.params,
      query,
      body: record.body,
      at: record.at,
    });
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
