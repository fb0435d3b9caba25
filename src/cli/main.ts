import { runCli } from './program.ts';

process.on('unhandledRejection', (err) => {
  process.stderr.write(`error SANDBOX_012: unexpected failure: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});

const code = await runCli(process.argv.slice(2));
process.exitCode = code;
