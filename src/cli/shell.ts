/** POSIX single-quoting: safe to `eval` whatever the value holds ($(…), backticks, quotes, newlines). */
export const shellQuote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

export function exportLines(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([key, value]) => {
      if (!ENV_NAME.test(key)) throw new Error(`refusing to export invalid variable name ${JSON.stringify(key)}`);
      return `export ${key}=${shellQuote(value)}`;
    })
    .join('\n');
}
