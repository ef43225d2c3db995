/**
 * `--collect runs/<run>/runs.jsonl`: merge model rollouts from earlier `ehrgym eval` runs. Only episodes that finished
 * cleanly (`completed`) and passed the grader are kept: the verdict comes from the run's grades.jsonl when present,
 * otherwise the episode is re-graded with the evaluation grader.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FactoryInputError } from './errors.js';
import { contentHash, sha256 } from './canonical.js';
import type { GradedTask, RunsLine, RunSummary } from '../eval/types.js';
import { JsonlError, jsonlValues } from '../eval/jsonl.js';
import type { GradeResult, TaskCase, TaskOutput } from '../tasks/types.js';
import type { CanonicalRow, ChatMessage, DropRecord } from './types.js';

export interface CollectedEpisode {
  file: string;
  index: number;
  /** Runs of several trials per task (`eval --trials`): the trial (1-based). */
  trial?: number;
  task: TaskCase;
  output: TaskOutput;
  /** Verdict from grades.jsonl, if the run folder has one for this index. */
  graded?: GradedTask;
  world: CanonicalRow['meta']['world'];
  taskSet: string;
}

export interface CollectSource {
  file: string;
  sha256: string;
  episodes: CollectedEpisode[];
  lines: number;
}

/** Resolve the task set a run used (from summary.json's manifest), default `medagentbench-v2`. */
function runTaskSetName(runDir: string): { name: string; world: CanonicalRow['meta']['world'] } {
  const p = join(runDir, 'summary.json');
  if (existsSync(p)) {
    try {
      const s = JSON.parse(readFileSync(p, 'utf8')) as RunSummary;
      const w = s.manifest.world;
      const world =
        'name' in w
          ? { name: w.name, seed: w.seed ?? null, patients: null, fingerprint: w.fingerprint }
          : { name: `external:${w.fhirUrl}`, seed: null, patients: null, fingerprint: '' };
      return { name: s.manifest.taskSet.path ?? s.manifest.taskSet.name, world };
    } catch {
      /* fall through */
    }
  }
  return { name: 'medagentbench-v2', world: { name: 'medagentbench', seed: null, patients: null, fingerprint: '' } };
}

/**
 * Read one runs.jsonl (and its folder's grades.jsonl). `loadTasks(name)` returns the task records of a task set.
 * Unreadable or malformed files are a FactoryInputError naming the file and line.
 */
export function readCollectFile(file: string, loadTasks: (name: string) => TaskCase[]): CollectSource {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new FactoryInputError(`--collect ${file} is unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const dir = dirname(file);
  const { name, world } = runTaskSetName(dir);
  let tasks: TaskCase[];
  try {
    tasks = loadTasks(name);
  } catch (e) {
    throw new FactoryInputError(`--collect ${file}: its run used task set ${name}, which cannot be loaded (${(e as Error).message})`);
  }
  // keyed by task index and trial (a run of several trials per task has one verdict per trial)
  const grades = new Map<string, GradedTask>();
  const gp = join(dir, 'grades.jsonl');
  if (existsSync(gp)) {
    try {
      for (const { value } of jsonlValues<GradedTask>(readFileSync(gp, 'utf8'), gp)) grades.set(`${value.index}.${value.trial ?? 1}`, value);
    } catch (e) {
      if (e instanceof JsonlError) throw new FactoryInputError(`--collect ${gp}:${e.line}: not valid JSON`);
      throw e;
    }
  }
  const episodes: CollectedEpisode[] = [];
  let count = 0;
  try {
    for (const { line, value: rec } of jsonlValues<RunsLine>(text, file)) {
      count++;
      const index = typeof rec?.index === 'number' ? rec.index : rec?.output?.index;
      if (typeof index !== 'number' || !rec.output || !('status' in rec.output)) {
        throw new FactoryInputError(`--collect ${file}:${line}: not a runs.jsonl line ({index, output: {status, result, history}})`);
      }
      const task = tasks[index];
      if (!task) throw new FactoryInputError(`--collect ${file}:${line}: task index ${index} is not in task set ${name}`);
      const trial = typeof rec.trial === 'number' ? rec.trial : undefined;
      episodes.push({
        file,
        index,
        ...(trial !== undefined ? { trial } : {}),
        task,
        output: rec.output,
        graded: grades.get(`${index}.${trial ?? 1}`),
        world,
        taskSet: name,
      });
    }
  } catch (e) {
    if (e instanceof JsonlError) throw new FactoryInputError(`--collect ${file}:${e.line}: not valid JSON`);
    throw e;
  }
  return { file, sha256: sha256(text), episodes, lines: count };
}

/** History (roles user/agent) → chat messages (user/assistant). */
export function historyToMessages(history: { role: string; content: string }[]): ChatMessage[] {
  return history.map((h) => ({ role: h.role === 'agent' ? 'assistant' : 'user', content: h.content }));
}

export interface CollectDeps {
  /** Re-grade an episode that has no recorded verdict; null when the run's world is not available. */
  regrade: (ep: CollectedEpisode) => Promise<GradeResult | null>;
  solverVersion: string;
  graderVersion: string;
  harnessVersion: string;
}

/** Keep completed + passing episodes as canonical rows (origin `collected`); record every drop. */
export async function collectRows(sources: CollectSource[], deps: CollectDeps, drops: DropRecord[]): Promise<CanonicalRow[]> {
  const rows: CanonicalRow[] = [];
  for (const src of sources) {
    for (const ep of src.episodes) {
      const family = ep.task.id.split('_')[0]!;
      const where = ep.trial !== undefined ? `${ep.file}#${ep.index}.${ep.trial}` : `${ep.file}#${ep.index}`;
      const drop = (reason: string) => drops.push({ stage: 'collect', reason, task_id: ep.task.id, family, source: where });
      if (ep.output.status !== 'completed') {
        drop(`status: ${ep.output.status}`);
        continue;
      }
      if (!Array.isArray(ep.output.history) || ep.output.history.length < 2) {
        drop('no history');
        continue;
      }
      let correct: boolean;
      let branch = 'unknown';
      if (ep.graded) {
        correct = ep.graded.correct;
        branch = ep.graded.grade?.branch ?? branch;
      } else {
        const g = await deps.regrade(ep);
        if (!g) {
          drop('ungraded: no grades.jsonl and the run world is unavailable');
          continue;
        }
        correct = g.correct;
        branch = g.branch ?? branch;
      }
      if (!correct) {
        drop('grader: incorrect');
        continue;
      }
      const messages = historyToMessages(ep.output.history);
      if (messages[messages.length - 1]!.role !== 'assistant') {
        drop('history does not end with the agent turn');
        continue;
      }
      const hash = contentHash(messages);
      rows.push({
        messages,
        meta: {
          row_id: `collected-${sha256(where).slice(0, 12)}`,
          task_family: family,
          task_id: ep.task.id,
          branch,
          patient: ep.task.eval_MRN ?? null,
          world: ep.world,
          task: ep.task,
          solver_version: 'model',
          grader_version: deps.graderVersion,
          harness_version: deps.harnessVersion,
          content_sha256: hash,
          origin: 'collected',
          augmentation: [],
          source: { file: ep.file, index: ep.index, ...(ep.trial !== undefined ? { trial: ep.trial } : {}) },
          verified: true,
        },
      });
    }
  }
  return rows;
}
