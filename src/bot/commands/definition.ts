import {
  ApplicationCommandOptionType as Opt,
  ApplicationCommandType,
  ApplicationIntegrationType,
  InteractionContextType,
  PermissionFlagsBits,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';

/** Every `<sandbox>` option: a name or id, autocompleted from the invoker's sandboxes. */
const sandboxOption = {
  type: Opt.String,
  name: 'sandbox',
  description: 'Sandbox name or id',
  required: true,
  autocomplete: true,
  max_length: 64,
} as const;

const guildIdOption = {
  type: Opt.String,
  name: 'guild_id',
  description: 'Server id (defaults to this server)',
  required: false,
  min_length: 17,
  max_length: 20,
} as const;

/** The one `/sandbox` command, as plain data. Handlers live next to this file, one per subcommand. */
export const sandboxCommand = {
  type: ApplicationCommandType.ChatInput,
  name: 'sandbox',
  description: 'Create and manage isolated database sandboxes for this server',
  // Only a default that server admins may override; the manager checks authorization every time.
  default_member_permissions: PermissionFlagsBits.ManageGuild.toString(),
  dm_permission: false,
  contexts: [InteractionContextType.Guild],
  integration_types: [ApplicationIntegrationType.GuildInstall],
  options: [
    {
      type: Opt.Subcommand,
      name: 'create',
      description: 'Create a sandbox owned by you',
      options: [
        { type: Opt.String, name: 'name', description: '3-64 characters of a-z, 0-9 and -', required: false, max_length: 64 },
        { type: Opt.Integer, name: 'ttl_hours', description: 'Hours until it expires (default 24, at most 168)', required: false, min_value: 1 },
        { type: Opt.Boolean, name: 'register_this_guild', description: 'Register this server to the sandbox (default true)', required: false },
      ],
    },
    {
      type: Opt.Subcommand,
      name: 'register-guild',
      description: 'Register a server to a sandbox (you need Manage Server there)',
      options: [sandboxOption, guildIdOption],
    },
    {
      type: Opt.Subcommand,
      name: 'unregister-guild',
      description: 'Unregister a server (without a sandbox: whatever holds it; Manage Server holders may release any)',
      options: [{ ...sandboxOption, required: false, description: 'Sandbox name or id (default: whichever holds the server)' }, guildIdOption],
    },
    {
      type: Opt.Subcommand,
      name: 'list',
      description: 'List your sandboxes',
      options: [{ type: Opt.Boolean, name: 'all', description: 'Everyone’s sandboxes (bot admins only)', required: false }],
    },
    {
      type: Opt.Subcommand,
      name: 'status',
      description: 'Health, table row counts and time left of a sandbox',
      options: [sandboxOption],
    },
    {
      type: Opt.Subcommand,
      name: 'extend',
      description: 'Extend the time to live of a sandbox',
      options: [sandboxOption, { type: Opt.Integer, name: 'hours', description: 'Hours to add (1-168)', required: true, min_value: 1, max_value: 168 }],
    },
    {
      type: Opt.Subcommand,
      name: 'destroy',
      description: 'Destroy a sandbox and its data (asks for confirmation)',
      options: [sandboxOption],
    },
    {
      type: Opt.Subcommand,
      name: 'reset',
      description: 'Put a sandbox back to its template: tables and seed rows (asks for confirmation)',
      options: [sandboxOption],
    },
    {
      type: Opt.Subcommand,
      name: 'clone',
      description: 'Create a sandbox owned by you that copies another one’s tables and rows',
      options: [
        { ...sandboxOption, description: 'Sandbox to copy (name or id)' },
        { type: Opt.String, name: 'name', description: 'Name of the copy: 3-64 characters of a-z, 0-9 and -', required: false, max_length: 64 },
      ],
    },
    {
      type: Opt.Subcommand,
      name: 'connect',
      description: 'Show the environment variables for code running against a sandbox',
      options: [sandboxOption],
    },
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

/** Everything the bot registers. */
export const commandDefinitions = [sandboxCommand] as const;

export type SubcommandName = (typeof sandboxCommand.options)[number]['name'];
