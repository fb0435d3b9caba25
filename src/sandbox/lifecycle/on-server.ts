import type { PrismaClient } from '../../db/database.ts';
import { DEFAULT_SERVER } from '../servers.ts';
import { transactionOn, type Tx } from '../store/store.ts';
import type { LifecycleContext } from './context.ts';

/**
 * Runs `fn` in a transaction on the server that holds the sandbox's schema. On `default` that is
 * the caller's control transaction itself (one transaction, as with a single server). On another
 * server it is that server's own transaction, committed when fn returns, while the caller's
 * control transaction (holding the sandbox's key and row lock) is still open: the caller commits
 * its side after, and a failure between the two is repaired like any other (compensation, the
 * stuck-row reconciler, the teardown retry), always on the recorded server. A server that is down
 * fails with SANDBOX_011 naming it, and nothing is done there.
 */
export function onServer<T>(ctx: LifecycleContext, server: string, controlTx: Tx, fn: (tx: Tx) => Promise<T>): Promise<T> {
  if (server === DEFAULT_SERVER) return fn(controlTx);
  return ctx.servers.guard(server, async () => transactionOn(await ctx.servers.use(server), fn));
}

/** Runs `fn` with a client of the sandbox's server, outside any transaction (reads: stats, existence checks). */
export function withServer<T>(ctx: LifecycleContext, server: string, fn: (db: PrismaClient) => Promise<T>): Promise<T> {
  return ctx.servers.guard(server, async () => fn(await ctx.servers.use(server)));
}
