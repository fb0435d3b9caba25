// Redis health is a real PING when REDIS_URL is set (never hard-coded "ok").
import { afterAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { createRedisProbe } from '../../src/redis.ts';
import { silentLogger } from '../../src/logger.ts';

const probes: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const p of probes) await p.close();
});

const closedPort = async (): Promise<number> => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
};

describe('redis health probe', () => {
  it('is absent when REDIS_URL is not set', () => {
    expect(createRedisProbe(undefined, silentLogger())).toBeUndefined();
  });

  it('PINGs the real server', async () => {
    const probe = createRedisProbe('redis://127.0.0.1:6379', silentLogger())!;
    probes.push(probe);
    expect(await probe.ping()).toBe('PONG');
  });

  it('fails when nothing listens', async () => {
    const probe = createRedisProbe(`redis://127.0.0.1:${await closedPort()}`, silentLogger())!;
    probes.push(probe);
    await expect(probe.ping()).rejects.toThrow();
  });
});
