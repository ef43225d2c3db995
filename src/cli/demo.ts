/**
 * `ehrgym demo [--out DIR] [--force] [--json]`
 *
 * The whole toolkit offline in about a minute, through the same code the other commands run: the MedAgentBench
 * replica loaded in-process; three agents evaluated on the 300 official tasks with the official harness and grader
 * (`oracle`, `finish-empty`, and a recorded real-model run replayed from data/third-party/); a small verified SFT
 * corpus generated and exported for TRL; report.html comparing the runs. Prints where everything is and the command
 * that evaluates a real model.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CliError, fromFactoryError } from './errors.js';
import { isEmptyOrMissing, outputPath } from './flags.js';
import { createAgent } from '../agent/create.js';
import { ReplayAgent, type RecordedEpisode } from '../agent/backends/scripted.js';
import type { Agent } from '../agent/types.js';
import { OFFICIAL_API_BASE } from '../fhir/types.js';
import { runEval, EvalError, type TaskSet } from '../eval/run.js';
import { openBackend, openTaskSet, officialGrader } from '../eval/setup.js';
import type { GradedTask } from '../eval/types.js';
import { defaultParams, generateCorpus } from '../factory/generate.js';
import { realDeps } from '../factory/deps.js';
import { exportCorpus } from '../factory/io.js';
import { buildReport, writeReport } from '../report/index.js';

/** The recorded real-model run shipped with the package (MIT; provenance in its README.md). */
export const RECORDED_DIR = fileURLToPath(new URL('../../data/third-party/u9401066-medagent-copilot/', import.meta.url));
/** How the recorded run is named in run manifests (relative, so the manifest is the same on every machine). */
export const RECORDED_NAME = 'data/third-party/u9401066-medagent-copilot/v2_agent_results.json';

/** The files the demo writes below `--out` (and the only ones `--force` removes). */
export const DEMO_PATHS = {
  runs: { oracle: 'runs/oracle', recorded: 'runs/u9401066-recorded', empty: 'runs/finish-empty' },
  sft: 'sft',
  export: 'export/trl',
  report: 'report',
} as const;

/** The SFT corpus the demo builds: 4 rows per family over a 100-patient synthetic cohort (seed 1). */
export const DEMO_SFT = { perFamily: 4, patients: 100, seed: 1 } as const;

interface RecordedResult {
  task_id: string;
  answer: string;
  post_history: Array<{ role: string; content: string }>;
}

/**
 * The recorded run as replayable episodes: for each task, the agent's POST messages as recorded, then
 * `FINISH(<answer>)`. The source kept only the answers and the POST exchanges (its GET requests went through the
 * agent's own tools and were not recorded), so a replay sends exactly the actions the official grader judges.
 */
export function recordedEpisodes(taskSet: TaskSet, dir = RECORDED_DIR): Map<number, RecordedEpisode> {
  const src = JSON.parse(readFileSync(join(dir, 'v2_agent_results.json'), 'utf8')) as { results: RecordedResult[] };
  const indexOf = new Map(taskSet.tasks.map((t, i) => [t.id, i]));
  const episodes = new Map<number, RecordedEpisode>();
  for (const r of src.results) {
    const index = indexOf.get(r.task_id);
    if (index === undefined) throw new Error(`${RECORDED_NAME}: task ${r.task_id} is not in ${taskSet.name}`);
    const posts = r.post_history.filter((h) => h.role === 'agent').map((h) => h.content);
    episodes.set(index, { status: 'completed', agentMessages: [...posts, `FINISH(${r.answer})`] });
  }
  return episodes;
}

/** The official grader's verdicts recorded with the run (task id → correct). */
export function recordedVerdicts(dir = RECORDED_DIR): Map<string, boolean> {
  const ev = JSON.parse(readFileSync(join(dir, 'v2_evaluation.json'), 'utf8')) as { details: Array<{ task_id: string; correct: boolean }> };
  return new Map(ev.details.map((d) => [d.task_id, d.correct]));
}

export interface DemoRun {
  label: string;
  agent: string;
  dir: string;
  correct: number;
  total: number;
  successRate: number;
}

export interface DemoSummary {
  out: string;
  seconds: number;
  runs: DemoRun[];
  recorded: { source: string; officialCorrect: number; ourCorrect: number; agree: number; total: number; disagree: string[] };
  sft: { dir: string; rows: number; perFamily: number; patients: number; seed: number };
  export: { dir: string; format: 'trl'; files: string[] };
  report: { html: string; md: string; json: string };
  next: string[];
}

export interface DemoOptions {
  out: string;
  force?: boolean;
  /** Progress bars (TTY) instead of plain lines. */
  tty?: boolean;
  /** One progress line (stderr). */
  log?: (line: string) => void;
}

