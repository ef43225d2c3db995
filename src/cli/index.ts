#!/usr/bin/env node
/**
 * ehrgym command line. Commands live one per file in this folder and export `register(program)`;
 * they only parse flags and call the modules below (fhir, worlds, tasks, agent, eval, factory, report).
 */
import { Command, CommanderError } from 'commander';
import { CliError } from './errors.js';
import { VERSION } from '../version.js';
// --- command registrations (one import + one line in `commands` per command) ---
import { register as registerReport } from './report.js';
import { register as registerView } from './view.js';
import { register as registerServe } from './serve.js';
import { register as registerEval } from './eval.js';
import { register as registerGrade } from './grade.js';
import { register as registerTasks } from './tasks.js';
import { register as registerGenerate } from './generate.js';
import { register as registerExport } from './export.js';
import { register as registerTrainConfig } from './train-config.js';
import { register as registerVerify } from './verify.js';
const commands: Array<(program: Command) => void> = [
  registerGenerate,
  registerExport,
  registerTrainConfig,
  registerVerify,
  registerEval,
  registerGrade,
  registerReport,
  registerView,
  registerServe,
  registerTasks,
];

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('ehrgym')
    .description('MedAgentBench-compatible EHR sandbox, harness, grader and SFT data factory')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help / version are "errors" with exit code 0 under exitOverride
      return err.exitCode;
    }
    if (err instanceof CliError) {
      process.stderr.write(`ehrgym: ${err.message}\n`);
      return err.exitCode;
    }
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`ehrgym: unexpected error: ${msg.split('\n')[0]}\n`);
    return 1;
  }
}

const isEntry = process.argv[1] && /(?:^|[\\/])(?:index\.(?:js|ts)|ehrgym)$/.test(process.argv[1]);
if (isEntry) {
  main().then((code) => {
    process.exitCode = code;
  });
}
