/**
 * `ehrgym grade`: re-grade any AgentBench-format runs.jsonl (ours or the official harness's) against a task set.
 */
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
  overall: AgentBenchOverall;
}

/** Read a runs.jsonl strictly: a malformed line is an error naming it. The first line of an index wins. */
export function readRunsFile(path: string, taskCount: number): Map<number, TaskOutput> {
  let read;
  try {
    read = readJsonl<RunsLine>(path);
  } catch (err) {
    if (err instanceof JsonlError) throw new EvalError(err.message);
    throw new EvalError(`${path}: cannot read (${err instanceof Error ? err.message : String(err)})`);
  }
  const out = new Map<number, TaskOutput>();
  for (const { line, value } of read.records) {
    const output = value?.output;
    const index = typeof value?.index === 'number' ? value.index : output?.index;
    if (!output || typeof output !== 'object' || typeof index !== 'number' || !('status' in output)) {
      throw new EvalError(`${path}:${line}: not an AgentBench runs line (needs index and output.status/result/history)`);
    }
    if (!Number.isInteger(index) || index < 0 || index >= taskCount) {
      throw new EvalError(`${path}:${line}: task index ${index} is outside the task set (0..${taskCount - 1})`);
    }
    if (!out.has(index)) out.set(index, { index, status: output.status, result: output.result ?? null, history: output.history ?? null });
  }
  return out;
}

export async function regradeRuns(opts: {
  taskSet: TaskSet;
  runsPath: string;
  grade: Grader;
  ctx: GraderContext;
  concurrency?: number;
}): Promise<RegradeResult> {
  const outputs = readRunsFile(opts.runsPath, opts.taskSet.tasks.length);
  const indices = [...outputs.keys()].sort((a, b) => a - b);
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
    overall,
  };
}
