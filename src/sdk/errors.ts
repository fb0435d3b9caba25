/** Stable codes a worker can match on. */
export type SandboxConnectErrorCode =
  | 'SDK_CONFIG'
  | 'SDK_EMBEDDED_DATABASE'
  | 'SDK_SCHEMA_MISSING'
  | 'SDK_SANDBOX_NOT_LIVE'
  | 'SDK_WRONG_IDENTITY'
  | 'SDK_NOT_CONFIGURED'
  | 'SDK_STREAM_MISSING';

/** Every failure of connectSandbox and its parts: says which sandbox and what to do. Never carries a password. */
export class SandboxConnectError extends Error {
  override readonly name = 'SandboxConnectError';
  constructor(
    readonly code: SandboxConnectErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
