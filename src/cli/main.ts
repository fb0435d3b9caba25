import { formatCliError, runCli } from './program.ts';

const argv = process.argv.slice(2);

process.on('unhandledRejection', (err) => {
  process.stderr.write(`${formatCliError(err, argv.includes('--json'))}\n`);
  process.exit(1);
});

const code = await runCli(argv);
process.exitCode = code;
