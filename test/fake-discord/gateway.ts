import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { GatewayCloseCodes, GatewayIntentBits, GatewayOpcodes } from 'discord.js';
import { WebSocketServer } from 'ws';
import type { RawData, WebSocket } from 'ws';
import { isRecord } from './http.ts';
import { sessionId as newSessionId } from './ids.ts';
import { dispatchGuildId, onShard, parseShard, type Shard } from './shards.ts';

export interface GatewayHost {
  /** The bot token as sent in IDENTIFY (without the `Bot ` prefix). */
  readonly token: string;
  readyPayload(sessionId: string, shard: Shard): unknown;
  /** GUILD_CREATE payloads sent right after READY (the shard's guilds). */
  initialGuildCreates(shard: Shard): unknown[];
  /** GUILD_MEMBERS_CHUNK payloads answering an op 8 request. */
  memberChunks(request: Record<string, unknown>): unknown[];
}

export interface IdentifyRecord {
  sessionId: string;
  intents: number;
  /** `[shard_id, num_shards]` as identified (`[0, 1]` without a shard field). */
  shard: Shard;
  /** `performance.now()` when IDENTIFY arrived. */
  at: number;
}

interface Dispatch {
  op: GatewayOpcodes.Dispatch;
  t: string;
  s: number;
  d: unknown;
}

interface Session {
  id: string;
  intents: number;
  shard: Shard;
  seq: number;
  socket: WebSocket | null;
  /** Recent dispatches, replayed on RESUME. */
  history: Dispatch[];
}

interface GatewayFrame {
  op: number;
  d?: unknown;
}

/** Enough for a test that keeps dispatching while a bot process is down. */
const HISTORY_LIMIT = 5000;
/** Client close codes after which Discord drops the session (so a resume gets op 9). */
const FINAL_CLOSE_CODES = new Set([1000, 1001]);

export interface DispatchOptions {
  /** Only sessions that identified with this intent receive the event. */
  intent?: GatewayIntentBits;
  /** Only the most recently identified session (of the owning shard) receives it (interactions go to one client). */
  latestOnly?: boolean;
  /** The guild whose shard receives it; by default read from the payload (`guild_id`, or `id` for GUILD_*), none: shard 0. */
  guildId?: string | null;
}

export class Gateway {
  readonly identifies: IdentifyRecord[] = [];
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sessions = new Map<string, Session>();
  private readonly identifyWaiters = new Set<() => void>();
  /** Extra already-seen events the next RESUME replays (as Discord does for a client resuming from an older seq). */
  private replayOnResume = 0;
  /** How many RESUMEs were accepted. */
  resumes = 0;
  /**
   * Keep sessions even when the client closes with 1000/1001, as Discord keeps the session of a process that died
   * (kill -9 closes nothing): lets a test stop a bot in-process and resume its session from another.
   */
  keepSessionsOnClose = false;
  /** Every accepted RESUME: its session, the seq the client sent and how many dispatches were replayed. */
  readonly resumeLog: Array<{ sessionId: string; seq: number; replayed: number }> = [];

  constructor(
    private readonly host: GatewayHost,
    private readonly heartbeatIntervalMs: number,
  ) {
    this.wss.on('connection', (socket) => this.onConnection(socket));
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
  }

  /** True while at least one identified (or resumed) session has an open socket. */
  get connected(): boolean {
    return this.liveSessions().length > 0;
  }

  /**
   * Sends to every session of the shard owning the event's guild (shard 0 for events without one), including
   * disconnected sessions that may still resume; returns how many.
   */
  dispatch(t: string, d: unknown, options: DispatchOptions = {}): number {
    const guildId = options.guildId === undefined ? dispatchGuildId(t, d) : options.guildId;
    let targets = [...this.sessions.values()].filter(({ shard }) => (guildId ? onShard(guildId, shard) : shard[0] === 0));
    const { intent } = options;
    if (intent !== undefined) targets = targets.filter((s) => (s.intents & intent) !== 0);
    if (options.latestOnly) targets = targets.slice(-1);
    for (const session of targets) this.send(session, t, d);
    return targets.length;
  }

  /**
   * Makes connected clients resume (op 7) and replays, besides what they missed, their last `replay` events again
   * (same `s`), as a gateway does for a client resuming from a seq older than what it processed.
   */
  forceResume(replay = 0): void {
    this.replayOnResume = replay;
    this.requestReconnect();
  }

  /** Tells connected clients to reconnect and resume (op 7). */
  requestReconnect(): void {
    for (const session of this.liveSessions()) session.socket?.send(JSON.stringify({ op: GatewayOpcodes.Reconnect, d: null }));
  }

