/**
 * `ehrgym grade`: re-grade any AgentBench-format runs.jsonl (ours or the official harness's) against a task set.
 */
import { existsSync } from 'node:fs';
import type { GraderContext, TaskOutput } from '../tasks/types.js';
import type { GradedTask, RunsLine, TaskScores } from './types.js';
import { readJsonl, JsonlError } from './jsonl.js';
import { EvalError, gradeOutput, gradedEpisode, type Grader, type TaskSet } from './run.js';
import { agentBenchOverall, scoreTasks, type AgentBenchOverall } from './score.js';
import { trialStats, type TrialStats } from './passk.js';

export interface RegradeResult extends TaskScores {
  /** One per line graded (with `trial` in a log of several trials per task). */
  graded: GradedTask[];
  total: number;
  /** Task indices of the task set that the log does not hold (counted as incorrect). */
  missing: number[];
  /** Task indices that had more than one line in the log (only with `dedupe`; otherwise they are an error). */
  duplicates: number[];
  overall: AgentBenchOverall;
  /** A log of several trials per task (`eval --trials`): pass@k, pass^k (missing trials count as failures). */
  trialStats?: TrialStats;
}

/** Which line of a task index that appears more than once in a log is graded. */
export type DedupeMode = 'first' | 'last';
export const DEDUPE_MODES: readonly DedupeMode[] = ['first', 'last'];

export interface RunsFile {
  /** Trial 1 of each task index (the only one in a log of one trial per task). */
  outputs: Map<number, TaskOutput>;
  /** Indices with more than one line for the same trial, ascending (kept according to `dedupe`). */
  duplicates: number[];
  /** Trials per task: 1, or the largest `trial` of a log written by `eval --trials` (every line then has one). */
  trials: number;
  /** Every kept line, by task index then trial. */
  episodes: Array<{ index: number; trial: number; output: TaskOutput }>;
}

/** At most `max` items joined with ", ", then how many more. */
export function listSome(items: readonly string[], max = 20): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')}, … (${items.length} in all)`;
}

/**
 * Read a runs.jsonl strictly: a missing or empty file, a malformed line, or (without `dedupe`) a task index that
 * appears twice is an EvalError naming the file. `taskIds` names the duplicated indices in the message.
 */
export function readRunsFile(path: string, taskCount: number, opts: { dedupe?: DedupeMode; taskIds?: readonly string[] } = {}): RunsFile {
  if (!existsSync(path)) throw new EvalError(`${path}: no such file`);
  let read;
  try {
    read = readJsonl<RunsLine>(path);
  } catch (err) {
    if (err instanceof JsonlError) throw new EvalError(err.message);
    throw new EvalError(`${path}: cannot read (${err instanceof Error ? err.message : String(err)})`);
  }
  if (read.records.length === 0) throw new EvalError(`${path} is empty: no runs lines to grade`);
  const kept = new Map<string, { index: number; trial: number; output: TaskOutput }>();
  const dup = new Set<number>();
  const withTrial = read.records.filter((r) => (r.value as { trial?: unknown })?.trial !== undefined).length;
  if (withTrial > 0 && withTrial < read.records.length) {
    throw new EvalError(`${path}: ${withTrial} of ${read.records.length} lines have a "trial" field; a log of several trials per task gives every line one`);
  }
  let trials = 1;
  for (const { line, value } of read.records) {
    const output = value?.output;
    const index = typeof value?.index === 'number' ? value.index : output?.index;
    if (!output || typeof output !== 'object' || typeof index !== 'number' || !('status' in output)) {
      throw new EvalError(`${path}:${line}: not an AgentBench runs line (needs index and output.status/result/history)`);
    }
    if (!Number.isInteger(index) || index < 0 || index >= taskCount) {
      throw new EvalError(`${path}:${line}: task index ${index} is outside the task set (0..${taskCount - 1})`);
    }
    const trial = withTrial > 0 ? (value as { trial?: unknown }).trial : 1;
    if (typeof trial !== 'number' || !Number.isInteger(trial) || trial < 1 || trial > 1000) {
      throw new EvalError(`${path}:${line}: "trial" must be an integer from 1 to 1000, got ${JSON.stringify(trial)}`);
    }
    trials = Math.max(trials, trial);
    const key = `${index}.${trial}`;
    if (kept.has(key)) {
      dup.add(index);
      if (opts.dedupe !== 'last') continue;
    }
    kept.set(key, {
      index,
      trial,
      output: {
        index,
        status: output.status,
        result: output.result ?? null,
        history: output.history ?? null,
        ...(Array.isArray(output.messages) ? { messages: output.messages } : {}),
      },
    });
  }
  const episodes = [...kept.values()].sort((a, b) => a.index - b.index || a.trial - b.trial);
  const out = new Map<number, TaskOutput>();
  for (const e of episodes) if (e.trial === 1) out.set(e.index, e.output);
  const duplicates = [...dup].sort((a, b) => a - b);
  if (duplicates.length > 0 && opts.dedupe === undefined) {
    const named = duplicates.map((i) => (opts.taskIds?.[i] !== undefined ? `${i} (${opts.taskIds[i]})` : String(i)));
    throw new EvalError(`${path} has duplicate task indices ${listSome(named)} (use --dedupe first|last to keep one)`);
  }
  return { outputs: out, duplicates, trials, episodes };
}

