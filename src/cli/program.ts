import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type pg from 'pg';
import { PROJECT_ROOT } from '../paths.ts';
import { ErrorCode, SandboxError, toSandboxError } from '../sandbox/errors.ts';
import { DEFAULT_SERVER } from '../sandbox/servers.ts';
import { validateStatus } from '../sandbox/validation.ts';
import { openCliContext, type CliContext } from './context.ts';
import { extendedText, healthText, sandboxJson, sandboxText, table } from './format.ts';
import { exportLines } from './shell.ts';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

const stdio: CliIo = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
};

/** Parses a whole number, leaving range checks to the domain (which gives the helpful message). Commander names the option. */
const wholeNumber = (value: string): number => {
  if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError('Expected a whole number.');
  return Number(value);
};

/** The package version for `--version`. */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(resolve(PROJECT_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/**
 * Every CLI error, ours or commander's, in one format: `error SANDBOX_0xx: message` on one line,
 * or with `--json` the object `{"error":{"code":…,"message":…}}`.
 */
export function formatCliError(err: unknown, json: boolean): string {
  let code: string;
  let message: string;
  if (err instanceof CommanderError) {
    code = ErrorCode.InvalidInput;
    const said = err.message.replace(/^error:\s*/i, '').split('\n').map((l) => l.trim()).filter(Boolean).join(' ').replace('(Did you mean', '(did you mean');
    message = `${/[.?!]$/.test(said) ? said : `${said}.`} Run sandbox --help for usage.`;
  } else {
    const e = toSandboxError(err);
    code = e.code;
    message = e.message;
    if (e.code === ErrorCode.Internal || e.code === ErrorCode.Unavailable) {
      const cause = (e.cause as Error | undefined)?.message ?? '';
      const last = cause.split('\n').filter(Boolean).pop()?.trim().slice(0, 300);
      if (last && last !== message) message = `${message} (${last})`;
    }
  }
  message = message.replace(/\s*\n\s*/g, ' ');
  return json ? JSON.stringify({ error: { code, message } }) : `error ${code}: ${message}`;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

type Action = (ctx: CliContext, io: CliIo) => Promise<void>;

/** Builds the CLI. `run` wraps each action: open context, act, close, map errors to one line. */
export function buildProgram(
  io: CliIo = stdio,
  open: typeof openCliContext = openCliContext,
  settings: { json?: boolean } = {},
): { program: Command; exitCode: () => number } {
  let exitCode = 0;
  const run = (action: Action, opts: { migrate?: boolean } = {}) => async () => {
    let ctx: CliContext | undefined;
    try {
      ctx = await open(opts);
      await action(ctx, io);
    } catch (err) {
      io.err(formatCliError(err, settings.json ?? false));
      exitCode = 1;
    } finally {
      await ctx?.close().catch(() => undefined);
    }
  };

  const program = new Command('sandbox')
    .description('Operate Discord Server Sandboxes: isolated PostgreSQL schemas mapped to test guilds.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    // Commander's own error text is not printed: runCli prints it in the one error format.
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()), outputError: () => undefined });

  const json = new Option('--json', 'print machine-readable JSON');

  program
    .command('create')
    .description('create a sandbox (default name: sandbox-<owner>-<random>)')
    .argument('[name]', 'sandbox name: 3-64 characters of a-z, 0-9 and -')
    .option('--owner <id>', 'Discord user id or cli:<name> (default: cli:<your OS user>)')
    .option('--ttl <hours>', 'time to live in whole hours (max 168; larger values are capped)', wholeNumber)
    .option('--guild <id>', 'guild to register (repeatable)', collect, [])
    .option('--empty', "build the template's tables without its seed rows")
    .addOption(json)
    .action((name: string | undefined, o: { owner?: string; ttl?: number; guild: string[]; empty?: boolean; json?: boolean }) =>
      run(async ({ manager, actor }) => {
        const r = await manager.create({ name, owner: o.owner, ttlHours: o.ttl, guildIds: o.guild, empty: o.empty === true }, actor);
        if (o.json) {
          io.out(JSON.stringify({ ...sandboxJson(r.sandbox), notices: r.notices, claimedGuildIds: r.claimedGuildIds }, null, 2));
          return;
        }
        io.out(sandboxText(r.sandbox, manager.now()));
        for (const n of r.notices) io.out(`note: ${n}`);
        for (const g of r.claimedGuildIds) io.out(`note: the bot is not in guild ${g} yet; it will be mapped when the bot joins it.`);
      })(),
    );

  program
    .command('list')
    .description('list sandboxes of every owner (live ones unless --all)')
    .option('--owner <id>', 'only this owner')
    .option('--status <status>', 'only this status')
    .option('--all', 'include destroyed sandboxes')
    .addOption(json)
    .action((o: { owner?: string; status?: string; all?: boolean; json?: boolean }) =>
      run(async ({ manager, actor }) => {
        const status = o.status === undefined ? undefined : validateStatus(o.status);
        const rows = await manager.list({ owner: o.owner, status, includeDestroyed: o.all ?? false }, actor);
        io.out(o.json ? JSON.stringify(rows.map(sandboxJson), null, 2) : table(rows, manager.now(), manager.servers.several));
      })(),
    );

  program
    .command('status')
    .description('show a sandbox and its health (schema, tables, guilds, TTL, redis)')
    .argument('<sandbox>', 'name or id')
    .addOption(json)
    .action((ref: string, o: { json?: boolean }) =>
      run(async ({ manager, actor }) => {
        const { sandbox, health } = await manager.getStatus(ref, actor);
        if (o.json) {
          io.out(JSON.stringify({ ...sandboxJson(sandbox), health: { ...health, checkedAt: health.checkedAt.toISOString() } }, null, 2));
          return;
        }
        // A destroyed sandbox has no health to speak of; its text already says when it was destroyed.
        io.out(sandbox.status === 'destroyed' ? sandboxText(sandbox, manager.now()) : `${sandboxText(sandbox, manager.now())}\n${healthText(health)}`);
      })(),
    );

  program
    .command('extend')
    .description('extend the TTL (revives an expired sandbox)')
    .argument('<sandbox>', 'name or id')
    .requiredOption('--hours <n>', 'hours to add, 1-168', wholeNumber)
    .addOption(json)
    .action((ref: string, o: { hours: number; json?: boolean }) =>
      run(async ({ manager, actor }) => {
        const r = await manager.extendTtl(ref, o.hours, actor);
        if (o.json) {
          io.out(JSON.stringify({ ...sandboxJson(r.sandbox), notices: r.notices }, null, 2));
          return;
        }
        io.out(extendedText(r.sandbox, manager.now()));
        for (const n of r.notices) io.out(`note: ${n}`);
      })(),
    );

  program
    .command('destroy')
    .description('destroy a sandbox: drop its schema and unmap its guilds')
    .argument('<sandbox>', 'name or id')
    .option('--yes', 'confirm the destruction')
    .addOption(json)
    .action((ref: string, o: { yes?: boolean; json?: boolean }) =>
      run(async ({ manager, actor }) => {
        if (!o.yes) throw new SandboxError(ErrorCode.InvalidInput, `Refusing to destroy ${ref} without --yes.`);
        const s = await manager.destroy(ref, actor);
        io.out(o.json ? JSON.stringify(sandboxJson(s), null, 2) : `Destroyed ${s.name} (${s.id}).`);
      })(),
    );

  program
    .command('reset')
    .description("put a sandbox back to the template: structure and seed rows (one transaction); purges its event stream and Redis keys")
    .argument('<sandbox>', 'name or id')
    .option('--yes', 'confirm the reset (all its data is replaced)')
    .addOption(json)
    .action((ref: string, o: { yes?: boolean; json?: boolean }) =>
      run(async ({ manager, actor }) => {
        if (!o.yes) throw new SandboxError(ErrorCode.InvalidInput, `Refusing to reset ${ref} without --yes.`);
        const r = await manager.reset(ref, actor);
        if (o.json) {
          io.out(JSON.stringify({ ...sandboxJson(r.sandbox), purgeFailed: r.purgeFailed }, null, 2));
          return;
        }
        io.out(`Reset ${r.sandbox.name} to template version ${r.sandbox.templateVersion ?? '?'}.`);
        for (const k of r.purgeFailed) io.out(`note: the ${k} could not be emptied; the schema was reset.`);
      })(),
    );

  program
    .command('clone')
    .description("create a sandbox, owned by you, that copies another sandbox's tables and rows")
    .argument('<source>', 'name or id of the sandbox to copy')
    .argument('[name]', 'name of the new sandbox (default: sandbox-<owner>-<random>)')
    .addOption(json)
    .action((source: string, name: string | undefined, o: { json?: boolean }) =>
      run(async ({ manager, actor }) => {
        const r = await manager.clone(source, name, actor);
        if (o.json) {
          io.out(JSON.stringify({ ...sandboxJson(r.sandbox), notices: r.notices }, null, 2));
          return;
        }
        io.out(sandboxText(r.sandbox, manager.now()));
      })(),
    );

  program
    .command('upgrade')
    .description('apply the template files a sandbox is missing (its data is kept)')
    .argument('<sandbox>', 'name or id')
    .addOption(json)
    .action((ref: string, o: { json?: boolean }) =>
      run(async ({ manager, actor }) => {
        const r = await manager.upgrade(ref, actor);
        if (o.json) {
          io.out(JSON.stringify({ ...sandboxJson(r.sandbox), applied: r.applied }, null, 2));
          return;
        }
        io.out(r.applied.length ? `Upgraded ${r.sandbox.name}: ${r.applied.join(', ')} (now ${r.sandbox.templateVersion}).` : `${r.sandbox.name} is up to date (${r.sandbox.templateVersion ?? 'initial'}).`);
      })(),
    );

  program
    .command('register-guild')
    .description('map a guild to a sandbox (a pending claim if the bot has not joined it yet)')
    .argument('<sandbox>', 'name or id')
    .argument('<guildId>', 'Discord guild id')
    .addOption(json)
    .action((ref: string, guildId: string, o: { json?: boolean }) =>
      run(async ({ manager, actor }) => {
        const r = await manager.registerGuild(ref, guildId, actor);
        if (o.json) {
          io.out(JSON.stringify({ ...sandboxJson(r.sandbox), outcome: r.outcome }, null, 2));
          return;
        }
        const says = {
          mapped: `Guild ${guildId} is now mapped to ${r.sandbox.name}.`,
          'already-mapped': `Guild ${guildId} was already mapped to ${r.sandbox.name}.`,
          claimed: `The bot is not in guild ${guildId} yet; recorded a claim. It will be mapped to ${r.sandbox.name} when the bot joins.`,
        } as const;
        io.out(says[r.outcome]);
      })(),
    );

  program
    .command('unregister-guild')
    .description('remove a guild mapping (or pending claim) from a sandbox; with only a guild id, release whatever holds that guild')
    .argument('<sandboxOrGuild>', 'sandbox name or id, followed by the guild id; or the guild id alone')
    .argument('[guildId]', 'Discord guild id')
    .addOption(json)
    .action((first: string, second: string | undefined, o: { json?: boolean }) =>
      run(async ({ manager, actor }) => {
        if (second === undefined) {
          const released = await manager.releaseGuild(first, actor);
          if (o.json) return io.out(JSON.stringify(released, null, 2));
          io.out(released.map((r) => `Guild ${first}: ${r.kind === 'mapping' ? 'mapping to' : 'claim by'} ${r.name} removed.`).join('\n'));
          return;
        }
        const s = await manager.unregisterGuild(first, second, actor);
        io.out(o.json ? JSON.stringify(sandboxJson(s), null, 2) : `Guild ${second} is no longer mapped to ${s.name}.`);
      })(),
    );

  program
    .command('env')
    .description('print export lines for the sandbox, safe to eval: eval "$(sandbox env NAME)"')
    .argument('<sandbox>', 'name or id')
    .addOption(json)
    .action((ref: string, o: { json?: boolean }) =>
      run(async ({ manager, actor }) => {
        const env = await manager.getConnectionDetails(ref, actor);
        io.out(o.json ? JSON.stringify(env, null, 2) : exportLines(env));
      })(),
    );

  program
    .command('migrate')
    .description('apply pending database migrations')
    .addOption(json)
    .action((o: { json?: boolean }) =>
      run(
        async (ctx) => {
          const { migrate } = await import('../db/migrator.ts');
          const r = await migrate(ctx.db.pool, ctx.logger);
          // Several servers: the same migrations (the management functions, the template) on each.
          const others = await eachServer(ctx, (pool) => migrate(pool, ctx.logger));
          if (o.json) io.out(JSON.stringify(others.length ? { ...r, servers: Object.fromEntries(others.map((x) => [x.server, x.result])) } : r, null, 2));
          else {
            io.out(r.applied.length ? `Applied: ${r.applied.join(', ')}` : 'Database is up to date.');
            for (const x of others) io.out(`${x.server}: ${x.result.applied.length ? `applied ${x.result.applied.join(', ')}` : 'up to date'}`);
          }
        },
        { migrate: false },
      )(),
    );

  program
    .command('sweep')
    .description('run one sweeper pass: expire, destroy after grace, reconcile stuck rows, repair drift')
    .addOption(json)
    .action((o: { json?: boolean }) =>
      run(async (ctx) => {
        const { runSweepOnce, formatSweepSummary } = await import('../jobs/sweep-command.ts');
        const summary = await runSweepOnce({ manager: ctx.manager, logger: ctx.logger, config: ctx.config });
        io.out(o.json ? JSON.stringify(summary, null, 2) : formatSweepSummary(summary));
      })(),
    );

  // --- enforced isolation ---
  program
    .command('rotate-credentials')
    .description('after SANDBOX_CREDENTIAL_SECRET changed: re-key every live sandbox\'s PostgreSQL role and Redis ACL user')
    .addOption(json)
    .action((o: { json?: boolean }) =>
      run(async ({ manager, actor, config }) => {
        if (!config.isolation.enabled) {
          throw new SandboxError(ErrorCode.InvalidInput, 'Sandbox isolation is off (no DATABASE_URL, or SANDBOX_ISOLATION=off): there are no credentials to rotate.');
        }
        const r = await manager.rotateCredentials(actor);
        if (o.json) io.out(JSON.stringify(r, null, 2));
        else {
          io.out(`Re-keyed ${r.rotated} sandbox(es) with the current SANDBOX_CREDENTIAL_SECRET.`);
          for (const f of r.failed) io.out(`FAILED ${f.sandboxId}: ${f.error}`);
        }
        if (r.failed.length) throw new SandboxError(ErrorCode.CleanupFailed, `${r.failed.length} sandbox(es) were not re-keyed; run rotate-credentials again.`);
      })(),
    );

  // --- event routing (NATS) ---
  program
    .command('route')
    .description('run the external router: raw dispatches from ROUTER_INGEST_SUBJECT to sandbox and production subjects')
    .action(() =>
      run(async (ctx) => {
        const { runRouteCommand } = await import('../routing/commands.ts');
        await runRouteCommand(ctx, io.out);
      })(),
    );

  program
    .command('events')
    .description("print a sandbox's stored events (or production's), one JSON line each")
    .argument('[sandbox]', 'name or id')
    .option('--follow', 'keep printing new events')
    .option('--production', 'read the production stream instead')
    .action((ref: string | undefined, o: { follow?: boolean; production?: boolean }) =>
      run(async (ctx) => {
        const { runEventsCommand } = await import('../routing/commands.ts');
        await runEventsCommand(ctx, ref, o, io.out);
      })(),
    );
  // --- end event routing ---

  // Templates: the schema new sandboxes are built from.
  const template = program.command('template').description('manage the template schema new sandboxes are built from');
  template
    .command('apply')
    .description("apply a directory's *.sql files, in name order, to the template schema (each once; a changed file is an error)")
    .argument('<dir>', 'directory of template migration files (*.sql)')
    .option('--template <schema>', 'template schema (default: SANDBOX_TEMPLATE_SCHEMA or sandbox_template)')
    .addOption(json)
    .action((dir: string, o: { template?: string; json?: boolean }) =>
      run(async (ctx) => {
        const { resolve } = await import('node:path');
        const { applyTemplateDir } = await import('../sandbox/store/template/apply.ts');
        const apply = (pool: Parameters<typeof applyTemplateDir>[0]) => applyTemplateDir(pool, resolve(dir), { template: o.template ?? ctx.config.templateSchema, logger: ctx.logger });
        const r = await apply(ctx.db.pool);
        // Several servers: every server builds sandboxes from its own copy of the template.
        const others = await eachServer(ctx, apply);
        if (o.json) {
          io.out(JSON.stringify(others.length ? { ...r, servers: Object.fromEntries(others.map((x) => [x.server, x.result])) } : r, null, 2));
          return;
        }
        io.out(r.applied.length ? `Applied to ${r.template}: ${r.applied.join(', ')}` : `Template ${r.template} is up to date.`);
        io.out(`Template version: ${r.version}`);
        for (const x of others) io.out(`${x.server}: ${x.result.applied.length ? `applied ${x.result.applied.join(', ')}` : 'up to date'} (version ${x.result.version})`);
      })(),
    );

  return { program, exitCode: () => exitCode };
}

/**
 * Runs `fn` on every server of SANDBOX_DATABASE_SERVERS (not `default`), in order. A server that
 * fails stops the command with SANDBOX_011 naming it (re-running is safe: both steps are idempotent).
 */
async function eachServer<T>(ctx: CliContext, fn: (pool: pg.Pool) => Promise<T>): Promise<{ server: string; result: T }[]> {
  const out: { server: string; result: T }[] = [];
  for (const name of ctx.manager.servers.names()) {
    const pool = name === DEFAULT_SERVER ? undefined : ctx.manager.servers.handle(name).pool;
    if (pool) out.push({ server: name, result: await ctx.manager.servers.guard(name, () => fn(pool)) });
  }
  return out;
}

/** Entry point: parses argv, runs the command, and returns the process exit code. */
export async function runCli(argv: string[], io: CliIo = stdio, open?: typeof openCliContext): Promise<number> {
  const json = argv.includes('--json');
  const { program, exitCode } = buildProgram(io, open, { json });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError && (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')) {
      return 0;
    }
    io.err(formatCliError(err, json));
    return 1;
  }
  return exitCode();
}
