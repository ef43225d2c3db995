/**
 * Runs the `ehrgym tasks` command alone (as src/cli/index.ts registers it) with the entry point's error convention:
 * `node --import tsx test/helpers/tasks-cli-runner.ts tasks <args>`.
 */
import { Command, CommanderError } from 'commander';
import { register } from '../../src/cli/tasks.js';
import { CliError } from '../../src/cli/errors.js';

async function main(): Promise<number> {
  const program = new Command().name('ehrgym').exitOverride();
  register(program);
  try {
    await program.parseAsync(process.argv);
    return 0;
  } catch (e) {
    if (e instanceof CliError) {
      process.stderr.write(`ehrgym: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof CommanderError) return e.exitCode;
    process.stderr.write(`ehrgym: unexpected error: ${(e as Error).message}\n`);
    return 1;
  }
}

main().then((code) => {
  process.exitCode = code;
});
