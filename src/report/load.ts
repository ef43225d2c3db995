/** Reading and validating run folders (the layout documented in src/eval/types.ts). */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { GradedTask, RunSummary, RunsLine } from '../eval/types.js';
import { JsonlError, jsonlValues } from '../eval/jsonl.js';
import type { TaskOutput } from '../tasks/types.js';
import { promptParts } from './history.js';
import { PROTOCOLS } from '../protocol/action.js';
import { protocolOf } from './transcript.js';
import { familyKind } from '../tasks/registry.js';
import { familyDetector } from './families.js';
import type { LoadedRun, RunTask, TaskInfo } from './types.js';

/** A run folder that cannot be used; the message names the folder or file and says why. */
export class RunFolderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunFolderError';
  }
}

function readJsonl<T>(file: string, shown: string, check: (v: unknown) => string | undefined): T[] {
  const out: T[] = [];
  try {
    for (const { line, value } of jsonlValues(readFileSync(file, 'utf8'), file)) {
      const problem = check(value);
      if (problem) throw new RunFolderError(`${shown} line ${line}: ${problem}`);
      out.push(value as T);
    }
  } catch (e) {
    if (e instanceof JsonlError) throw new RunFolderError(`${shown} line ${e.line}: not valid JSON`);
    throw e;
  }
  return out;
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

function checkRunsLine(v: unknown): string | undefined {
  if (!isObj(v)) return 'not an object';
  if (typeof v.index !== 'number') return 'missing numeric "index"';
  if (!isObj(v.output)) return 'missing "output" object';
  if (typeof v.output.status !== 'string') return 'output has no "status"';
  if (v.output.history !== null && !Array.isArray(v.output.history)) return 'output.history is neither a list nor null';
  return undefined;
}

function checkGraded(v: unknown): string | undefined {
  if (!isObj(v)) return 'not an object';
  if (typeof v.index !== 'number') return 'missing numeric "index"';
  if (typeof v.id !== 'string') return 'missing "id"';
  if (typeof v.family !== 'string') return 'missing "family"';
  if (typeof v.correct !== 'boolean') return 'missing boolean "correct"';
  if (!isObj(v.grade) || !Array.isArray(v.grade.checks)) return 'missing "grade" with "checks"';
  return undefined;
}

/** Derive what the analysis needs about a task from its grade line and the prompt recorded in the history. */
export function taskInfoFrom(graded: GradedTask, output: TaskOutput, fallbackApiBase: string): TaskInfo {
  const prompt = output.history?.[0]?.role === 'user' ? output.history[0].content : '';
  const parts = promptParts(prompt);
  const kind = familyKind(graded.family) ?? 'unknown';
  const mrn = familyDetector(graded.family)?.mrnInInstruction === false ? undefined : /\bS\d{7}\b/.exec(parts.question ?? '')?.[0];
  const info: TaskInfo = { id: graded.id, family: graded.family, kind, apiBase: fallbackApiBase || parts.apiBase || '' };
  if (mrn) info.mrn = mrn;
  if (parts.question !== undefined) info.instruction = parts.question;
  if (parts.context !== undefined) info.context = parts.context;
  return info;
}

/** How much of its task set a loaded run covers (its scores are over `graded` tasks). */
export interface RunCoverage {
  /** Tasks in grades.jsonl (what the report scores). */
  graded: number;
  /** Tasks the run selected (summary.json `total`). */
  selected: number;
  /** Tasks in the run's task set (manifest `taskSet.count`). */
  taskSet: number;
  taskSetName: string;
  /** `--limit 30`, `--tasks-filter task5,task9` when the run selected part of its set. */
  filter?: string;
}

export function runCoverage(run: Pick<LoadedRun, 'summary' | 'tasks'>): RunCoverage {
  const m = run.summary.manifest as Partial<RunSummary['manifest']>;
  const graded = run.tasks.length;
  // summary.total counts episodes: with several trials per task, that many per task
  const trials = typeof m.trials === 'number' && m.trials > 1 ? m.trials : 1;
  const selected = typeof run.summary.total === 'number' ? run.summary.total / trials : graded;
  const taskSet = typeof m.taskSet?.count === 'number' ? m.taskSet.count : selected;
  const filter = [
    m.filter?.families?.length ? `--tasks-filter ${m.filter.families.join(',')}` : '',
    m.filter?.limit !== undefined ? `--limit ${m.filter.limit}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  return { graded, selected, taskSet, taskSetName: String(m.taskSet?.name ?? 'its task set'), ...(filter ? { filter } : {}) };
}

/** One line saying what part of its task set a run covers, or undefined when it covers all of it. */
export function coverageNote(label: string, c: RunCoverage): string | undefined {
  if (c.graded < c.selected) {
    return `${label}: grades.jsonl holds ${c.graded} of the ${c.selected} tasks the run selected; its scores are over those ${c.graded}`;
  }
  if (c.selected < c.taskSet) {
    return `${label} covers ${c.selected} of the ${c.taskSet} tasks of ${c.taskSetName}${c.filter ? ` (${c.filter})` : ''}; its scores are over those ${c.selected}`;
  }
  return undefined;
}

const warnStderr = (msg: string): void => {
  process.stderr.write(`ehrgym: warning: ${msg}\n`);
};

/** Read one run folder; throws RunFolderError with a one-line reason. Partial coverage is reported through `warn`. */
export function loadRun(dirArg: string, warn: (msg: string) => void = warnStderr, trial?: number): LoadedRun {
  const dir = resolve(dirArg);
  if (!existsSync(dir)) throw new RunFolderError(`run folder not found: ${dirArg}`);
  if (!statSync(dir).isDirectory()) throw new RunFolderError(`not a run folder (not a directory): ${dirArg}`);
  const f = (name: string): string => join(dir, name);
  const shown = (name: string): string => join(dirArg, name);
  if (!existsSync(f('runs.jsonl'))) throw new RunFolderError(`not a run folder: ${shown('runs.jsonl')} is missing`);
  for (const name of ['grades.jsonl', 'summary.json']) {
    if (!existsSync(f(name))) {
      throw new RunFolderError(`incomplete run folder: ${shown(name)} is missing (interrupted? finish it with \`ehrgym eval --resume\`)`);
    }
  }
  let summary: RunSummary;
  try {
    summary = JSON.parse(readFileSync(f('summary.json'), 'utf8')) as RunSummary;
  } catch {
    throw new RunFolderError(`${shown('summary.json')}: not valid JSON`);
  }
  if (!isObj(summary) || !isObj(summary.manifest)) throw new RunFolderError(`${shown('summary.json')}: missing "manifest"`);
  const declared = (summary.manifest as { protocol?: unknown }).protocol;
  if (declared !== undefined && !(PROTOCOLS as readonly unknown[]).includes(declared)) {
    throw new RunFolderError(
      `${shown('summary.json')}: manifest "protocol" must be one of ${PROTOCOLS.join(', ')}, got ${JSON.stringify(declared).slice(0, 80)}`,
    );
  }
  const lines = readJsonl<RunsLine>(f('runs.jsonl'), shown('runs.jsonl'), checkRunsLine);
  const errors = existsSync(f('error.jsonl')) ? readJsonl<RunsLine>(f('error.jsonl'), shown('error.jsonl'), checkRunsLine) : [];
  const grades = readJsonl<GradedTask>(f('grades.jsonl'), shown('grades.jsonl'), checkGraded);
  if (grades.length === 0) throw new RunFolderError(`empty run: ${shown('grades.jsonl')} has no tasks`);
  // a run of several trials per task: the task views read trial 1; every trial's outcome is kept on the task
  const trialOf = (x: { trial?: number }): number => x.trial ?? 1;
  const outcomes = new Map<string, Array<{ trial: number; correct: boolean; status: string }>>();
  for (const g of grades) {
    if (g.trial === undefined) continue;
    if (!outcomes.has(g.id)) outcomes.set(g.id, []);
    outcomes.get(g.id)!.push({ trial: g.trial, correct: g.correct, status: g.status });
  }
  const byIndex = new Map<string, RunsLine>();
  for (const l of errors) byIndex.set(`${l.index}.${trialOf(l)}`, l);
  for (const l of lines) byIndex.set(`${l.index}.${trialOf(l)}`, l);
  const seen = new Set<string>();
  const apiBase = typeof summary.manifest.apiBase === 'string' ? summary.manifest.apiBase : '';
  const firstTrials =
    outcomes.size === 0
      ? grades
      : trial !== undefined
        ? grades.filter((g) => g.trial === trial)
        : grades.filter((g) => g.trial === Math.min(...outcomes.get(g.id)!.map((o) => o.trial)));
  const tasks: RunTask[] = firstTrials.map((g) => {
    if (seen.has(g.id)) throw new RunFolderError(`${shown('grades.jsonl')}: task ${g.id} appears twice`);
    seen.add(g.id);
    const line = byIndex.get(`${g.index}.${trialOf(g)}`);
    if (!line) throw new RunFolderError(`${shown('grades.jsonl')}: task ${g.id} (index ${g.index}) has no line in runs.jsonl or error.jsonl`);
    const output: TaskOutput = line.output;
    const t: RunTask = { index: g.index, info: taskInfoFrom(g, output, apiBase), graded: g, output };
    t.line = line;
    const trials = outcomes.get(g.id);
    if (trials) t.trials = trials.sort((a, b) => a.trial - b.trial);
    return t;
  });
  const note = coverageNote(dirArg, runCoverage({ summary, tasks }));
  if (note) warn(note);
  return { dir, label: basename(dir), summary, protocol: protocolOf(summary.manifest), tasks };
}

