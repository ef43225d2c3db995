import type { Command } from 'commander';
import { CliError } from './errors.js';
import { DEFAULT_PATIENTS, optionalHttpUrl, optionalIntFlag } from './flags.js';
import { MAX_SYNTHETIC_PATIENTS } from '../worlds/synthetic.js';
import { EvalError } from '../eval/run.js';
import { DEDUPE_MODES, regradeRuns, type DedupeMode } from '../eval/grade.js';
import { formatCoverage } from '../eval/format.js';
import { openTaskSet, openBackend, checkApiBase, checkTaskSetWorld, officialGrader, worldOfTaskSet } from '../eval/setup.js';

interface GradeFlags {
  tasks: string;
  runs: string;
  fhirUrl?: string;
  apiBase?: string;
  world?: string;
  seed?: string;
  patients?: string;
  json?: boolean;
  dedupe?: string;
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
    .option('--world <name>', 'embedded world (default: the one the task set was made on; the replica for the official sets)')
    .option('--seed <n>', 'synthetic world: seed (default: recorded in the task set, else 1)')
    .option('--patients <n>', `synthetic world: number of patients, 1..${MAX_SYNTHETIC_PATIENTS} (default: recorded in the task set, else ${DEFAULT_PATIENTS})`)
    .option('--json', 'print verdicts and totals as JSON')
    .option('--dedupe <first|last>', 'a task index with several lines in the log: grade its first or last line (default: refuse)')
    .addHelpText(
      'after',
      `
Examples:
  ehrgym grade --runs runs/qwen3-8b/runs.jsonl
  ehrgym grade --runs path/to/agentbench/output/runs.jsonl --json      # a log of the official harness
  ehrgym grade --runs runs/oracle/runs.jsonl --fhir-url http://localhost:8080/fhir/        # against the official Docker server
  ehrgym grade --runs other.jsonl --tasks set.json --dedupe last       # a log with repeated task indices
`,
    )
    .action(async (f: GradeFlags) => {
      optionalHttpUrl('--fhir-url', f.fhirUrl);
      optionalHttpUrl('--api-base', f.apiBase);
      if (f.dedupe !== undefined && !(DEDUPE_MODES as readonly string[]).includes(f.dedupe)) {
        throw new CliError(`--dedupe must be one of ${DEDUPE_MODES.join(', ')}, got "${f.dedupe}"`);
      }
      try {
        const apiBase = checkApiBase(f.apiBase);
        const taskSet = openTaskSet(f.tasks);
        const seed = optionalIntFlag('--seed', f.seed, 0, 2 ** 32 - 1);
        const patients = optionalIntFlag('--patients', f.patients, 1, MAX_SYNTHETIC_PATIENTS);
        const world = f.fhirUrl === undefined ? worldOfTaskSet(taskSet, { world: f.world, seed, patients }) : {};
        const backend = await openBackend({ apiBase, fhirUrl: f.fhirUrl, ...world });
        let r;
        try {
          checkTaskSetWorld(taskSet, backend);
          r = await regradeRuns({
            taskSet,
            runsPath: f.runs,
            grade: officialGrader,
            ctx: { apiBase, fhir: backend.base, openSession: (name) => backend.openSession(name) },
            dedupe: f.dedupe as DedupeMode | undefined,
          });
        } finally {
          await backend.close();
        }
        const missingIds = r.missing.map((i) => taskSet.tasks[i].id);
        const coverage = formatCoverage(r.graded.length, r.total, missingIds);
        if (f.json) {
          if (missingIds.length > 0) process.stderr.write(`ehrgym: warning: ${coverage}\n`);
          process.stdout.write(
            JSON.stringify(
              {
                total: r.total,
                correct: r.correct,
                successRate: r.successRate,
                querySR: r.querySR,
                actionSR: r.actionSR,
                perFamily: r.perFamily,
                graded: r.graded.length,
                missing: missingIds,
                coverage: { graded: r.graded.length, total: r.total, missing: missingIds },
                ...(f.dedupe !== undefined ? { dedupe: f.dedupe, duplicates: r.duplicates.map((i) => taskSet.tasks[i].id) } : {}),
                ...(r.trialStats ? { trialStats: r.trialStats } : {}),
                tasks: r.graded.map((g) => ({
                  index: g.index,
                  ...(g.trial !== undefined ? { trial: g.trial } : {}),
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
          const id = g.trial !== undefined ? `${g.id}#${g.trial}` : g.id;
          out.push(`${id.padEnd(9)} ${g.status.padEnd(22)} ${g.correct ? 'Correct' : 'Incorrect'}${why ? `  (${why})` : ''}`);
        }
        if (r.duplicates.length > 0) {
          out.push(
            `${r.duplicates.length} task(s) with several lines in the log, ${f.dedupe} line graded: ${r.duplicates.map((i) => taskSet.tasks[i].id).join(', ')}`,
          );
        }
        out.push(coverage);
        out.push(
          `per family: ${Object.entries(r.perFamily)
            .map(([k, v]) => `${k} ${v.correct}/${v.total}`)
            .join(', ')}`,
        );
        out.push(`total: ${r.correct}/${r.total} = ${pct(r.successRate)} (query ${pct(r.querySR)}, action ${pct(r.actionSR)})`);
        const t = r.trialStats;
        if (t) {
          const ks = Object.keys(t.passAtK);
          out.push(
            `trials: ${t.trials} per task; pass@k ${ks.map((k) => `k=${k} ${pct(t.passAtK[k])}`).join(', ')}; pass^k ${ks.map((k) => `k=${k} ${pct(t.passHatK[k])}`).join(', ')}; consistent tasks ${pct(t.consistency)}`,
          );
        }
        process.stdout.write(out.join('\n') + '\n');
      } catch (err) {
        if (err instanceof EvalError) throw new CliError(err.message, /--fhir-url/.test(err.message) ? 3 : 2);
        throw err;
      }
    });
}
