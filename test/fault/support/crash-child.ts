/**
 * Child process for the crash tests: runs one manager operation against the given database and
 * SIGKILLs itself at a named fault point, the way an OOM kill or a power cut would end it.
 * Nothing after the kill runs: no compensation, no `finally`, no pool shutdown.
 *
 * Input: one JSON argument `CrashSpec`. Output (stdout): `FAULT <point> <sandboxId>` just before
 * the kill, or `DONE <json>` if the operation finished without reaching the point.
 */
import { writeSync } from 'node:fs';
import { createPool, createPrisma } from '../../../src/db/database.ts';
import { silentLogger } from '../../../src/logger.ts';
import type { FaultInjector, FaultPoint } from '../../../src/sandbox/faults.ts';
import { SandboxManager } from '../../../src/sandbox/manager.ts';
import type { Actor } from '../../../src/sandbox/types.ts';
import { TableResource } from '../../support/table-resource.ts';
import { Redis } from 'ioredis';
import { jetstreamManager } from '@nats-io/jetstream';
import { SandboxCredentials, Secret } from '../../../src/sandbox/credentials.ts';
import { RedisAclResource, RedisKeysResource } from '../../../src/sandbox/redis-resources.ts';
import type { ExternalResource, PostgresResource } from '../../../src/sandbox/resources.ts';
import { SandboxRoles } from '../../../src/sandbox/store/roles.ts';
import { connectNats } from '../../../src/routing/nats.ts';
import { SandboxStreams } from '../../../src/routing/streams.ts';
import { openSandboxServers } from '../../../src/db/servers.ts';

export interface CrashSpec {
  url: string;
  point: FaultPoint;
  op: 'create' | 'destroy' | 'reset' | 'clone';
  actor: Actor;
  /** create: owner and name; destroy and reset: name (ref); clone: the new sandbox's name (source in `source`). */
  owner?: string;
  name: string;
  guildIds?: string[];
  maxPerOwner?: number;
  /** When set, the manager has one external resource: a TableResource on this table (two-phase teardown). */
  externalTable?: string;
  /** When set, the manager has the isolation drivers: the role, the Redis ACL user and keys, and (with natsUrl) the stream. */
  isolation?: { secret: string; redisUrl: string; natsUrl?: string };
  /** The template schema the manager builds from (reset, clone). */
  template?: string;
  /** clone: the source sandbox (name or id). */
  source?: string;
  /** SANDBOX_DATABASE_SERVERS besides the control database (placement). */
  servers?: { name: string; url: string }[];
}

const spec = JSON.parse(process.argv[2] ?? '{}') as CrashSpec;
const logger = silentLogger();
const pool = createPool(spec.url, logger, 2);
const prisma = createPrisma(pool, logger);

const faults: FaultInjector = {
  hit(point, ctx) {
    if (point !== spec.point) return;
    // Synchronous write: the parent must see which sandbox died, and nothing else may run.
    writeSync(1, `FAULT ${point} ${ctx.sandboxId ?? '-'}\n`);
    process.kill(process.pid, 'SIGKILL');
  },
};

const resources: ExternalResource[] = spec.externalTable ? [new TableResource(pool, spec.externalTable)] : [];
const postgresResources: PostgresResource[] = [];
if (spec.isolation) {
  const credentials = new SandboxCredentials(new Secret(spec.isolation.secret));
  postgresResources.push(new SandboxRoles(credentials));
  const redis = new Redis(spec.isolation.redisUrl);
  if (spec.isolation.natsUrl) {
    const nc = await connectNats(spec.isolation.natsUrl, 'crash-child', logger);
    resources.push(new SandboxStreams({ jsm: await jetstreamManager(nc), logger, maxAgeHours: 1, maxBytes: 1024 * 1024 }));
  }
  resources.push(new RedisAclResource(redis, credentials), new RedisKeysResource(redis));
}
const servers = spec.servers?.length ? openSandboxServers(spec.servers, { url: spec.url, prisma, pool }, logger) : undefined;
const manager = new SandboxManager({ prisma, logger, faults, resources, postgresResources, ...(servers ? { servers } : {}), limits: spec.maxPerOwner ? { maxPerOwner: spec.maxPerOwner } : {}, ...(spec.template ? { template: spec.template } : {}) });

const result =
  spec.op === 'create'
    ? await manager.create({ name: spec.name, owner: spec.owner, guildIds: spec.guildIds }, spec.actor)
    : spec.op === 'reset'
      ? await manager.reset(spec.name, spec.actor)
      : spec.op === 'clone'
        ? await manager.clone(spec.source!, spec.name, spec.actor)
        : await manager.destroy(spec.name, spec.actor);
writeSync(1, `DONE ${JSON.stringify(result)}\n`);
await prisma.$disconnect();
await pool.end();