/**
 * The viewer's runs: a run of several trials per task becomes one run per trial (`<label> trial <t>`), so the viewer's
 * side-by-side columns show a task's trials next to each other.
 */
export function loadRunsByTrial(dirs: string[], warn: (msg: string) => void = warnStderr): LoadedRun[] {
  const runs = loadRuns(dirs, warn);
  return runs.flatMap((r) => {
    const k = typeof r.summary.manifest.trials === 'number' ? r.summary.manifest.trials : 1;
    if (k <= 1) return [r];
    return Array.from({ length: k }, (_, t) => ({ ...loadRun(r.dir, () => {}, t + 1), label: `${r.label} trial ${t + 1}` }));
  });
}

/** Read several run folders; labels are made unique (folder name, then parent/name, then a #n suffix). */
export function loadRuns(dirs: string[], warn: (msg: string) => void = warnStderr): LoadedRun[] {
  if (dirs.length === 0) throw new RunFolderError('no run folder given');
  const runs = dirs.map((d) => loadRun(d, warn));
  const counts = new Map<string, number>();
  for (const r of runs) counts.set(r.label, (counts.get(r.label) ?? 0) + 1);
  for (const r of runs) if (counts.get(r.label)! > 1) r.label = `${basename(dirname(r.dir))}/${basename(r.dir)}`;
  const used = new Map<string, number>();
  for (const r of runs) {
    const n = (used.get(r.label) ?? 0) + 1;
    used.set(r.label, n);
    if (n > 1) r.label = `${r.label}#${n}`;
  }
  return runs;
}

/** Throw unless all runs cover the same task ids (needed for a paired comparison). */
export function assertSameTasks(runs: LoadedRun[]): void {
  const [first, ...rest] = runs;
  if (!first) return;
  const ids = new Set(first.tasks.map((t) => t.graded.id));
  for (const r of rest) {
    const other = new Set(r.tasks.map((t) => t.graded.id));
    const missing = [...ids].filter((id) => !other.has(id));
    const extra = [...other].filter((id) => !ids.has(id));
    if (missing.length || extra.length) {
      const ex = missing.length ? `${missing[0]} only in ${first.label}` : `${extra[0]} only in ${r.label}`;
      throw new RunFolderError(
        `runs cover different task sets: ${first.label} has ${ids.size} tasks, ${r.label} has ${other.size} (${ex}); compare runs over the same tasks`,
      );
    }
  }
}
