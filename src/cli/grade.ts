import type { Command } from 'commander';
import { CliError } from './errors.js';
import { optionalHttpUrl } from './flags.js';
import { EvalError } from '../eval/run.js';
import { regradeRuns } from '../eval/grade.js';
import { openTaskSet, openBackend, checkApiBase, officialGrader } from '../eval/setup.js';

interface GradeFlags {
  tasks: string;
  runs: string;
  fhirUrl?: string;
  apiBase?: string;
  world: string;
  json?: boolean;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

export function register(program: Command): void {
  program
    .command('grade')
    .description("re-grade an AgentBench-format runs.jsonl (ours or the official harness's) with the official grader")
    .requiredOption('--runs <runs.jsonl>', 'the log to grade')
    .option('--tasks <name|file>', 'task set the log was run on', 'medagentbench-v2')
    .option('--fhir-url <url>', 'grade against an external FHIR server instead of the embedded world')
    .option('--api-base <url>', 'api_base the run advertised (default http://localhost:8080/fhir/)')
    .option('--world <name>', 'embedded world', 'medagentbench')
    .option('--json', 'print verdicts and totals as JSON')
    .addHelpText(
      'after',
      `
Examples:
  ehrgym grade --runs runs/qwen3-8b/runs.jsonl
  ehrgym grade --runs path/to/agentbench/output/runs.jsonl --json      # a log of the official harness
  ehrgym grade --runs runs/oracle/runs.jsonl --fhir-url http://localhost:8080/fhir/        # against the official Docker server
`,
    )
    .action(async (f: GradeFlags) => {
      optionalHttpUrl('--fhir-url', f.fhirUrl);
      optionalHttpUrl('--api-base', f.apiBase);
      try {
        const apiBase = checkApiBase(f.apiBase);
        const taskSet = openTaskSet(f.tasks);
        const backend = await openBackend({ apiBase, fhirUrl: f.fhirUrl, world: f.world });
        const r = await regradeRuns({ taskSet, runsPath: f.runs, grade: officialGrader, ctx: { apiBase, fhir: backend.base } });
        await backend.close();
        if (f.json) {
          process.stdout.write(
            JSON.stringify(
              {
                total: r.total,
                correct: r.correct,
                successRate: r.successRate,
                querySR: r.querySR,
                actionSR: r.actionSR,
                perFamily: r.perFamily,
                missing: r.missing.map((i) => taskSet.tasks[i].id),
                tasks: r.graded.map((g) => ({
                  index: g.index,
                  id: g.id,
                  status: g.status,
                  correct: g.correct,
                  branch: g.grade.branch,
                  exception: g.grade.exception,
                })),
              },
              null,
              2,
            ) + '\n',
          );
          return;
        }
        const out: string[] = [];
        for (const g of r.graded) {
          const why = g.correct
            ? ''
            : (g.grade.exception ??
              g.grade.checks
                .filter((c) => !c.pass)
                .map((c) => c.name)
                .join(', '));
          out.push(`${g.id.padEnd(9)} ${g.status.padEnd(22)} ${g.correct ? 'Correct' : 'Incorrect'}${why ? `  (${why})` : ''}`);
        }
        if (r.missing.length > 0) out.push(`missing from the log (incorrect): ${r.missing.map((i) => taskSet.tasks[i].id).join(', ')}`);
        out.push(
          `per family: ${Object.entries(r.perFamily)
            .map(([k, v]) => `${k} ${v.correct}/${v.total}`)
            .join(', ')}`,
        );
        out.push(`total: ${r.correct}/${r.total} = ${pct(r.successRate)} (query ${pct(r.querySR)}, action ${pct(r.actionSR)})`);
        process.stdout.write(out.join('\n') + '\n');
      } catch (err) {
        if (err instanceof EvalError) throw new CliError(err.message, /--fhir-url/.test(err.message) ? 3 : 2);
        throw err;
      }
    });
}
