// The running bot (startApp on the fake Discord and a real database) serves /readyz and /metrics,
// and its sweeper warns owners by DM through the real discord.js client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addGuild, setupEnv, type Env } from '../e2e/support/harness.ts';
import { countRows, snowflake } from '../support/db.ts';
import type { App } from '../../src/app.ts';

const op = { kind: 'operator', name: 'tester' } as const;
let env: Env;
let app: App;
let base: string;
const reachable = snowflake();
const unreachable = snowflake();

beforeAll(async () => {
  env = await setupEnv();
  addGuild(env.fake, { members: [reachable, unreachable] });
  app = await env.start();
  base = `http://127.0.0.1:${app.http.port}`;
});
afterAll(async () => {
  await env?.close();
});

describe('the running bot', () => {
  it('is ready: the database answers and the gateway is connected', async () => {
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready' });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('without NATS_URL: event routing is off, said once in the log, and /readyz shows events disabled', async () => {
    expect(await (await fetch(`${base}/readyz`)).json()).toMatchObject({ status: 'ready', checks: { events: 'disabled' } });
    expect(app.routing).toBeUndefined();
    expect(env.logs.lines.filter((l) => String(l.msg).startsWith('event routing off'))).toHaveLength(1);
  });

  it('serves /metrics with the sandboxes gauge from the database', async () => {
    await app.manager.create({ owner: 'cli:ops', ttlHours: 24 }, op);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toContain(`sandboxes{status="running"} ${await countRows(env.db, 'sandboxes', "status = 'running'")}`);
    expect(text).toContain('# TYPE sweeper_actions_total counter');
  });

  it('its sweeper DMs the owner how to extend, and survives a DM that Discord refuses', async () => {
    const ok = (await app.manager.create({ owner: reachable, ttlHours: 1 }, op)).sandbox;
    const blocked = (await app.manager.create({ owner: unreachable, ttlHours: 1 }, op)).sandbox;
    env.fake.failDmsFor(unreachable);
    const summary = await app.sweeper.runPass();
    expect(summary.counts.notified).toBe(1);
    expect(summary.failures).toEqual([expect.objectContaining({ action: 'notified', sandboxId: blocked.id })]);
    expect(env.fake.dms).toHaveLength(1);
    expect(env.fake.dms[0]).toMatchObject({ userId: reachable });
    expect(env.fake.dms[0]!.content).toContain(ok.name);
    expect(env.fake.dms[0]!.content).toContain(`/sandbox extend sandbox:${ok.name}`);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toContain('sweeper_actions_total{action="notified"} 1');
    expect(text).toContain('sweeper_failures_total{action="notified"} 1');
  });

  it('stops the HTTP server with the bot', async () => {
    await app.stop();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});
