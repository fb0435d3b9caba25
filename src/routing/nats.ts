import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../logger.ts';

/**
 * Connects to NATS, retrying forever (the first connection too: `waitOnFirstConnect`). The returned promise settles
 * once connected, so a caller that must not wait (the bot) starts it without awaiting.
 */
export async function connectNats(url: string, name: string, logger: Logger): Promise<NatsConnection> {
  const nc = await connect({
    servers: url.split(',').map((s) => s.trim()),
    name,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
  });
  logger.child({ component: 'nats' }).info({ server: nc.getServer() }, 'connected to NATS');
  return nc;
}
