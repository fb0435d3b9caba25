import { ApplicationCommandOptionType as Opt, type ChatInputCommandInteraction } from 'discord.js';
import { invalidInput } from '../../sandbox/errors.ts';
import { sandboxCommand, type SubcommandName } from './definition.ts';

type SubcommandDefinition<N extends SubcommandName> = Extract<(typeof sandboxCommand.options)[number], { name: N }>;
type OptionDefinition<N extends SubcommandName> = SubcommandDefinition<N> extends { options: readonly (infer O)[] } ? O : never;

/** The TypeScript type of an option's value, from its definition's `type`. */
type ValueOf<O> = O extends { type: Opt.String } ? string : O extends { type: Opt.Integer | Opt.Number } ? number : O extends { type: Opt.Boolean } ? boolean : never;

/**
 * The options of subcommand `N`, named and typed from the command definition: a required option is
 * its value, an optional one may be undefined. A misspelt option name does not compile.
 */
export type ArgsOf<N extends SubcommandName> = {
  [O in OptionDefinition<N> as O extends { name: infer K extends string } ? K : never]: O extends { required: true } ? ValueOf<O> : ValueOf<O> | undefined;
};

interface RuntimeOption {
  name: string;
  type: Opt;
  required?: boolean;
}

const EXPECTED: Partial<Record<Opt, { words: string; accepts: (value: unknown) => boolean }>> = {
  [Opt.String]: { words: 'text', accepts: (v) => typeof v === 'string' },
  [Opt.Integer]: { words: 'a whole number', accepts: (v) => typeof v === 'number' && Number.isSafeInteger(v) },
  [Opt.Number]: { words: 'a number', accepts: (v) => typeof v === 'number' && Number.isFinite(v) },
  [Opt.Boolean]: { words: 'true or false', accepts: (v) => typeof v === 'boolean' },
};

/** Own-property lookup of a subcommand's definition: `constructor` and friends are not subcommands. */
const definitions = new Map<string, readonly RuntimeOption[]>(
  sandboxCommand.options.map((sub) => [sub.name, (sub.options ?? []) as readonly RuntimeOption[]]),
);

export const isSubcommand = (name: string): name is SubcommandName => definitions.has(name);

/**
 * Reads and checks every option of subcommand `N` against its definition. Discord checks types for
 * real clients; a forged payload (a string `ttl_hours`, `hours: null`, a missing required option)
 * gets SANDBOX_008 naming the option.
 */
export function readArgs<N extends SubcommandName>(interaction: ChatInputCommandInteraction, subcommand: N): ArgsOf<N> {
  const args: Record<string, unknown> = {};
  for (const def of definitions.get(subcommand) ?? []) {
    const given = interaction.options.get(def.name, false);
    const expected = EXPECTED[def.type];
    if (!given || given.value === undefined) {
      if (def.required) throw invalidInput(`The option ${def.name} is required.`, { option: def.name });
      args[def.name] = undefined;
      continue;
    }
    if (!expected || given.type !== def.type || !expected.accepts(given.value)) {
      throw invalidInput(`The option ${def.name} must be ${expected?.words ?? 'of its declared type'}.`, { option: def.name });
    }
    args[def.name] = given.value;
  }
  return args as ArgsOf<N>;
}
