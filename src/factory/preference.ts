/**
 * Preference data past SFT: `ehrgym export RUN_DIR --format dpo|kto --out DIR` turns an eval run with several trials
 * per task (`eval --trials K --temperature T`, e.g. on a train task file) into TRL's preference formats.
 *
 * For each task, its passing rollouts (graded correct) are paired in trial order with its failing ones (graded
 * incorrect, any status with a history). A pair's two conversations (text runs: the history as user/assistant
 * messages; tools and MCP runs: the native transcript) take the same actions up to their first differing agent turn
 * (`divergence`): the chosen rollout's messages before it are the `prompt`, its assistant message there is `chosen`,
 * the failing one's is `rejected` — a step-level preference over the same prompt prefix, the turn where the rollouts
 * parted. Before a pair is written both episodes
 * are graded again with the evaluation grader: the chosen one must pass and the rejected one fail (else the pair is
 * dropped, with its reason).
 *
 * Row shapes (TRL "Dataset formats", conversational preference and unpaired preference types):
 *   dpo: {"prompt": [messages], "chosen": [assistant message], "rejected": [assistant message]} (+ "tools" for tools runs)
 *   kto: {"prompt": [messages], "completion": [assistant message], "label": true|false}, one row per side of a pair
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FactoryInputError } from './errors.js';
import { sha256 } from './canonical.js';
import type { GradedTask, RunSummary } from '../eval/types.js';
import { JsonlError, jsonlValues } from '../eval/jsonl.js';
import type { ChatMessage, GradeResult, TaskCase, TaskOutput } from '../tasks/types.js';
import { functionTools } from '../protocol/tools.js';

export const PREFERENCE_FORMATS = ['dpo', 'kto'] as const;
export type PreferenceFormat = (typeof PREFERENCE_FORMATS)[number];

export interface PreferenceDeps {
  /** The task records of a task set by name (as the run's manifest names it). */
  loadTasks(name: string): TaskCase[];
  /** Grade an episode again with the evaluation grader on the run's world. */
  regrade(task: TaskCase, output: TaskOutput): Promise<GradeResult>;
}

export interface PreferenceSummary {
  format: PreferenceFormat;
  source: { dir: string; runs_sha256: string; task_set: string; protocol: string; trials: number };
  tasks_with_both: number;
  pairs: number;
  rows: number;
  dropped: Array<{ task_id: string; trials: [number, number]; reason: string }>;
  out: string;
  files: string[];
}

type Episode = { index: number; trial: number; output: TaskOutput; correct: boolean };

/** The conversation of an episode as chat messages (tools/MCP: the native transcript; text: the history). */
function conversation(output: TaskOutput): ChatMessage[] {
  if (Array.isArray(output.messages)) return output.messages;
  return (output.history ?? []).map((h) =>
    h.role === 'agent' ? { role: 'assistant' as const, content: h.content } : { role: 'user' as const, content: h.content },
  );
}

/**
 * The first agent turn where two rollouts of one task differ: the position of the first assistant message that is not
 * the same in both, every earlier message having the same role (the environment's answers to the same actions are
 * compared by role only: they differ in incidental ids, such as search Bundle ids, that come from each trial's own
 * session). Their common length when one is a prefix of the other; -1 when the roles part first.
 */
export function divergence(a: readonly ChatMessage[], b: readonly ChatMessage[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i].role !== b[i].role) return -1;
    if (a[i].role === 'assistant' && JSON.stringify(a[i]) !== JSON.stringify(b[i])) return i;
  }
  return n;
}

/** Read an eval run folder's episodes with their recorded verdicts. */
function readRun(dir: string, loadTasks: PreferenceDeps['loadTasks']) {
  const need = (name: string) => {
    const p = join(dir, name);
    if (!existsSync(p)) throw new FactoryInputError(`${dir}: not an eval run folder (${name} is missing)`);
    return p;
  };
  const runsPath = need('runs.jsonl');
  let summary: RunSummary;
  try {
    summary = JSON.parse(readFileSync(need('summary.json'), 'utf8')) as RunSummary;
  } catch {
    throw new FactoryInputError(`${join(dir, 'summary.json')}: not valid JSON`);
  }
  const taskSet = summary.manifest?.taskSet?.path ?? summary.manifest?.taskSet?.name;
  if (typeof taskSet !== 'string') throw new FactoryInputError(`${join(dir, 'summary.json')}: no manifest.taskSet.name`);
  let tasks: TaskCase[];
  try {
    tasks = loadTasks(taskSet);
  } catch (e) {
    throw new FactoryInputError(`${dir}: its run used task set ${taskSet}, which cannot be loaded (${(e as Error).message})`);
  }
  const verdicts = new Map<string, boolean>();
  const gp = need('grades.jsonl');
  const text = readFileSync(runsPath, 'utf8');
  const episodes: Episode[] = [];
  try {
    for (const { value } of jsonlValues<GradedTask>(readFileSync(gp, 'utf8'), gp)) verdicts.set(`${value.index}.${value.trial ?? 1}`, value.correct);
    for (const { line, value } of jsonlValues<{ index: number; trial?: number; output: TaskOutput }>(text, runsPath)) {
      if (typeof value?.index !== 'number' || !value.output || !tasks[value.index]) {
        throw new FactoryInputError(`${runsPath}:${line}: not a runs.jsonl line of task set ${taskSet}`);
      }
      const trial = value.trial ?? 1;
      const correct = verdicts.get(`${value.index}.${trial}`);
      if (correct === undefined) continue; // not graded (an interrupted run): neither side of a pair
      episodes.push({ index: value.index, trial, output: value.output, correct });
    }
  } catch (e) {
    if (e instanceof JsonlError) throw new FactoryInputError(`${e.message}`);
    throw e;
  }
  return { summary, tasks, taskSet, episodes, runsSha: sha256(text) };
}

