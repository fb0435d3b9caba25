import type { SubcommandName } from './definition.ts';
import type { CommandHandler } from './context.ts';
import { connect } from './connect.ts';
import { create } from './create.ts';
import { clone } from './clone.ts';
import { destroy } from './destroy.ts';
import { extend } from './extend.ts';
import { list } from './list.ts';
import { registerGuild } from './register-guild.ts';
import { reset } from './reset.ts';
import { status } from './status.ts';
import { unregisterGuild } from './unregister-guild.ts';

/** Subcommand name → handler. Typed against the definition, so neither can drift. */
const handlerTable: Record<SubcommandName, CommandHandler> = {
  create,
  'register-guild': registerGuild,
  'unregister-guild': unregisterGuild,
  list,
  status,
  extend,
  destroy,
  reset,
  clone,
  connect,
};

/** Own properties only, in a Map: a forged `constructor` or `toString` is no subcommand. */
const handlers = new Map<string, CommandHandler>(Object.entries(handlerTable));

/** The handler of a subcommand the definition declares, or undefined. */
export const handlerFor = (subcommand: string): CommandHandler | undefined => handlers.get(subcommand);
