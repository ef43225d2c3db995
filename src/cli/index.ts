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
import { register as registerAudit } from './audit.js';
import { register as registerGrade } from './grade.js';
import { register as registerTasks } from './tasks.js';
import { register as registerGenerate } from './generate.js';
import { register as registerExport } from './export.js';
import { register as registerTrainConfig } from './train-config.js';
import { register as registerVerify } from './verify.js';
import { register as registerDemo } from './demo.js';
import { register as registerEnv } from './env.js';
import { register as registerMerge } from './merge.js';
const commands: Array<(program: Command) => void> = [
  registerDemo,
  registerGenerate,
  registerExport,
  registerTrainConfig,
  registerVerify,
  registerEval,
  registerAudit,
  registerGrade,
  registerMerge,
  registerReport,
  registerView,
  registerServe,
  registerEnv,
  registerTasks,
];

const QUICK_START = `
Quick start:
  npx ehrgym demo                                  # offline tour in about a minute: evals, SFT corpus, report.html
  npx ehrgym eval --agent oracle --out runs/oracle # evaluate an agent on MedAgentBench (300 tasks)
  npx ehrgym eval --agent openai:Qwen/Qwen3-8B --base-url http://127.0.0.1:8000/v1 --out runs/qwen3-8b
  npx ehrgym report runs/oracle runs/qwen3-8b --out out/report
  npx ehrgym serve                                 # the MedAgentBench replica at http://127.0.0.1:8080/fhir/

Run \`ehrgym <command> --help\` for a command's flags and examples. Errors print \`ehrgym: <message>\` on stderr;
exit codes: 0 ok, 1 operation failed, 2 bad input (flag or file), 3 external service unreachable.
`;

/** Commander's own error text (`error: unknown option '--x'\n(Did you mean --y?)`) as one `ehrgym: ` line. */
export function formatCommanderError(text: string): string {
  const msg = text
    .replace(/^error: /, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
  return `ehrgym: ${msg}\n`;
}

/**
 * Required options are checked in a preAction hook instead of by commander's parser, which reports a missing
 * required option before an unknown one: `eval --agnet oracle` must name the misspelt `--agnet`, not `--agent`.
 */
function deferRequiredOptions(program: Command): void {
  const walk = (cmd: Command): void => {
    const required = cmd.options.filter((o) => o.mandatory);
    for (const o of required) o.makeOptionMandatory(false);
    if (required.length > 0) {
      cmd.hook('preAction', (c) => {
        for (const o of required) {
          if (c.getOptionValue(o.attributeName()) === undefined) {
            c.error(`required option '${o.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue', exitCode: 2 });
          }
        }
      });
    }
    for (const sub of cmd.commands) walk(sub);
  };
  walk(program);
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('ehrgym')
    .description('MedAgentBench-compatible EHR sandbox, harness, grader and SFT data factory')
    .version(VERSION)
    .configureOutput({ outputError: (text, write) => write(formatCommanderError(text)) })
    .showSuggestionAfterError(true)
    .exitOverride()
    .addHelpText('after', QUICK_START);
  for (const register of commands) register(program);
  deferRequiredOptions(program);
  return program;
}

/** Commander's non-error exits (help asked for, version). */
const COMMANDER_OK = new Set(['commander.helpDisplayed', 'commander.version']);

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help / version are "errors" with exit code 0 under exitOverride; every parse error is bad usage (2), and
      // so is a command group run without its subcommand (`ehrgym tasks` prints the group's help on stderr)
      return COMMANDER_OK.has(err.code) || err.exitCode === 0 ? 0 : 2;
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
  // A reader that closes early (`ehrgym tasks list | head`) ends the output, not the process with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      process.exit(process.exitCode ?? 0);
    });
  }
  main().then((code) => {
    process.exitCode = code;
  });
}