/** Build the preference rows of a run (see the module comment); every pair graded again. */
export async function preferenceRows(dir: string, format: PreferenceFormat, deps: PreferenceDeps) {
  const { summary, tasks, taskSet, episodes, runsSha } = readRun(dir, deps.loadTasks);
  const protocol = summary.manifest.protocol ?? 'text';
  const tools = protocol === 'text' ? undefined : functionTools();
  const byTask = new Map<number, Episode[]>();
  for (const e of episodes) {
    if (!byTask.has(e.index)) byTask.set(e.index, []);
    byTask.get(e.index)!.push(e);
  }
  const rows: Record<string, unknown>[] = [];
  const dropped: PreferenceSummary['dropped'] = [];
  let withBoth = 0;
  let pairs = 0;
  for (const index of [...byTask.keys()].sort((a, b) => a - b)) {
    const eps = byTask.get(index)!.sort((a, b) => a.trial - b.trial);
    const task = tasks[index];
    const passes = eps.filter((e) => e.correct && e.output.status === 'completed');
    const fails = eps.filter((e) => !e.correct && Array.isArray(e.output.history) && e.output.history.length > 1);
    if (passes.length === 0 || fails.length === 0) continue;
    withBoth++;
    for (let i = 0; i < Math.min(passes.length, fails.length); i++) {
      const good = passes[i];
      const bad = fails[i];
      const drop = (reason: string) => dropped.push({ task_id: task.id, trials: [good.trial, bad.trial], reason });
      const a = conversation(good.output);
      const b = conversation(bad.output);
      const d = divergence(a, b);
      if (d < 0) {
        drop("the rollouts' messages part in role before any agent turn differs");
        continue;
      }
      if (d >= a.length || d >= b.length) {
        drop('one rollout is a prefix of the other');
        continue;
      }
      const [ga, gb] = await Promise.all([deps.regrade(task, good.output), deps.regrade(task, bad.output)]);
      if (!ga.correct || gb.correct) {
        drop(`graded again: chosen ${ga.correct ? 'passes' : 'fails'}, rejected ${gb.correct ? 'passes' : 'fails'}`);
        continue;
      }
      pairs++;
      const prompt = a.slice(0, d);
      const meta = { task_id: task.id, trials: [good.trial, bad.trial], turn: d };
      if (format === 'dpo') rows.push({ prompt, chosen: [a[d]], rejected: [b[d]], ...(tools ? { tools } : {}), ehrgym: meta });
      else {
        rows.push({ prompt, completion: [a[d]], label: true, ...(tools ? { tools } : {}), ehrgym: meta });
        rows.push({ prompt, completion: [b[d]], label: false, ...(tools ? { tools } : {}), ehrgym: meta });
      }
    }
  }
  return { rows, dropped, withBoth, pairs, taskSet, protocol, trials: summary.manifest.trials ?? 1, runsSha };
}

/** Write the rows (`train.jsonl`) and `export.json` to `out` atomically; read them back to check the round trip. */
export async function exportPreferences(
  opts: { dir: string; format: PreferenceFormat; out: string; force?: boolean },
  deps: PreferenceDeps,
): Promise<PreferenceSummary> {
  if (!(PREFERENCE_FORMATS as readonly string[]).includes(opts.format)) throw new FactoryInputError(`--format ${opts.format} is not one of dpo, kto`);
  const r = await preferenceRows(opts.dir, opts.format, deps);
  if (r.pairs === 0) {
    throw new FactoryInputError(
      `${opts.dir}: no task has both a passing and a failing rollout (${r.withBoth} with both; ${r.dropped.length} pair(s) dropped); run eval with --trials K and --temperature > 0`,
    );
  }
  const lines = r.rows.map((x) => JSON.stringify(x));
  const text = lines.join('\n') + '\n';
  // round trip: the file reads back to the same rows, each pair over one prompt
  const back = text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  if (JSON.stringify(back) !== JSON.stringify(r.rows)) throw new Error('preference export: rows do not read back identically');
  if (existsSync(opts.out) && !opts.force) {
    throw new FactoryInputError(`--out ${opts.out} already exists (pass --force to replace it)`);
  }
  const summary: PreferenceSummary = {
    format: opts.format,
    source: { dir: opts.dir, runs_sha256: r.runsSha, task_set: r.taskSet, protocol: r.protocol, trials: r.trials },
    tasks_with_both: r.withBoth,
    pairs: r.pairs,
    rows: r.rows.length,
    dropped: r.dropped,
    out: opts.out,
    files: ['train.jsonl', 'export.json'],
  };
  const tmp = `${opts.out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, 'train.jsonl'), text);
  writeFileSync(join(tmp, 'export.json'), JSON.stringify({ ...summary, trl_format: TRL_FORMAT[opts.format] }, null, 2) + '\n');
  rmSync(opts.out, { recursive: true, force: true });
  renameSync(tmp, opts.out);
  return summary;
}

const TRL_FORMAT: Record<PreferenceFormat, string> = {
  dpo: 'TRL dataset formats: conversational preference {prompt, chosen, rejected} (DPOTrainer)',
  kto: 'TRL dataset formats: conversational unpaired preference {prompt, completion, label} (KTOTrainer)',
};