export async function regradeRuns(opts: {
  taskSet: TaskSet;
  runsPath: string;
  grade: Grader;
  ctx: GraderContext;
  concurrency?: number;
  dedupe?: DedupeMode;
}): Promise<RegradeResult> {
  const { outputs, duplicates, trials, episodes } = readRunsFile(opts.runsPath, opts.taskSet.tasks.length, {
    dedupe: opts.dedupe,
    taskIds: opts.taskSet.tasks.map((t) => t.id),
  });
  const indices = [...new Set(episodes.map((e) => e.index))];
  // a log of another task set would be graded against the wrong questions: its prompts tell
  const foreign = indices.filter((i) => {
    const first = (outputs.get(i) ?? episodes.find((e) => e.index === i)!.output).history?.[0];
    return first?.role === 'user' && typeof first.content === 'string' && !first.content.includes(opts.taskSet.tasks[i].instruction);
  });
  if (foreign.length > 0) {
    const i = foreign[0];
    throw new EvalError(
      `${opts.runsPath}: the prompt of task index ${i} is not task ${opts.taskSet.tasks[i].id} of ${opts.taskSet.name}` +
        `${foreign.length > 1 ? ` (nor are ${foreign.length - 1} more)` : ''}: pass the task set the run used with --tasks`,
    );
  }
  const graded: GradedTask[] = new Array(episodes.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < episodes.length; i = next++) {
      const { index, trial, output } = episodes[i];
      const task = opts.taskSet.tasks[index];
      const g = await gradeOutput(opts.grade, task, output, opts.ctx);
      const { index: _i, ...rest } = gradedEpisode(index, task, output, g);
      graded[i] = { index, ...(trials > 1 ? { trial } : {}), ...rest };
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 8) }, worker));
  // scores over episodes, as eval's (pass@1 = mean over trials; a missing trial counts as a failure)
  const correct = new Set(graded.filter((g) => g.correct).map((g) => `${g.index}.${g.trial ?? 1}`));
  const present = new Set(indices);
  const missing = opts.taskSet.tasks.map((_, index) => index).filter((index) => !present.has(index));
  const slots = opts.taskSet.tasks.flatMap((task, index) => Array.from({ length: trials }, (_, t) => ({ index: index * trials + t, id: task.id })));
  const total = slots.length;
  const scores = scoreTasks(slots, (slot) => correct.has(`${Math.floor(slot / trials)}.${(slot % trials) + 1}`));
  const passed = new Set(episodes.filter((e) => correct.has(`${e.index}.${e.trial}`)).map((e) => e.output));
  const overall = agentBenchOverall(
    episodes.map((e) => e.output),
    (o) => passed.has(o),
  );
  return {
    graded,
    total,
    ...scores,
    missing,
    duplicates,
    overall,
    ...(trials > 1
      ? {
          trialStats: trialStats(
            opts.taskSet.tasks.map((task, index) => ({ id: task.id, outcomes: Array.from({ length: trials }, (_, t) => correct.has(`${index}.${t + 1}`)) })),
            trials,
          ),
        }
      : {}),
  };
}
