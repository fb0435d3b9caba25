import type { IncomingMessage, ServerResponse } from 'node:http';

export interface RestResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export function ok(body: unknown, status = 200): RestResult {
  return { status, body };
}

export function noContent(): RestResult {
  return { status: 204 };
}

/** A Discord-style JSON error, e.g. `apiError(404, 10007, 'Unknown Member')`. */
export function apiError(status: number, code: number, message: string): RestResult {
  return { status, body: { message, code } };
}

/** Parses a JSON body, or the `payload_json` part of a multipart body (file uploads). */
export async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return null;
  const raw = Buffer.concat(chunks);
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('multipart/form-data')) {
    const form = await new Response(raw, { headers: { 'content-type': type } }).formData();
    const payload = form.get('payload_json');
    return typeof payload === 'string' ? JSON.parse(payload) : null;
  }
  const text = raw.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function send(res: ServerResponse, result: RestResult): void {
  const headers: Record<string, string> = { ...result.headers };
  let payload: string | undefined;
  if (result.body !== undefined && result.status !== 204) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(result.body);
  }
  res.writeHead(result.status, headers);
  res.end(payload);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