const STEPS = 7;

export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const t0 = performance.now();
  const out = opts.out;
  const root = resolve(out);
  const log = opts.log ?? (() => {});
  const p = (rel: string) => join(out, rel);
  let step = 0;
  const say = (text: string) => log(`demo [${++step}/${STEPS}] ${text}`);
  const done = (text: string, since: number) => log(`demo       ${text} (${((performance.now() - since) / 1000).toFixed(1)} s)`);

  outputPath('--out', out, 'dir');
  if (!isEmptyOrMissing(root)) {
    if (!opts.force) throw new CliError(`--out ${out} is not empty (use --force to replace the demo's files in it, or choose another --out)`);
    for (const rel of [...Object.values(DEMO_PATHS.runs), DEMO_PATHS.sft, DEMO_PATHS.export, DEMO_PATHS.report]) {
      rmSync(join(root, rel), { recursive: true, force: true });
    }
  }

  let t = performance.now();
  say('loading the MedAgentBench replica (500 patients, ~587k resources) and the 300 official tasks');
  const taskSet = openTaskSet('medagentbench-v2');
  const backend = await openBackend({ apiBase: OFFICIAL_API_BASE, world: 'medagentbench' });
  done('replica ready', t);

  const runs: DemoRun[] = [];
  const evalOne = async (label: string, dir: string, agent: Agent): Promise<GradedTask[]> => {
    const t1 = performance.now();
    say(`eval --agent ${label}: 300 tasks, official harness and grader → ${dir}`);
    let result;
    try {
      result = await runEval({
        out: resolve(dir),
        taskSet,
        agent,
        backend,
        grade: officialGrader,
        apiBase: OFFICIAL_API_BASE,
        concurrency: 4,
        progress: opts.tty === true,
      });
    } catch (err) {
      if (err instanceof EvalError) throw new CliError(err.message, 1);
      throw err;
    }
    const s = result.summary!;
    runs.push({ label, agent: agent.name, dir, correct: s.correct, total: s.total, successRate: s.successRate });
    done(`${label}: ${s.correct}/${s.total} correct`, t1);
    return readFileSync(join(dir, 'grades.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as GradedTask);
  };

  let recorded: DemoSummary['recorded'];
  try {
    await evalOne('oracle', p(DEMO_PATHS.runs.oracle), createAgent('oracle'));
    const graded = await evalOne('u9401066-recorded', p(DEMO_PATHS.runs.recorded), new ReplayAgent(RECORDED_NAME, recordedEpisodes(taskSet)));
    await evalOne('finish-empty', p(DEMO_PATHS.runs.empty), createAgent('finish-empty'));
    recorded = agreement(graded);
  } finally {
    await backend.close();
  }
  log(
    `demo       u9401066-recorded: official grader ${recorded.officialCorrect}/${recorded.total}, ours ${recorded.ourCorrect}/${recorded.total}; verdicts agree on ${recorded.agree}/${recorded.total} tasks`,
  );

  t = performance.now();
  say(`generate: ${DEMO_SFT.perFamily * 10} verified SFT rows over a ${DEMO_SFT.patients}-patient synthetic cohort → ${p(DEMO_PATHS.sft)}`);
  let rows: number;
  let exportFiles: string[];
  try {
    const r = await generateCorpus({
      params: defaultParams({ out: p(DEMO_PATHS.sft), seed: DEMO_SFT.seed, perFamily: DEMO_SFT.perFamily, patients: DEMO_SFT.patients }),
      deps: realDeps(),
      force: true,
      concurrency: 8,
      workers: 0,
      onStage: (stage) => log(`demo       generate: ${stage}`),
    });
    rows = r.manifest.counts.total;
    done(`${rows} rows, each solved over HTTP and passed by the grader`, t);
    t = performance.now();
    say(`export for TRL → ${p(DEMO_PATHS.export)}`);
    const e = await exportCorpus({ dir: p(DEMO_PATHS.sft), format: 'trl', rows: 'trajectory', out: p(DEMO_PATHS.export), force: true });
    exportFiles = e.files;
    done(`${e.files.join(', ')}; parity ${e.parity.checked} rows checked, ${e.parity.failed} failed`, t);
  } catch (e) {
    throw fromFactoryError(e);
  }

  t = performance.now();
  say(`report comparing the three runs → ${p(DEMO_PATHS.report)}`);
  const data = buildReport([p(DEMO_PATHS.runs.empty), p(DEMO_PATHS.runs.recorded), p(DEMO_PATHS.runs.oracle)]);
  const written = await writeReport(data, resolve(p(DEMO_PATHS.report)));
  done('report.html, report.md, report.json', t);

  // paths as the user would type them: relative below the working folder, absolute elsewhere
  const rel = (abs: string) => {
    const r = relative(process.cwd(), abs);
    return r === '' ? '.' : r.startsWith('..') || isAbsolute(r) ? abs : r;
  };
  const runDirs = runs.map((r) => r.dir).join(' ');
  const next = [
    `open ${rel(written.files.html)}`,
    `npx ehrgym view ${runDirs}`,
    'npx ehrgym eval --agent openai:<model> --base-url http://127.0.0.1:8000/v1 --out runs/<model>',
    `npx ehrgym report ${p(DEMO_PATHS.runs.oracle)} runs/<model> --out out/report`,
  ];
  return {
    out,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    runs,
    recorded,
    sft: { dir: p(DEMO_PATHS.sft), rows, ...DEMO_SFT },
    export: { dir: p(DEMO_PATHS.export), format: 'trl', files: exportFiles },
    report: { html: rel(written.files.html), md: rel(written.files.md), json: rel(written.files.json) },
    next,
  };
}

/** Our grader's verdicts on the replayed recorded run against the official grader's recorded verdicts. */
function agreement(graded: GradedTask[]): DemoSummary['recorded'] {
  const official = recordedVerdicts();
  const disagree: string[] = [];
  let agree = 0;
  for (const g of graded) {
    if (official.get(g.id) === g.correct) agree++;
    else disagree.push(g.id);
  }
  return {
    source: RECORDED_NAME,
    officialCorrect: [...official.values()].filter(Boolean).length,
    ourCorrect: graded.filter((g) => g.correct).length,
    agree,
    total: graded.length,
    disagree,
  };
}

export function formatDemo(s: DemoSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const w = Math.max(...s.runs.map((r) => r.label.length));
  const lines = [`ehrgym demo: wrote ${s.out} in ${s.seconds.toFixed(1)} s`, 'runs (MedAgentBench v2, 300 tasks, official harness and grader):'];
  for (const r of s.runs) {
    lines.push(`  ${r.label.padEnd(w)}  ${String(r.correct).padStart(3)}/${r.total} = ${pct(r.successRate).padStart(7)}  ${r.dir}`);
  }
  lines.push(
    `  u9401066-recorded replays a published run (${s.recorded.source}): official grader ${s.recorded.officialCorrect}/${s.recorded.total}, ours ${s.recorded.ourCorrect}/${s.recorded.total}, verdicts agree on ${s.recorded.agree}/${s.recorded.total} tasks${s.recorded.disagree.length ? ` (differ: ${s.recorded.disagree.join(', ')})` : ''}`,
  );
  lines.push(`SFT corpus:  ${s.sft.dir}/train.jsonl (${s.sft.rows} verified rows; manifest.json, README.md)`);
  lines.push(`TRL export:  ${s.export.dir}/ (${s.export.files.join(', ')})`);
  lines.push(`report:      ${s.report.html} (also ${s.report.md}, ${s.report.json})`);
  lines.push('next:');
  lines.push(`  ${s.next[0]}                # the report in a browser`);
  lines.push(`  ${s.next[1]}   # browse every trajectory`);
  lines.push('  # evaluate a real model: any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp, hosted; see README.md)');
  lines.push(`  ${s.next[2]}`);
  lines.push(`  ${s.next[3]}`);
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('offline tour in about a minute: replica, three evaluated agents, a verified SFT corpus, report.html')
    .option('--out <dir>', 'output folder (refused when not empty, unless --force)', 'ehrgym-demo')
    .option('--force', "replace the demo's files in a non-empty --out", false)
    .option('--json', 'print one JSON summary on stdout', false)
    .addHelpText(
      'after',
      `
Writes, below --out: runs/oracle, runs/u9401066-recorded, runs/finish-empty (run folders as \`ehrgym eval\` writes
them), sft/ (corpus), export/trl/, report/report.html. Progress goes to stderr (bars on a terminal).

Examples:
  npx ehrgym demo
  npx ehrgym demo --out /tmp/ehrgym-demo --force
  npx ehrgym demo --json > demo.json
`,
    )
    .action(async (o: { out: string; force: boolean; json: boolean }) => {
      if (!existsSync(RECORDED_DIR)) throw new CliError(`the recorded run is missing from this installation (${RECORDED_NAME})`, 1);
      const tty = process.stderr.isTTY === true;
      const summary = await runDemo({ out: o.out, force: o.force, tty, log: (l) => process.stderr.write(`${l}\n`) });
      process.stdout.write(o.json ? `${JSON.stringify(summary, null, 2)}\n` : formatDemo(summary));
    });
}
