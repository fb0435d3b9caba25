// Metrics reflect what happened: the sandboxes gauge is the database's own count at scrape time,
// and the observers of the manager, the bot and the sweeper move the counters they own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, createTestDatabase, makeManager, snowflake, type TestDatabase } from '../support/db.ts';
import { silentLogger } from '../../src/logger.ts';
import { BotStore } from '../../src/sandbox/store/bot-store.ts';
import { Metrics } from '../../src/metrics.ts';
import { InjectedFault, type FaultInjector } from '../../src/sandbox/faults.ts';
import type { SandboxManager } from '../../src/sandbox/manager.ts';
import { SANDBOX_STATUSES } from '../../src/sandbox/types.ts';
import { Sweeper } from '../../src/jobs/sweeper.ts';

const HOUR = 3_600_000;
const op = { kind: 'operator', name: 'tester' } as const;
let db: TestDatabase;
let metrics: Metrics;
let manager: SandboxManager;
let now = new Date();
const failing = new Set<string>();
const faults: FaultInjector = {
  hit(point, ctx) {
    if ((point === 'create:after-schema' && failing.has('create')) || (point === 'destroy:after-drop' && ctx.sandboxId && failing.has(ctx.sandboxId))) {
      throw new InjectedFault(point);
    }
  },
};

/** The value of one sample, read from the registry (label order does not matter). */
async function sample(name: string, labels: Record<string, string> = {}, m: Metrics = metrics): Promise<number | undefined> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val) && (v as { metricName?: string }).metricName !== `${name}_bucket`);
  return hit?.value;
}

beforeAll(async () => {
  db = await createTestDatabase();
  metrics = new Metrics({ store: new BotStore(db.prisma), logger: silentLogger() });
  manager = makeManager(db, { clock: () => new Date(now), faults, observer: metrics.managerObserver() });
});
afterAll(async () => {
  await db?.drop();
});

describe('metrics', () => {
  it('several registries live side by side in one process', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.creates.inc({ outcome: 'success' });
    expect(await sample('sandbox_creates_total', { outcome: 'success' }, a)).toBe(1);
    expect(await sample('sandbox_creates_total', { outcome: 'success' }, b)).toBe(0);
  });

  it('the sandboxes gauge counts every status in the database at scrape time', async () => {
    const a = await manager.create({ owner: snowflake() }, op);
    await manager.create({ owner: snowflake() }, op);
    await manager.destroy(a.sandbox.id, op);
    for (const status of SANDBOX_STATUSES) {
      expect(await sample('sandboxes', { status })).toBe(await countRows(db, 'sandboxes', 'status = $1::sandbox_status', [status]));
    }
    expect(await sample('sandboxes', { status: 'running' })).toBeGreaterThan(0);
    await manager.create({ owner: snowflake() }, op);
    expect(await sample('sandboxes', { status: 'running' })).toBe(await countRows(db, 'sandboxes', "status = 'running'"));
  });

  it('counts creates and destroys by outcome, and destroy failures', async () => {
    const ok = (await sample('sandbox_creates_total', { outcome: 'success' }))!;
    await manager.create({ owner: snowflake() }, op);
    failing.add('create');
    await expect(manager.create({ owner: snowflake() }, op)).rejects.toMatchObject({ code: 'SANDBOX_012' });
    failing.delete('create');
    expect(await sample('sandbox_creates_total', { outcome: 'success' })).toBe(ok + 1);
    expect(await sample('sandbox_creates_total', { outcome: 'failure' })).toBe(1);
    expect(await sample('sandbox_create_duration_seconds', { outcome: 'failure' })).toBeGreaterThan(0);

    const { sandbox } = await manager.create({ owner: snowflake() }, op);
    failing.add(sandbox.id);
    await expect(manager.destroy(sandbox.id, op)).rejects.toMatchObject({ code: 'SANDBOX_006' });
    expect(await sample('sandbox_destroy_failures_total')).toBe(1);
    expect(await sample('sandbox_destroys_total', { outcome: 'failure' })).toBe(1);
    failing.delete(sandbox.id);

    // The sweeper's retry fails nothing now and is counted as a successful destroy.
    now = new Date(now.getTime() + 60_000);
    const sweeper = new Sweeper({ manager, logger: silentLogger(), observer: metrics.sweeperObserver() });
    const summary = await sweeper.runPass();
    expect(summary.counts.destroy_retried).toBe(1);
    expect(await sample('sweeper_actions_total', { action: 'destroy_retried' })).toBe(1);
    expect(await sample('sandbox_destroys_total', { outcome: 'success' })).toBeGreaterThanOrEqual(1);
    expect(await sample('sweeper_pass_duration_seconds')).toBeDefined();
  });

  it('counts sweeper actions and failures by action', async () => {
    const sweeper = new Sweeper({ manager, logger: silentLogger(), observer: metrics.sweeperObserver(), settings: { graceMs: HOUR } });
    const before = (await sample('sweeper_actions_total', { action: 'expired' }))!;
    const { sandbox } = await manager.create({ owner: snowflake(), ttlHours: 1 }, op);
    const other = await manager.create({ owner: snowflake(), ttlHours: 1 }, op);
    now = new Date(now.getTime() + HOUR + 1000);
    await sweeper.runPass();
    expect(await sample('sweeper_actions_total', { action: 'expired' })).toBeGreaterThanOrEqual(before + 2);
    failing.add(sandbox.id);
    now = new Date(now.getTime() + HOUR);
    const summary = await sweeper.runPass();
    failing.delete(sandbox.id);
    expect(summary.failures.map((f) => f.sandboxId)).toEqual([sandbox.id]);
    expect(await sample('sweeper_failures_total', { action: 'destroyed' })).toBe(1);
    expect(await sample('sweeper_actions_total', { action: 'destroyed' })).toBeGreaterThanOrEqual(1);
    expect(other.sandbox.id).not.toBe(sandbox.id);
  });

  it('the bot observer counts commands by subcommand and outcome, and acknowledgement latency', async () => {
    const bot = metrics.botObserver();
    bot.command('create', 'success', 0.2);
    bot.command('create', 'user_error', 0.05);
    bot.command('create', 'success', 0.3);
    bot.ack(0.04);
    expect(await sample('bot_commands_total', { subcommand: 'create', outcome: 'success' })).toBe(2);
    expect(await sample('bot_commands_total', { subcommand: 'create', outcome: 'user_error' })).toBe(1);
    const text = await metrics.registry.metrics();
    expect(text).toContain('interaction_ack_seconds_count 1');
    expect(text).toMatch(/bot_command_duration_seconds_sum\{[^}]*subcommand="create"[^}]*outcome="success"[^}]*\} 0\.5/);
  });
});
