import type { RestResult } from './http.ts';
import type { FakeState } from './state.ts';

export interface RouteContext {
  state: FakeState;
  gatewayUrl: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  /** `performance.now()` when the request arrived. */
  at: number;
}

export interface Route {
  method: string;
  /** Segments; `:name` captures a (percent-decoded) segment. */
  segments: string[];
  /** Interaction callbacks and webhooks carry no Authorization header. */
  auth: boolean;
  handle: (ctx: RouteContext) => RestResult | Promise<RestResult>;
}

export function route(method: string, path: string, handle: Route['handle'], { auth = true } = {}): Route {
  return { method, segments: path.split('/').filter(Boolean), auth, handle };
}

export function matchRoute(
  routes: readonly Route[],
  method: string,
  segments: readonly string[],
): { route: Route; params: Record<string, string> } | null {
  for (const candidate of routes) {
    if (candidate.method !== method || candidate.segments.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const matched = candidate.segments.every((part, i) => {
      const actual = segments[i] ?? '';
      if (part.startsWith(':')) {
        params[part.slice(1)] = actual;
        return true;
      }
      return part === actual;
    });
    if (matched) return { route: candidate, params };
  }
  return null;
}