  /**
   * Resolves once a session is connected. With `count`, waits until that many IDENTIFYs have been
   * seen in total (e.g. `identifies.length + 1` for the next bot start).
   */
  waitForIdentify({ count, timeoutMs = 5000 }: { count?: number; timeoutMs?: number } = {}): Promise<void> {
    const done = () => (count === undefined ? this.connected : this.identifies.length >= count && this.connected);
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.identifyWaiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.identifyWaiters.delete(check);
        reject(new Error(`FakeDiscord: no gateway IDENTIFY within ${timeoutMs} ms`));
      }, timeoutMs);
      this.identifyWaiters.add(check);
    });
  }

  async close(): Promise<void> {
    const sockets = [...this.wss.clients];
    await Promise.all(sockets.map((socket) => closeSocket(socket)));
    this.sessions.clear();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private liveSessions(): Session[] {
    return [...this.sessions.values()].filter((s) => s.socket?.readyState === 1);
  }

  private onConnection(socket: WebSocket): void {
    socket.send(JSON.stringify({ op: GatewayOpcodes.Hello, d: { heartbeat_interval: this.heartbeatIntervalMs } }));
    let session: Session | null = null;
    socket.on('message', (raw: RawData) => {
      const frame = parseFrame(raw);
      if (!frame) return socket.close(GatewayCloseCodes.DecodeError, 'Error while decoding payload.');
      switch (frame.op) {
        case GatewayOpcodes.Heartbeat:
          return socket.send(JSON.stringify({ op: GatewayOpcodes.HeartbeatAck }));
        case GatewayOpcodes.Identify:
          session = this.identify(socket, frame.d);
          return;
        case GatewayOpcodes.Resume:
          session = this.resume(socket, frame.d);
          return;
        case GatewayOpcodes.RequestGuildMembers:
          if (session && isRecord(frame.d)) {
            for (const chunk of this.host.memberChunks(frame.d)) this.send(session, 'GUILD_MEMBERS_CHUNK', chunk);
          }
          return;
        default:
          return; // presence, voice state and other updates are ignored
      }
    });
    socket.on('close', (code: number) => {
      if (!session || session.socket !== socket) return;
      session.socket = null;
      if (FINAL_CLOSE_CODES.has(code) && !this.keepSessionsOnClose) this.sessions.delete(session.id);
    });
  }

  private identify(socket: WebSocket, data: unknown): Session | null {
    if (!isRecord(data) || data.token !== this.host.token) {
      socket.close(GatewayCloseCodes.AuthenticationFailed, 'Authentication failed.');
      return null;
    }
    const shard = parseShard(data.shard);
    if (!shard) {
      socket.close(GatewayCloseCodes.InvalidShard, 'Invalid shard.');
      return null;
    }
    const session: Session = {
      id: newSessionId(),
      intents: typeof data.intents === 'number' ? data.intents : 0,
      shard,
      seq: 0,
      socket,
      history: [],
    };
    this.sessions.set(session.id, session);
    this.identifies.push({ sessionId: session.id, intents: session.intents, shard, at: performance.now() });
    this.send(session, 'READY', this.host.readyPayload(session.id, shard));
    for (const guild of this.host.initialGuildCreates(shard)) this.send(session, 'GUILD_CREATE', guild);
    for (const check of [...this.identifyWaiters]) check();
    return session;
  }

  private resume(socket: WebSocket, data: unknown): Session | null {
    const session = isRecord(data) && data.token === this.host.token ? this.sessions.get(String(data.session_id)) : undefined;
    if (!session || !isRecord(data)) {
      socket.send(JSON.stringify({ op: GatewayOpcodes.InvalidSession, d: false }));
      return null;
    }
    if (session.socket && session.socket !== socket) session.socket.terminate();
    session.socket = socket;
    const since = (typeof data.seq === 'number' ? data.seq : 0) - this.replayOnResume;
    this.replayOnResume = 0;
    this.resumes++;
    const replay = session.history.filter((event) => event.s > since);
    this.resumeLog.push({ sessionId: session.id, seq: typeof data.seq === 'number' ? data.seq : 0, replayed: replay.length });
    for (const event of replay) socket.send(JSON.stringify(event));
    this.send(session, 'RESUMED', {});
    for (const check of [...this.identifyWaiters]) check();
    return session;
  }

  private send(session: Session, t: string, d: unknown): void {
    const event: Dispatch = { op: GatewayOpcodes.Dispatch, t, s: ++session.seq, d };
    session.history.push(event);
    if (session.history.length > HISTORY_LIMIT) session.history.shift();
    session.socket?.send(JSON.stringify(event));
  }
}

function parseFrame(raw: RawData): GatewayFrame | null {
  try {
    const frame: unknown = JSON.parse(raw.toString());
    return isRecord(frame) && typeof frame.op === 'number' ? (frame as unknown as GatewayFrame) : null;
  } catch {
    return null;
  }
}

function closeSocket(socket: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.readyState === 3) return resolve();
    const timer = setTimeout(() => socket.terminate(), 200);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.close(1001, 'Fake Discord stopped');
  });
}
