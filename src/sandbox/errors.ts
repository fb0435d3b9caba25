/** Stable error codes. Never renumber: users and scripts match on them. */
export const ErrorCode = {
  NameExists: 'SANDBOX_001',
  LimitExceeded: 'SANDBOX_002',
  GuildMapped: 'SANDBOX_003',
  NotFound: 'SANDBOX_004',
  SchemaFailed: 'SANDBOX_005',
  CleanupFailed: 'SANDBOX_006',
  InvalidTransition: 'SANDBOX_007',
  InvalidInput: 'SANDBOX_008',
  Forbidden: 'SANDBOX_009',
  Conflict: 'SANDBOX_010',
  Unavailable: 'SANDBOX_011',
  Internal: 'SANDBOX_012',
  Config: 'SANDBOX_013',
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

export class SandboxError extends Error {
  override readonly name = 'SandboxError';
  constructor(
    readonly code: ErrorCodeValue,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** True for errors the user can fix or retry; false for bugs and infrastructure faults. */
  get isUserError(): boolean {
    return this.code !== ErrorCode.Internal && this.code !== ErrorCode.SchemaFailed && this.code !== ErrorCode.CleanupFailed;
  }

  toJSON(): { code: string; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export const invalidInput = (message: string, details: Record<string, unknown> = {}): SandboxError =>
  new SandboxError(ErrorCode.InvalidInput, message, details);

const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN',
  '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '53300',
  'P1001', 'P1002', 'P1008', 'P1017', 'P2024',
]);

/** Walks an error, its causes and driver-adapter wrappers, collecting SQLSTATE/Prisma/system codes. */
export function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  const seen = new Set<unknown>();
  const visit = (e: unknown, depth: number): void => {
    if (!e || typeof e !== 'object' || seen.has(e) || depth > 6) return;
    seen.add(e);
    const o = e as Record<string, unknown>;
    for (const key of ['code', 'originalCode', 'errno']) {
      if (typeof o[key] === 'string') codes.push(o[key] as string);
    }
    const meta = o.meta as Record<string, unknown> | undefined;
    if (meta && typeof meta.code === 'string') codes.push(meta.code);
    if (meta?.driverAdapterError) visit(meta.driverAdapterError, depth + 1);
    if (o.cause) visit(o.cause, depth + 1);
    if (typeof o.kind === 'string') codes.push(o.kind);
    if (Array.isArray(o.errors)) o.errors.forEach((x) => visit(x, depth + 1));
  };
  visit(err, 0);
  return codes;
}

const errorText = (err: unknown): string => {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    if (e instanceof Error) parts.push(e.message);
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join(' | ');
};

export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const codes = errorCodes(err);
  const unique = codes.includes('23505') || codes.includes('P2002') || codes.includes('UniqueConstraintViolation');
  if (!unique) return false;
  return constraint ? errorText(err).includes(constraint) || JSON.stringify(err, jsonSafe).includes(constraint) : true;
}

export function isDuplicateSchema(err: unknown): boolean {
  return errorCodes(err).includes('42P06') || /schema "[^"]+" already exists/.test(errorText(err));
}

export function isConnectionError(err: unknown): boolean {
  if (errorCodes(err).some((c) => CONNECTION_CODES.has(c))) return true;
  return /Connection terminated|connection.*(closed|refused|reset)|terminating connection|Can't reach database|timeout exceeded when trying to connect|Client has encountered a connection error|Server has closed the connection/i.test(
    errorText(err),
  );
}

function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/**
 * A database that refuses us for a reason only configuration can fix (no such database, no such
 * role, wrong password) as a SANDBOX_013 saying what to change; undefined for anything else.
 */
export function databaseConfigError(err: unknown): SandboxError | undefined {
  const codes = errorCodes(err);
  const fix = (what: string): SandboxError => {
    const text = errorText(err);
    const said = text.split(' | ').find((m) => /database|role|password|authentication/i.test(m)) ?? text;
    return new SandboxError(ErrorCode.Config, `Database configuration error: ${said.split('\n')[0]!.trim().slice(0, 200)}. ${what}`, {}, { cause: err });
  };
  if (codes.includes('3D000')) return fix('Create that database (for example: createdb <name>) or fix the database name at the end of DATABASE_URL.');
  if (codes.includes('28000')) return fix('Create that role in PostgreSQL or fix the user name in DATABASE_URL (postgres://USER@host:port/database).');
  if (codes.includes('28P01')) return fix('Fix the password in DATABASE_URL (postgres://user:PASSWORD@host:port/database).');
  return undefined;
}

/** Turns anything thrown below the domain into a SandboxError users may see. */
export function toSandboxError(err: unknown): SandboxError {
  if (err instanceof SandboxError) return err;
  const config = databaseConfigError(err);
  if (config) return config;
  if (isConnectionError(err)) {
    return new SandboxError(ErrorCode.Unavailable, 'The database is unavailable right now. Please try again in a moment.', {}, { cause: err });
  }
  return new SandboxError(ErrorCode.Internal, 'An internal error occurred.', {}, { cause: err });
}
