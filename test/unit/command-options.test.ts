import { describe, expectTypeOf, it } from 'vitest';
import type { ArgsOf } from '../../src/bot/commands/options.ts';

describe('typed option reads', () => {
  it('derives names and value types from the command definition', () => {
    expectTypeOf<ArgsOf<'extend'>>().toEqualTypeOf<{ sandbox: string; hours: number }>();
    expectTypeOf<ArgsOf<'create'>>().toEqualTypeOf<{ name: string | undefined; ttl_hours: number | undefined; register_this_guild: boolean | undefined }>();
    expectTypeOf<ArgsOf<'register-guild'>>().toEqualTypeOf<{ sandbox: string; guild_id: string | undefined }>();
    expectTypeOf<ArgsOf<'list'>>().toEqualTypeOf<{ all: boolean | undefined }>();
  });

  it('does not compile a misspelt option name', () => {
    const args = {} as ArgsOf<'extend'>;
    // @ts-expect-error: `hourz` is not an option of /sandbox extend
    void args.hourz;
    // @ts-expect-error: `frobnicate` is not a subcommand
    expectTypeOf<ArgsOf<'frobnicate'>>();
  });
});
