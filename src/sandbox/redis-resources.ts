import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import type { SandboxCredentials } from './credentials.ts';
import type { ExternalResource } from './resources.ts';
import { SANDBOX_IDENTITY_RE, canonicalSandboxId, sandboxIdFromIdentityName, sandboxIdentityName, sandboxRedisPrefix } from './naming.ts';

/** The admin client must see raw key names: a keyPrefix would silently make UNLINK miss what SCAN found. */
function assertUnprefixed(redis: Redis): void {
  if (redis.options.keyPrefix) throw new Error('The Redis admin client for sandbox resources must not have a keyPrefix');
}

/**
 * The ACL rules of a sandbox's user, in one ACL SETUSER: `reset` first, so re-running it (ensure,
 * rotate) leaves exactly these rules and only the current password. The password is given as its
 * SHA-256 (`#<hex>`), so the clear password never appears in a Redis command.
 */
export function sandboxAclRules(sandboxId: string, password: string): string[] {
  const prefix = sandboxRedisPrefix(sandboxId);
  return [
    'reset',
    'on',
    `#${createHash('sha256').update(password).digest('hex')}`,
    'resetkeys',
    `~${prefix}*`,
    'resetchannels',
    `&${prefix}*`,
    '+@all',
    '-@dangerous',
    // SCAN would list other sandboxes' key names; these reveal or switch the keyspace.
    '-scan',
    '-randomkey',
    '-dbsize',
    '-select',
    '-script|flush',
  ];
}

/** 'redis-acl': the sandbox's Redis ACL user `sandbox_<32 hex>`, limited to keys and channels `sandbox:<uuid>:*`. */
export class RedisAclResource implements ExternalResource {
  readonly kind = 'redis-acl';
  readonly bestEffort: boolean;

  constructor(
    private readonly redis: Redis,
    private readonly credentials: SandboxCredentials,
    private readonly opts: { logger?: Logger; bestEffort?: boolean } = {},
  ) {
    assertUnprefixed(redis);
    // A missing ACL user denies the worker; it never widens access. So it need not fail a create.
    this.bestEffort = opts.bestEffort ?? true;
  }

  /** Creates or reconfigures (and re-keys with the current secret: rotate-credentials) the user. */
  async ensure(sandboxId: string): Promise<void> {
    const id = canonicalSandboxId(sandboxId);
    await this.redis.call('ACL', 'SETUSER', sandboxIdentityName(id), ...sandboxAclRules(id, this.credentials.redisPassword(id)));
    this.opts.logger?.debug({ sandboxId: id }, 'redis acl user ensured');
  }

  /** ACL DELUSER also disconnects the user's clients. Absent is success. */
  async remove(sandboxId: string): Promise<void> {
    const id = canonicalSandboxId(sandboxId);
    await this.redis.call('ACL', 'DELUSER', sandboxIdentityName(id));
  }

  async exists(sandboxId: string): Promise<boolean> {
    const user = await this.redis.call('ACL', 'GETUSER', sandboxIdentityName(canonicalSandboxId(sandboxId)));
    return user !== null;
  }

  /** Ids of every `sandbox_<32 hex>` ACL user on this server (exact pattern; other users are ignored). */
  async list(): Promise<string[]> {
    const users = (await this.redis.call('ACL', 'USERS')) as string[];
    return users.filter((u) => SANDBOX_IDENTITY_RE.test(u)).map((u) => sandboxIdFromIdentityName(u)!).sort();
  }
}

const SCAN_COUNT = 1000;
/** `sandbox:<uuid>:…` with a canonical id: the only keys list() counts. */
const SANDBOX_KEY_RE = /^sandbox:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):/;

/**
 * 'redis-keys': every key under `sandbox:<uuid>:`. Nothing to make (ensure is a no-op); remove runs
 * `SCAN MATCH sandbox:<uuid>:* COUNT 1000` with batched UNLINK, and repeats whole passes until one
 * finds nothing (keys written during a pass are caught by the next). The uuid holds only hex and
 * '-', so the MATCH pattern has no glob characters but the final '*'.
 *
 * Cost: SCAN walks the whole keyspace, so remove() and exists() are O(keys on the server) in
 * steps of 1000; list() too (one pass over `sandbox:*`). The sweeper should call list() on its
 * slow orphan pass only; a crash mid-teardown is covered without it, since the row stays
 * `destroying` and remove() is retried.
 */
export class RedisKeysResource implements ExternalResource {
  readonly kind = 'redis-keys';
  readonly bestEffort = true;
  /** A sandbox with no keys is normal: the sweeper does not "ensure" them (nor SCAN for them) each pass. */
  readonly nothingToEnsure = true;

  constructor(
    private readonly redis: Redis,
    private readonly opts: { logger?: Logger; maxPasses?: number } = {},
  ) {
    assertUnprefixed(redis);
  }

  async ensure(_sandboxId: string): Promise<void> {
    // Keys appear when the worker writes them.
  }

  /** Returns nothing; throws when keys keep appearing for maxPasses passes (default 10), so the sweeper retries. */
  async remove(sandboxId: string): Promise<void> {
    const pattern = `${sandboxRedisPrefix(sandboxId)}*`;
    const maxPasses = this.opts.maxPasses ?? 10;
    let total = 0;
    for (let pass = 1; pass <= maxPasses; pass++) {
      let found = 0;
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
        cursor = next;
        if (keys.length) {
          found += keys.length;
          await this.redis.unlink(...keys);
        }
      } while (cursor !== '0');
      total += found;
      if (found === 0) {
        if (total) this.opts.logger?.debug({ sandboxId, keys: total, passes: pass }, 'redis keys removed');
        return;
      }
    }
    throw new Error(`Redis keys under ${sandboxRedisPrefix(sandboxId)} were still being written after ${maxPasses} passes`);
  }

  /** Reset: deletes every key under the sandbox's prefix (SCAN + UNLINK, as remove does). */
  purge(sandboxId: string): Promise<void> {
    return this.remove(sandboxId);
  }

  async exists(sandboxId: string): Promise<boolean> {
    const pattern = `${sandboxRedisPrefix(sandboxId)}*`;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      if (keys.length) return true;
      cursor = next;
    } while (cursor !== '0');
    return false;
  }

  /** Ids that have at least one key, from one SCAN pass over `sandbox:*` (O(keyspace); see the class note). */
  async list(): Promise<string[]> {
    const ids = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', 'sandbox:*', 'COUNT', SCAN_COUNT);
      for (const k of keys) {
        const m = SANDBOX_KEY_RE.exec(k);
        if (m) ids.add(m[1]!);
      }
      cursor = next;
    } while (cursor !== '0');
    return [...ids].sort();
  }
}
