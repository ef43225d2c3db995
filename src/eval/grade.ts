/**
 * `ehrgym grade`: re-grade any AgentBench-format runs.jsonl (ours or the official harness's) against a task set.
 */
import { existsSync } from 'node:fs';
import type { GraderContext, TaskOutput } from '../tasks/types.js';
import type { GradedTask, RunsLine, TaskScores } from './types.js';
import { readJsonl, JsonlError } from './jsonl.js';
import { EvalError, gradeOutput, gradedEpisode, type Grader, type TaskSet } from './run.js';
import { agentBenchOverall, scoreTasks, type AgentBenchOverall } from './score.js';

export interface RegradeResult extends TaskScores {
  graded: GradedTask[];
  total: number;
  /** Task indices of the task set that the log does not hold (counted as incorrect). */
  missing: number[];
  /** Task indices that had more than one line in the log (only with `dedupe`; otherwise they are an error). */
  duplicates: number[];
  overall: AgentBenchOverall;
}

/** Which line of a task index that appears more than once in a log is graded. */
export type DedupeMode = 'first' | 'last';
export const DEDUPE_MODES: readonly DedupeMode[] = ['first', 'last'];

export interface RunsFile {
  outputs: Map<number, TaskOutput>;
  /** Indices with more than one line, ascending (kept according to `dedupe`). */
  duplicates: number[];
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
  const out = new Map<number, TaskOutput>();
  const dup = new Set<number>();
  for (const { line, value } of read.records) {
    const output = value?.output;
    const index = typeof value?.index === 'number' ? value.index : output?.index;
    if (!output || typeof output !== 'object' || typeof index !== 'number' || !('status' in output)) {
      throw new EvalError(`${path}:${line}: not an AgentBench runs line (needs index and output.status/result/history)`);
    }
    if (!Number.isInteger(index) || index < 0 || index >= taskCount) {
      throw new EvalError(`${path}:${line}: task index ${index} is outside the task set (0..${taskCount - 1})`);
    }
    if (out.has(index)) {
      dup.add(index);
      if (opts.dedupe !== 'last') continue;
    }
    out.set(index, { index, status: output.status, result: output.result ?? null, history: output.history ?? null });
  }
  const duplicates = [...dup].sort((a, b) => a - b);
  if (duplicates.length > 0 && opts.dedupe === undefined) {
    const named = duplicates.map((i) => (opts.taskIds?.[i] !== undefined ? `${i} (${opts.taskIds[i]})` : String(i)));
    throw new EvalError(`${path} has duplicate task indices ${listSome(named)} (use --dedupe first|last to keep one)`);
  }
  return { outputs: out, duplicates };
}

export async function regradeRuns(opts: {
  taskSet: TaskSet;
  runsPath: string;
  grade: Grader;
  ctx: GraderContext;
  concurrency?: number;
  dedupe?: DedupeMode;
}): Promise<RegradeResult> {
  const { outputs, duplicates } = readRunsFile(opts.runsPath, opts.taskSet.tasks.length, {
    dedupe: opts.dedupe,
    taskIds: opts.taskSet.tasks.map((t) => t.id),
  });
  const indices = [...outputs.keys()].sort((a, b) => a - b);
  // a log of another task set would be graded against the wrong questions: its prompts tell
  const foreign = indices.filter((i) => {
    const first = outputs.get(i)!.history?.[0];
    return first?.role === 'user' && typeof first.content === 'string' && !first.content.includes(opts.taskSet.tasks[i].instruction);
  });
  if (foreign.length > 0) {
    const i = foreign[0];
    throw new EvalError(
      `${opts.runsPath}: the prompt of task index ${i} is not task ${opts.taskSet.tasks[i].id} of ${opts.taskSet.name}` +
        `${foreign.length > 1 ? ` (nor are ${foreign.length - 1} more)` : ''}: pass the task set the run used with --tasks`,
    );
  }
  const graded: GradedTask[] = new Array(indices.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < indices.length; i = next++) {
      const index = indices[i];
      const task = opts.taskSet.tasks[index];
      const out = outputs.get(index)!;
      const g = await gradeOutput(opts.grade, task, out, opts.ctx);
      graded[i] = gradedEpisode(index, task, out, g);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 8) }, worker));
  const byIndex = new Map(graded.map((g) => [g.index, g]));
  const missing = opts.taskSet.tasks.map((_, index) => index).filter((index) => !byIndex.has(index));
  const total = opts.taskSet.tasks.length;
  const scores = scoreTasks(
    opts.taskSet.tasks.map((task, index) => ({ index, id: task.id })),
    (index) => byIndex.get(index)?.correct === true,
  );
  const overall = agentBenchOverall(
    indices.map((i) => outputs.get(i)!),
    (o) => byIndex.get(o.index as number)?.correct === true,
  );
  return {
    graded,
    total,
    ...scores,
    missing,
    duplicates,
    overall,
  };
}
