/**
 * The bot as a separate process, started as `npm start` would run it (`src/main.ts`, through tsx), for tests that
 * need several bot processes or a kill -9. It listens on a free HTTP port (HTTP_PORT=0; the port is read from its
 * "http server listening" log line) and logs JSON at info level, which the test reads back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type LogLine = Record<string, unknown>;

export interface BotProcess {
  readonly name: string;
  readonly pid: number;
  /** `http://127.0.0.1:<port>`, known once started. */
  readonly httpUrl: string;
  /** Every JSON log line so far, parsed. */
  readonly logs: LogLine[];
  /** Output lines that are not JSON log lines (startup errors). */
  readonly stderr: string[];
  /** Resolves with the first log line (past or future) matching; rejects on timeout or exit. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Polls `/readyz` until it answers 200. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Sends the signal and resolves with the exit code (null when killed by a signal). */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGTERM (a clean shutdown), then waits for the exit. */
  stop(): Promise<number | null>;
  readonly exited: boolean;
}

/**
 * A bot process's environment on this fake Discord and database: the test credential secret (isolation is on with
 * DATABASE_URL) and the rate limit out of reach. `extra` adds or overrides variables.
 */
export const processEnv = (fake: { token: string; apiBase: string }, databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> => ({
  DISCORD_TOKEN: fake.token,
  DISCORD_API_URL: fake.apiBase,
  DATABASE_URL: databaseUrl,
  SANDBOX_CREDENTIAL_SECRET: 'bot-process-test-secret-0123456789abcdef',
  RATE_LIMIT_PER_MINUTE: '100000',
  ...extra,
});

export interface BotProcessOptions {
  /** Shown in failure messages and prefixed to forwarded output. */
  name?: string;
  /** How long to wait for the HTTP port to be logged. */
  startTimeoutMs?: number;
  /** Forward the bot's log lines to this process's stderr (debugging). */
  echo?: boolean;
}

/**
 * Starts the bot with exactly `env` (plus PATH, HTTP_PORT=0 and LOG_LEVEL=info unless given): nothing else of this
 * process's environment leaks in, so a developer's `.env` values are the only other source (real env wins over it).
 * Resolves once the HTTP server listens; call `waitReady()` for the gateway.
 */
export async function startBotProcess(env: Record<string, string>, opts: BotProcessOptions = {}): Promise<BotProcess> {
  const name = opts.name ?? 'bot';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  let exitCode: number | null | undefined;
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      for (const wake of [...waiters]) wake();
      resolve(code);
    }),
  );
  // The logger writes JSON lines to stderr; anything else (a startup error) is kept as text.
  const onLine = (line: string): void => {
    if (opts.echo) process.stderr.write(`[${name}] ${line}\n`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    if (parsed && typeof parsed === 'object') logs.push(parsed as LogLine);
    else stderr.push(line);
    for (const wake of [...waiters]) wake();
  };
  lines(child, 'stdout', onLine);
  lines(child, 'stderr', onLine);

  const waitForLog = (predicate: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = logs.find(predicate);
        if (hit) {
          done();
          resolve(hit);
        } else if (exitCode !== undefined) {
          done();
          reject(new Error(`${name} exited (${exitCode}) before the expected log line; stderr: ${stderr.slice(-5).join(' | ')}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${name}: no matching log line within ${timeoutMs} ms; last lines: ${logs.slice(-3).map((l) => String(l.msg)).join(' | ')}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  let listening: LogLine;
  try {
    listening = await waitForLog((l) => l.msg === 'http server listening' && typeof l.port === 'number', opts.startTimeoutMs ?? 60_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const httpUrl = `http://127.0.0.1:${listening.port as number}`;

  const kill = (signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> => {
    if (exitCode === undefined) child.kill(signal);
    return exit;
  };
  return {
    name,
    pid: child.pid ?? -1,
    httpUrl,
    logs,
    stderr,
    waitForLog,
    async waitReady(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (exitCode !== undefined) throw new Error(`${name} exited (${exitCode}) before it was ready; stderr: ${stderr.slice(-5).join(' | ')}`);
        const status = await fetch(`${httpUrl}/readyz`).then(
          (r) => r.status,
          () => 0,
        );
        if (status === 200) return;
        if (Date.now() > deadline) throw new Error(`${name}: /readyz not 200 within ${timeoutMs} ms (last ${status})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    kill,
    stop: () => kill('SIGTERM'),
    get exited() {
      return exitCode !== undefined;
    },
  };
}

function lines(child: ChildProcess, stream: 'stdout' | 'stderr', onLine: (line: string) => void): void {
  let buffered = '';
  child[stream]?.setEncoding('utf8');
  child[stream]?.on('data', (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line) onLine(line);
    }
  });
}
