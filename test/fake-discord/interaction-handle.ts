import { performance } from 'node:perf_hooks';
import type { APIInteraction, APIMessage } from 'discord.js';

export type ResponseKind = 'callback' | 'edit' | 'followup' | 'delete';

/** A request body the bot sent for an interaction, e.g. `{ type: 5, data: { flags: 64 } }` for a callback. */
export type ResponseBody = Record<string, unknown>;

export interface InteractionResponse {
  kind: ResponseKind;
  body: ResponseBody;
  /** `performance.now()` when the request arrived. */
  at: number;
  /** The message the response created or edited, if any. */
  messageId: string | null;
}

export type ResponseMatcher = ResponseKind | ((response: InteractionResponse) => boolean);

interface Waiter {
  matches: (response: InteractionResponse) => boolean;
  resolve: (response: InteractionResponse) => void;
}

const EPHEMERAL = 64;
const DEFERRED_KINDS = new Set([5, 6]);

function toPredicate(match: ResponseMatcher): (response: InteractionResponse) => boolean {
  return typeof match === 'function' ? match : (response) => response.kind === match;
}

/** The test's view of one dispatched interaction and everything the bot answered to it. */
export class InteractionHandle {
  /** `performance.now()` when the interaction was dispatched. */
  readonly sentAt = performance.now();
  readonly responses: InteractionResponse[] = [];
  /** The message `@original` refers to (created by the first callback, or the clicked message). */
  originalMessageId: string | null;
  private readonly waiters = new Set<Waiter>();

  constructor(
    readonly payload: APIInteraction,
    private readonly messages: ReadonlyMap<string, APIMessage>,
    originalMessageId: string | null = null,
  ) {
    this.originalMessageId = originalMessageId;
  }

  get id(): string {
    return this.payload.id;
  }

  get token(): string {
    return this.payload.token;
  }

  /** The body of the first interaction callback, e.g. `{ type: 5, data: { flags: 64 } }`. */
  get callback(): ResponseBody | undefined {
    return this.responses.find((r) => r.kind === 'callback')?.body;
  }

  get callbackType(): number | undefined {
    const type = this.callback?.type;
    return typeof type === 'number' ? type : undefined;
  }

  /** True when the first callback was a deferral (type 5, or 6 for components). */
  get deferred(): boolean {
    return DEFERRED_KINDS.has(this.callbackType ?? 0);
  }

  get ephemeral(): boolean {
    const data = this.callback?.data as { flags?: unknown } | undefined;
    return typeof data?.flags === 'number' && (data.flags & EPHEMERAL) !== 0;
  }

  /** The current state of the `@original` message, as the fake stores it. */
  get message(): APIMessage | undefined {
    return this.originalMessageId ? this.messages.get(this.originalMessageId) : undefined;
  }

  get edits(): ResponseBody[] {
    return this.responses.filter((r) => r.kind === 'edit').map((r) => r.body);
  }

  record(response: InteractionResponse): void {
    this.responses.push(response);
    for (const waiter of this.waiters) {
      if (waiter.matches(response)) waiter.resolve(response);
    }
  }

  firstResponse(timeoutMs = 5000): Promise<InteractionResponse> {
    return this.waitFor(() => true, timeoutMs);
  }

  /** The first response (already received or still to come) that matches. */
  waitFor(match: ResponseMatcher, timeoutMs = 5000): Promise<InteractionResponse> {
    const matches = toPredicate(match);
    const existing = this.responses.find(matches);
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        matches,
        resolve: (response) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(response);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`Interaction ${this.id}: no matching response within ${timeoutMs} ms; got ${this.describe()}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** The latest `@original` edit body, waiting for one if there is none yet. */
  async edited(timeoutMs = 5000): Promise<ResponseBody> {
    const latest = this.edits.at(-1);
    return latest ?? (await this.waitFor('edit', timeoutMs)).body;
  }

  /**
   * Waits for a non-deferral answer (a reply, update, edit or follow-up), then until no new response
   * has arrived for `quietMs`; returns everything recorded.
   */
  async settled({ quietMs = 100, timeoutMs = 5000 } = {}): Promise<InteractionResponse[]> {
    const deadline = performance.now() + timeoutMs;
    await this.waitFor((r) => r.kind !== 'callback' || !DEFERRED_KINDS.has(Number(r.body.type)), timeoutMs);
    for (;;) {
      const last = this.responses.at(-1)?.at ?? 0;
      const wait = Math.min(last + quietMs, deadline) - performance.now();
      if (wait <= 0) return [...this.responses];
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  describe(): string {
    if (this.responses.length === 0) return 'no responses';
    return this.responses.map((r) => `${r.kind}${r.kind === 'callback' ? ` type ${String(r.body.type)}` : ''}`).join(', ');
  }
}
