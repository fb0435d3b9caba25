import { createHmac, pbkdf2, randomBytes, createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { canonicalSandboxId, sandboxIdentityName } from './naming.ts';

/** What a derived password is for. Each purpose gets an unrelated password. */
export type CredentialPurpose = 'postgres' | 'redis';

/**
 * A secret that never shows up in logs, JSON or string conversion: only `reveal()` gives the value.
 * pino serializes objects through JSON.stringify, so `toJSON` covers logged configs.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '[redacted]';
  }
  toString(): string {
    return '[redacted]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'Secret([redacted])';
  }
}

/** hex HMAC-SHA256(secret, `${purpose}:${sandboxId}`) with the canonical hyphenated id. */
export function derivePassword(secret: Secret | string, purpose: CredentialPurpose, sandboxId: string): string {
  const key = typeof secret === 'string' ? secret : secret.reveal();
  if (!key) throw new Error('SANDBOX_CREDENTIAL_SECRET is empty');
  return createHmac('sha256', key).update(`${purpose}:${canonicalSandboxId(sandboxId)}`).digest('hex');
}

/**
 * Passwords are derived, never stored: the same secret and id always give the same password, and a
 * new secret gives new ones (then every role and ACL user is re-keyed).
 */
export class SandboxCredentials {
  constructor(private readonly secret: Secret) {}

  /** The login role / ACL user name: `sandbox_<32 hex>`. */
  username(sandboxId: string): string {
    return sandboxIdentityName(sandboxId);
  }

  postgresPassword(sandboxId: string): string {
    return derivePassword(this.secret, 'postgres', sandboxId);
  }

  redisPassword(sandboxId: string): string {
    return derivePassword(this.secret, 'redis', sandboxId);
  }

  /** The control database URL with the sandbox's role and password (what `sandbox env` prints). */
  databaseUrl(controlDatabaseUrl: string, sandboxId: string): string {
    const u = new URL(controlDatabaseUrl);
    u.username = this.username(sandboxId);
    u.password = this.postgresPassword(sandboxId);
    u.searchParams.delete('schema');
    return u.toString();
  }

  /** The Redis URL with the sandbox's ACL user and password. */
  redisUrl(redisUrl: string, sandboxId: string): string {
    const u = new URL(redisUrl);
    u.username = this.username(sandboxId);
    u.password = this.redisPassword(sandboxId);
    return u.toString();
  }

  toJSON(): string {
    return '[SandboxCredentials]';
  }
}

const pbkdf2Async = promisify(pbkdf2);

/**
 * A SCRAM-SHA-256 verifier in PostgreSQL's stored format, so CREATE/ALTER ROLE never carries the
 * clear password (statement logs, pg_stat_statements). PostgreSQL accepts it as the role's
 * password and authenticates the clear password against it. (Passwords here are hex, so
 * SASLprep leaves them unchanged.)
 */
export async function scramSha256Verifier(password: string, iterations = 4096, salt: Buffer = randomBytes(16)): Promise<string> {
  const salted = await pbkdf2Async(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
