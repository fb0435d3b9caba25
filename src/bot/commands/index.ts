import type { SubcommandName } from './definition.ts';
import type { CommandHandler } from './context.ts';
import { connect } from './connect.ts';
import { create } from './create.ts';
import { destroy } from './destroy.ts';
import { extend } from './extend.ts';
import { list } from './list.ts';
import { registerGuild } from './register-guild.ts';
import { status } from './status.ts';
import { unregisterGuild } from './unregister-guild.ts';

/** Subcommand name → handler. Typed against the definition, so neither can drift. */
export const handlers: Record<SubcommandName, CommandHandler> = {
  create,
  'register-guild': registerGuild,
  'unregister-guild': unregisterGuild,
  list,
  status,
  extend,
  destroy,
  connect,
};
