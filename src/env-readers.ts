/**
 * Typed reads of environment variables for configuration parsers. Each problem is pushed onto
 * `problems` so that the caller reports all of them at once.
 */
export interface EnvReaders {
  /** The trimmed value, or undefined when unset or blank. */
  str(key: string): string | undefined;
  /** A whole number in [min, max], or `fallback` when unset; out of range or not a number is a problem. */
  int(key: string, fallback: number, min: number, max: number): number;
}

export function envReaders(env: NodeJS.ProcessEnv, problems: string[]): EnvReaders {
  const str = (key: string): string | undefined => {
    const v = env[key]?.trim();
    return v ? v : undefined;
  };
  const int = (key: string, fallback: number, min: number, max: number): number => {
    const raw = str(key);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${key} must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
      return fallback;
    }
    return n;
  };
  return { str, int };
}
