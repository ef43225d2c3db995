/**
 * `ehrgym eval`: run a task set through an agent with a worker pool, writing an AgentBench-compatible run folder.
 *
 * Crash safety: runs.jsonl / error.jsonl / episodes.jsonl are append-only, one write + fsync per line. `resume`
 * reads them back (a torn last line is cut off), skips finished episodes and refuses when the manifest changed.
 * overall.json, grades.jsonl and summary.json are derived files, rewritten atomically at the end.
 *
 * Stages: `openRun` (selection, manifest, what the folder holds) → `runEpisodes` → `gradeEpisodes` → `finishRun` (the
 * derived files). `--shard i/N` narrows the selection in `openRun`; `ehrgym merge` (src/eval/merge.ts) runs
 * `finishRun` over the union of the shards.
 */
import { canonicalJson } from '../fhir/json.js';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writevSync } from 'node:fs';
import { join, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { setMaxListeners } from 'node:events';
import type { Agent } from '../agent/types.js';
import type { GradeResult, GraderContext, TaskCase, TaskOutput } from '../tasks/types.js';
import type { TaskSet as LoadedTaskSet } from '../tasks/loader.js';
import { OFFICIAL_API_BASE } from '../fhir/types.js';
import { runEpisode, type EpisodeResult, type JsonLoads, type PostMode, DEFAULT_MAX_ROUNDS } from '../agent/loop.js';
import { directToolEnvironment, runToolsEpisode, type ToolEnvironment } from '../agent/tools-loop.js';
import type { Protocol } from '../protocol/action.js';
import { functionsSha256, promptTemplateSha256, renderPrompt, sha256Hex } from '../agent/prompt.js';
import { taskDialect } from '../protocol/dialect.js';
import { VERSION } from '../version.js';
import type { EpisodeSession, FhirBackend } from './backend.js';
import type { GradedTask, RunManifest, RunSummary, RunsLine } from './types.js';
import { JsonlAppender, JsonlError, readJsonl, truncateTo } from './jsonl.js';
import { agentBenchOverall, familyOf, runStatus, summarize } from './score.js';
import { trialStats } from './passk.js';
import { errorLine, overallChunks, runsLineParts } from './agentbench-format.js';
import { EpisodeScheduler } from './schedule.js';
import { inShard, type ShardSpec } from './shard.js';

/** What a run needs of a task set (`loadTaskSet` from src/tasks returns it). */
export type TaskSet = Pick<LoadedTaskSet, 'name' | 'tasks' | 'sha256'> & { path?: string };

/** The task sets shipped with the package (addressed by name; a run's manifest needs no path for them). */
const BUNDLED_SETS = new Set(['medagentbench-v1', 'medagentbench-v2']);

export type Grader = (task: TaskCase, output: TaskOutput, ctx: GraderContext) => Promise<GradeResult> | GradeResult;

/** A problem with the inputs or the run folder (the CLI reports it as one line). */
export class EvalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvalError';
  }
}

export interface EvalOptions {
  /** Run folder. */
  out: string;
  taskSet: TaskSet;
  agent: Agent;
  backend: FhirBackend;
  grade: Grader;
  apiBase?: string;
  /** The agent protocol (default `text`, the official one). */
  protocol?: Protocol;
  /**
   * `mcp`: where an episode's tools live (an MCP client connected to a server bound to the episode's session). `tools`
   * executes directly on the session.
   */
  toolEnvironment?: (episode: { index: number; sessionId: string; session: EpisodeSession; task: TaskCase }) => Promise<ToolEnvironment>;
  /** `tools` / `mcp`: read `<tool_call>` text in replies without tool calls as tool calls. */
  recoverToolText?: boolean;
  postMode?: PostMode;
  maxRounds?: number;
  concurrency?: number;
  /** Only the first N selected tasks. */
  limit?: number;
  /**
   * Episodes per task (default 1). With more than one, every file keys an episode by task index and `trial` (1-based)
   * and the summary adds pass@k and pass^k (`trialStats`).
   */
  trials?: number;
  /** Only these families (`task5`, `task9`, …). */
  families?: string[];
  /**
   * Run only shard `index` of `count` (0-based): every count-th task of the selection, all its trials. The manifest
   * carries `shard: {index, count, config}`; `ehrgym merge` joins the shards into the unsharded run's folder.
   */
  shard?: ShardSpec;
  resume?: boolean;
  /** Progress bar on stderr (default: when stderr is a TTY). */
  progress?: boolean;
  /** Python json.loads for POST bodies. */
  jsonLoads?: JsonLoads;
  /** fsync every line (default true). */
  fsync?: boolean;
  /**
   * Grade each episode as soon as it finishes, overlapping the other episodes' model waits (default true). false grades
   * everything after the last episode (the verdicts and files are the same either way).
   */
  gradeAsYouGo?: boolean;
  /** Aborting stops scheduling, aborts in-flight agent calls and leaves a resumable folder. */
  signal?: AbortSignal;
  /**
   * Episodes in a row ending on an empty reply that stop the run (default `EMPTY_REPLY_STREAK`; 0: never, e.g. for a
   * replayed log, whose replies are not a live endpoint's).
   */
  emptyReplyStreak?: number;
  /** Called after each finished episode. */
  onEpisode?: (e: { index: number; id: string; status: string; correct?: boolean }) => void;
}

export interface EvalResult {
  dir: string;
  /** Absent when the run was interrupted or stopped. */
  summary?: RunSummary & { agentFailures: number };
  interrupted: boolean;
  /**
   * Why the run was stopped without scoring (the model endpoint is broken or misconfigured), as one line. The folder
   * keeps the episodes recorded before; the ones that showed the fault are not recorded (`--resume` reruns them).
   */
  stopped?: string;
  /** Task indices whose agent failed (recorded in error.jsonl; rerun them with resume). */
  failed: number[];
  /** Episodes run by this invocation (not counting resumed ones). */
  ran: number;
  /** Wall ms of this invocation: setup + episodes, grading, derived files. */
  timing: { episodesMs: number; gradingMs: number; filesMs: number };
}

/** Episodes in a row (completion order) ending on an empty model reply that stop a run (fewer when fewer are run). */
export const EMPTY_REPLY_STREAK = 5;

/** The one-line diagnosis of a streak of empty replies (`kind`: `empty` or the reasoning field that held the text). */
export function emptyReplyDiagnosis(streak: Array<{ id: string; kind: string }>): string {
  const ids =
    streak.length <= 5
      ? streak.map((s) => s.id).join(', ')
      : `${streak
          .map((s) => s.id)
          .slice(0, 5)
          .join(', ')}, …`;
  const n = `${streak.length} episode${streak.length === 1 ? '' : 's'}${streak.length > 1 ? ' in a row' : ''}`;
  const field = streak.find((s) => s.kind !== 'empty')?.kind;
  if (field !== undefined) {
    return `the model's replies carry only ${field} and no content (${n}: ${ids}): disable thinking (--extra '{"chat_template_kwargs":{"enable_thinking":false}}') or raise --max-tokens; stopped without scoring`;
  }
  return `the model replied with empty content (${n}: ${ids}): check the model server, --extra and --max-tokens; stopped without scoring`;
}

export const RUN_FILES = {
  manifest: 'manifest.json',
  runs: 'runs.jsonl',
  errors: 'error.jsonl',
  episodes: 'episodes.jsonl',
  overall: 'overall.json',
  summary: 'summary.json',
  grades: 'grades.jsonl',
} as const;

/** One line of episodes.jsonl: our per-episode figures (rounds, tokens, wall ms). */
export interface EpisodeStatsLine {
  index: number;
  /** Runs with several trials only. */
  trial?: number;
  rounds: number;
  promptTokens: number;
  completionTokens: number;
  ms: number;
}

/** The result of an episode whose tools could not be opened: an agent failure (error.jsonl; `--resume` reruns it). */
function toolsUnavailable(index: number, err: unknown): EpisodeResult {
  const why = err instanceof Error ? err.message : String(err);
  return {
    output: { index, status: 'running', result: null, history: null },
    rounds: 0,
    usage: { promptTokens: 0, completionTokens: 0 },
    ms: 0,
    agentMs: 0,
    fhirMs: 0,
    agentError: `the episode's tools could not be opened: ${why}`,
  };
}

/** One episode of a run: a task, its trial (1-based) and the slot that keys it (`index × trials + trial − 1`). */
interface Slot {
  index: number;
  task: TaskCase;
  trial: number;
  slot: number;
}

export function selectTasks(cases: TaskCase[], families?: string[], limit?: number): Array<{ index: number; task: TaskCase }> {
  let sel = cases.map((task, index) => ({ index, task }));
  if (families && families.length > 0) sel = sel.filter((s) => families.includes(familyOf(s.task.id)));
  if (limit !== undefined) sel = sel.slice(0, limit);
  return sel;
}

/** AgentBench's `time` field. */
export function agentBenchTime(ms: number): { timestamp: number; str: string } {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  const str = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return { timestamp: ms, str };
}

function writeAtomic(path: string, text: string): void {
  writeChunksAtomic(path, [text]);
}

/** Write `chunks` (strings, or bytes written as they are) to `path` atomically, many chunks per writev call. */
function writeChunksAtomic(path: string, chunks: Iterable<string | Buffer>): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    const batch: Buffer[] = [];
    let bytes = 0;
    const flush = () => {
      // writev may write less than asked: continue from where it stopped
      while (batch.length > 0) {
        let n = writevSync(fd, batch);
        while (batch.length > 0 && n >= batch[0].length) n -= batch.shift()!.length;
        if (batch.length > 0) batch[0] = batch[0].subarray(n);
      }
      bytes = 0;
    };
    for (const c of chunks) {
      const b = typeof c === 'string' ? Buffer.from(c, 'utf8') : c;
      if (b.length === 0) continue;
      batch.push(b);
      bytes += b.length;
      if (batch.length >= 1024 || bytes >= 1 << 23) flush();
    }
    flush();
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function buildManifest(opts: EvalOptions): RunManifest {
  const filter: RunManifest['filter'] = {};
  if (opts.families && opts.families.length > 0) filter.families = [...opts.families];
  if (opts.limit !== undefined) filter.limit = opts.limit;
  return {
    harnessVersion: VERSION,
    taskSet: {
      name: opts.taskSet.name,
      sha256: opts.taskSet.sha256,
      count: opts.taskSet.tasks.length,
      // a task file (not a bundled set): where it was, so `generate --collect` and `export --format dpo` can read it
      ...(opts.taskSet.path !== undefined && !BUNDLED_SETS.has(opts.taskSet.name) ? { path: resolve(opts.taskSet.path) } : {}),
    },
    promptTemplateSha256: promptTemplateSha256(),
    functionsSha256: functionsSha256(),
    world: opts.backend.world,
    apiBase: opts.apiBase ?? OFFICIAL_API_BASE,
    protocol: opts.protocol ?? 'text',
    ...(opts.recoverToolText ? { recoverToolText: true } : {}),
    postMode: opts.postMode ?? 'official',
    maxRounds: opts.maxRounds ?? DEFAULT_MAX_ROUNDS,
    ...((opts.trials ?? 1) > 1 ? { trials: opts.trials } : {}),
    agent: { name: opts.agent.name, config: opts.agent.config },
    ...(Object.keys(filter).length > 0 ? { filter } : {}),
  };
}

/** Operational settings that may change between an interrupted run and its resumption. */
export const RESUME_MAY_CHANGE = new Set([
  'taskSet.path',
  'agent.config.maxRetries',
  'agent.config.timeoutMs',
  'agent.config.baseUrls',
  'agent.config.replyCache',
]);

/** A copy of `value` without the fields at the dotted `paths`. */
function withoutPaths(value: unknown, paths: Iterable<string>): unknown {
  const copy = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  for (const p of paths) {
    const keys = p.split('.');
    let o: Record<string, unknown> | undefined = copy;
    for (const k of keys.slice(0, -1)) o = o && typeof o[k] === 'object' && o[k] !== null ? (o[k] as Record<string, unknown>) : undefined;
    if (o) delete o[keys[keys.length - 1]];
  }
  return copy;
}

/**
 * The configuration hash of a run (sha256 hex): its manifest without the shard stamp and without the operational
 * settings a resume may change (`RESUME_MAY_CHANGE`: base URLs, retries, timeout, reply-cache and task-file paths),
 * so every shard of one run carries the same hash wherever it ran.
 */
export function runConfigHash(manifest: RunManifest): string {
  const { shard: _shard, ...rest } = manifest;
  return sha256Hex(canonicalJson(withoutPaths(rest, RESUME_MAY_CHANGE)));
}

/** The manifest of shard `s` of the run `manifest` describes: the run's, then `shard: {index, count, config}`. */
export function stampShard(manifest: RunManifest, s: ShardSpec): RunManifest {
  return { ...manifest, shard: { index: s.index, count: s.count, config: runConfigHash(manifest) } };
}

function manifestDiff(a: unknown, b: unknown, path = ''): string[] {
  if (RESUME_MAY_CHANGE.has(path)) return [];
  if (canonicalJson(a) === canonicalJson(b)) return [];
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
    return [...keys].flatMap((k) => manifestDiff((a as any)[k], (b as any)[k], path ? `${path}.${k}` : k));
  }
  return [path || '(manifest)'];
}

/** Grade one output the official way: only outputs with a non-null result are graded; exceptions count as incorrect. */
export async function gradeOutput(grade: Grader, task: TaskCase, output: TaskOutput, ctx: GraderContext): Promise<GradeResult> {
  if (output.result === null || output.result === undefined) {
    return { correct: false, checks: [{ name: 'graded', pass: false, note: `status ${output.status}: result is None, not graded` }] };
  }
  try {
    return await grade(task, output, ctx);
  } catch (err) {
    return { correct: false, checks: [], exception: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Grades episodes in the background while other episodes run, at a lower priority than theirs: a grade starts only on
 * a turn of the event loop of its own (`setImmediate`), one start per turn, so replies that arrived meanwhile for
 * running episodes are handled first; at most `parallel` grades wait on the FHIR server at once (an external server
 * answers over the network).
 */
class BackgroundGrader {
  private readonly queue: Array<() => Promise<void>> = [];
  private running = 0;
  private starting = false;

  constructor(private readonly parallel: number) {}

  add(run: () => Promise<GradeResult>): Promise<GradeResult> {
    return new Promise<GradeResult>((resolve, reject) => {
      this.queue.push(() => run().then(resolve, reject));
      this.pump();
    });
  }

  private pump(): void {
    if (this.starting || this.running >= this.parallel || this.queue.length === 0) return;
    this.starting = true;
    setImmediate(() => {
      this.starting = false;
      const job = this.queue.shift();
      if (!job) return;
      this.running++;
      void job().finally(() => {
        this.running--;
        this.pump();
      });
      this.pump();
    });
  }
}

/** The graded record of one episode; `rounds` defaults to the agent turns in its history. */
export function gradedEpisode(index: number, task: TaskCase, output: TaskOutput, g: GradeResult, rounds?: number): GradedTask {
  return {
    index,
    id: task.id,
    family: familyOf(task.id),
    status: runStatus(output),
    correct: g.correct,
    grade: g,
    rounds: rounds ?? (output.history ?? []).filter((h) => h.role === 'agent').length,
  };
}

/** The files of a run folder, by role. */
export type RunPaths = Record<keyof typeof RUN_FILES, string>;

export function runPaths(dir: string): RunPaths {
  return Object.fromEntries(Object.entries(RUN_FILES).map(([k, f]) => [k, join(dir, f)])) as RunPaths;
}

/** Stage 1 (open run): the selection, the manifest and what the folder already holds, keyed by slot. */
export interface OpenedRun {
  dir: string;
  paths: RunPaths;
  manifest: RunManifest;
  /** The run part of every episode's session id. */
  runId: string;
  trials: number;
  /** The tasks this invocation answers for (the shard's part of the selection when sharded), in task order. */
  selected: Array<{ index: number; task: TaskCase }>;
  /** Their episodes, in slot order. */
  slots: Slot[];
  /** Episodes on disk (runs.jsonl), agent failures (error.jsonl) and per-episode figures (episodes.jsonl). */
  outputs: Map<number, TaskOutput>;
  agentErrors: Map<number, string>;
  epStats: Map<number, EpisodeStatsLine>;
}

/** The slot that keys an episode: `index × trials + trial − 1` (the task index when trials = 1). */
export function slotKey(index: number, trial: number | undefined, trials: number): number {
  return index * trials + ((trial ?? 1) - 1);
}

/** `trial` in a file's line: only in runs of several trials per task. */
function trialFieldOf(trials: number, trial: number): { trial?: number } {
  return trials > 1 ? { trial } : {};
}

export function openRun(opts: EvalOptions): OpenedRun {
  const dir = opts.out;
  const all = selectTasks(opts.taskSet.tasks, opts.families, opts.limit);
  if (all.length === 0) throw new EvalError('no task matches --tasks-filter/--limit');
  const trials = opts.trials ?? 1;
  if (!Number.isSafeInteger(trials) || trials < 1) throw new EvalError(`--trials: expected a positive integer, got ${trials}`);
  // a shard answers for every count-th task of the selection (all trials of a task stay in one shard)
  const selected = opts.shard ? all.filter((_, p) => inShard(p, opts.shard!)) : all;
  // every episode to run: a task and a trial; `slot` keys what the run records (the task index when trials = 1)
  const slots: Slot[] = selected.flatMap((s) => Array.from({ length: trials }, (_, t) => ({ ...s, trial: t + 1, slot: slotKey(s.index, t + 1, trials) })));
  const manifest = opts.shard ? stampShard(buildManifest(opts), opts.shard) : buildManifest(opts);
  // Session ids: run + task index. The run part covers what shapes an episode's environment (task set, api_base, POST
  // mode, rounds) but not the agent or where the FHIR data lives, so a replay, or the same run against the embedded
  // world or an external ehrgym server, produces the same session ids and so byte-identical transcripts.
  const runId = sha256Hex(
    canonicalJson({
      taskSet: manifest.taskSet,
      apiBase: manifest.apiBase,
      postMode: manifest.postMode,
      maxRounds: manifest.maxRounds,
    }),
  ).slice(0, 12);
  const paths = runPaths(dir);

  mkdirSync(dir, { recursive: true });
  // ---- the run folder: fresh, or resumed under the same manifest
  const hasRuns = existsSync(paths.runs) && statSync(paths.runs).size > 0;
  if (existsSync(paths.manifest)) {
    let old: unknown;
    try {
      old = JSON.parse(readFileSync(paths.manifest, 'utf8'));
    } catch {
      throw new EvalError(`${paths.manifest}: not valid JSON`);
    }
    if (!opts.resume) {
      throw new EvalError(`${dir} already holds a run; pass --resume to continue it or choose another --out`);
    }
    // run folders from before protocols were a choice are text runs
    if (old && typeof old === 'object' && !('protocol' in old)) (old as Record<string, unknown>).protocol = 'text';
    const diff = manifestDiff(old, manifest);
    if (diff.length > 0) {
      throw new EvalError(`--resume refused: the run in ${dir} was made with a different ${diff.join(', ')}`);
    }
  } else if (hasRuns) {
    throw new EvalError(`${dir} holds a runs.jsonl without manifest.json; choose another --out`);
  }
  writeAtomic(paths.manifest, JSON.stringify(manifest, null, 2) + '\n');

  // read back what an interrupted run left: a torn last line is cut off, a bad line elsewhere is an error
  const readBack = <T>(path: string) => {
    try {
      const r = readJsonl<T>(path, { tolerateTornTail: true });
      if (r.torn) truncateTo(path, r.validBytes);
      return r;
    } catch (err) {
      if (err instanceof JsonlError) throw new EvalError(`--resume: ${err.message}`);
      throw err;
    }
  };
  const runs = readBack<RunsLine>(paths.runs);
  const stats = readBack<EpisodeStatsLine>(paths.episodes);
  const errs = readBack<RunsLine>(paths.errors);

  // everything below is keyed by slot (task index and trial)
  const outputs = new Map<number, TaskOutput>();
  for (const r of runs.records) {
    const idx = r.value?.output?.index ?? r.value?.index;
    if (typeof idx !== 'number') throw new EvalError(`${paths.runs}:${r.line}: no task index`);
    const slot = slotKey(idx, (r.value as { trial?: number }).trial, trials);
    if (!outputs.has(slot)) outputs.set(slot, r.value.output);
  }
  const agentErrors = new Map<number, string>();
  for (const r of errs.records) {
    if (typeof r.value?.index === 'number') agentErrors.set(slotKey(r.value.index, (r.value as { trial?: number }).trial, trials), String(r.value.info ?? ''));
  }
  const epStats = new Map<number, EpisodeStatsLine>();
  // one line per finished episode, its latest: an episode whose runs line never made it (killed between the writes,
  // or cut off with a torn runs.jsonl) runs again and writes its stats again, so its old line goes
  for (const r of stats.records) {
    const slot = slotKey(r.value.index, r.value.trial, trials);
    if (outputs.has(slot)) epStats.set(slot, r.value);
  }
  const kept = stats.records.map((r) => r.value).filter((v) => epStats.get(slotKey(v.index, v.trial, trials)) === v);
  if (kept.length !== stats.records.length) writeAtomic(paths.episodes, kept.map((v) => `${JSON.stringify(v)}\n`).join(''));
  return { dir, paths, manifest, runId, trials, selected, slots, outputs, agentErrors, epStats };
}

/** Stage 2 (episodes): what running the missing episodes left behind. */
export interface EpisodesOutcome {
  /** Task indices whose agent failed in this invocation. */
  failed: number[];
  ran: number;
  stopped?: string;
  interrupted: boolean;
  /** Grades started as episodes finished (`gradeAsYouGo`), by slot. */
  pendingGrades: Map<number, Promise<GradeResult>>;
}

/**
 * Runs every episode of `run` that the folder does not hold yet on `opts.concurrency` workers, appending runs.jsonl,
 * episodes.jsonl and error.jsonl; `run.outputs`, `run.agentErrors` and `run.epStats` are updated as episodes finish.
 */
export async function runEpisodes(run: OpenedRun, opts: EvalOptions): Promise<EpisodesOutcome> {
  const { paths, runId, trials, selected, slots, outputs, agentErrors, epStats } = run;
  const apiBase = opts.apiBase ?? OFFICIAL_API_BASE;
  const postMode = opts.postMode ?? 'official';
  const maxRounds = opts.maxRounds ?? DEFAULT_MAX_ROUNDS;
  const concurrency = Math.max(1, opts.concurrency ?? 1);
  const protocol = opts.protocol ?? 'text';
  const trialField = (trial: number) => trialFieldOf(trials, trial);
  const todo = new EpisodeScheduler(
    slots.filter((s) => !outputs.has(s.slot)),
    concurrency,
  );
  const todoCount = todo.remaining;
  const runsOut = new JsonlAppender(paths.runs, opts.fsync ?? true);
  const statsOut = new JsonlAppender(paths.episodes, opts.fsync ?? true);
  const errOut = new JsonlAppender(paths.errors, opts.fsync ?? true);
  /** Grading started as soon as an episode finishes, overlapping the model-bound wait of the other episodes. */
  const pendingGrades = new Map<number, Promise<GradeResult>>();
  const background = new BackgroundGrader(Math.max(1, Math.min(8, concurrency)));
  const gradeCtx: GraderContext = { apiBase, fhir: opts.backend.base, openSession: (name) => opts.backend.openSession(name) };

  const showBar = opts.progress ?? Boolean(process.stderr.isTTY);
  const bar = showBar
    ? new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: 'eval {bar} {value}/{total} episodes | agent failures {failed} | {duration_formatted} (eta {eta_formatted})',
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(selected.length, selected.length - todoCount, { failed: 0 });

  const failed: number[] = [];
  let ran = 0;
  const signal = opts.signal;
  // the run's signal gets one listener, which aborts every running episode (one listener per episode would pass
  // Node's listener limit at any concurrency above 10)
  const live = new Set<AbortController>();
  const abortAll = () => {
    for (const c of live) c.abort();
  };
  signal?.addEventListener('abort', abortAll, { once: true });
  // A broken endpoint is stopped, not scored: a reply that is not a chat completion stops the run at once; episodes
  // ending on an empty reply are held back, and `streakLimit` of them in a row (completion order) stop the run
  // without being recorded (`--resume` runs them again); a shorter streak is recorded when any other episode ends.
  let stopped: string | undefined;
  const halted = () => signal?.aborted === true || stopped !== undefined;
  const stop = (why: string) => {
    if (stopped !== undefined) return;
    stopped = why;
    abortAll();
  };
  const streakLimit = opts.emptyReplyStreak === 0 ? Infinity : Math.min(opts.emptyReplyStreak ?? EMPTY_REPLY_STREAK, Math.max(1, todoCount));
  let held: Array<{ item: Slot; res: EpisodeResult }> = [];
  const record = (item: Slot, res: EpisodeResult): void => {
    const { index, task, trial, slot } = item;
    const st: EpisodeStatsLine = {
      index,
      ...trialField(trial),
      rounds: res.rounds,
      promptTokens: res.usage.promptTokens,
      completionTokens: res.usage.completionTokens,
      ms: Math.round(res.ms),
    };
    // the stats line first: a kill between the two writes leaves a stats line without its episode, which resume
    // drops and the rerun writes again (the other order would lose the episode's stats for good)
    statsOut.append(st);
    // AgentBench's line, its messages from the bytes the request bodies already made (each message is serialised
    // once per episode; overall.json reuses them too)
    runsOut.appendParts(runsLineParts(index, res.output, agentBenchTime(Date.now()), trialField(trial).trial));
    todo.observe(item, res.rounds);
    outputs.set(slot, res.output);
    if (opts.gradeAsYouGo !== false) {
      const output = res.output;
      pendingGrades.set(
        slot,
        background.add(() => gradeOutput(opts.grade, task, output, gradeCtx)),
      );
    }
    epStats.set(slot, st);
    ran++;
    bar?.increment(1, {});
    opts.onEpisode?.({ index, id: task.id, status: runStatus(res.output) });
  };
  const releaseHeld = () => {
    for (const h of held) record(h.item, h.res);
    held = [];
  };
  const worker = async (): Promise<void> => {
    while (!halted()) {
      const item = todo.next();
      if (!item) return;
      const { index, task, trial, slot } = item;
      const sessionId = trials > 1 ? `${runId}-${index}-${trial}` : `${runId}-${index}`;
      const session = await opts.backend.openSession(sessionId);
      // one abort signal per episode, linked to the run's: clients may attach a listener per request to it
      const episodeAbort = new AbortController();
      setMaxListeners(64, episodeAbort.signal);
      live.add(episodeAbort);
      if (halted()) episodeAbort.abort();
      let res: EpisodeResult;
      try {
        if (protocol === 'text') {
          res = await runEpisode({
            index,
            task,
            agent: opts.agent,
            fhir: session.transport,
            apiBase,
            maxRounds,
            postMode,
            prompt: renderPrompt(task, { apiBase, dialect: taskDialect(task) }),
            jsonLoads: opts.jsonLoads,
            signal: episodeAbort.signal,
          });
        } else {
          let env: ToolEnvironment | Error;
          try {
            env = opts.toolEnvironment
              ? await opts.toolEnvironment({ index, sessionId, session, task })
              : directToolEnvironment({ fhir: session.transport, postMode, jsonLoads: opts.jsonLoads, dialect: taskDialect(task) });
          } catch (err) {
            // the episode's tools could not be reached (e.g. the MCP endpoint): an agent failure of this episode,
            // recorded in error.jsonl and run again by --resume, not the end of the run
            env = err instanceof Error ? err : new Error(String(err));
          }
          if (env instanceof Error) res = toolsUnavailable(index, env);
          else {
            try {
              res = await runToolsEpisode({
                index,
                task,
                agent: opts.agent,
                env,
                apiBase,
                maxRounds,
                recoverToolText: opts.recoverToolText,
                signal: episodeAbort.signal,
              });
            } finally {
              await env.close?.();
            }
          }
        }
      } finally {
        live.delete(episodeAbort);
        await session.close();
      }
      if (res.agentError !== undefined) {
        if (halted()) return; // interrupted or stopped mid-call: not a failure, rerun on resume
        if (res.endpointError) {
          stop(res.agentError);
          return;
        }
        if (!failed.includes(index)) failed.push(index);
        agentErrors.set(slot, res.agentError);
        errOut.appendText(
          errorLine({
            index,
            ...trialField(trial),
            error: 'AGENT_FAILED',
            info: res.agentError,
            output: { index: null, status: 'running', result: null, history: null },
            time: agentBenchTime(Date.now()),
          } satisfies RunsLine),
        );
        bar?.increment(1, { failed: failed.length });
        opts.onEpisode?.({ index, id: task.id, status: 'agent failed' });
        continue;
      }
      if (res.emptyReply !== undefined && streakLimit !== Infinity) {
        held.push({ item, res });
        if (held.length >= streakLimit) stop(emptyReplyDiagnosis(held.map((h) => ({ id: h.item.task.id, kind: h.res.emptyReply! }))));
        continue;
      }
      releaseHeld();
      record(item, res);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, todoCount)) }, worker));
    if (stopped === undefined) releaseHeld();
  } finally {
    signal?.removeEventListener('abort', abortAll);
    bar?.stop();
    await Promise.all([runsOut.close(), statsOut.close(), errOut.close()]);
  }
  return { failed, ran, stopped, interrupted: signal?.aborted === true, pendingGrades };
}

/**
 * Grading: episodes of this invocation were graded as they finished (workers never wait for it); outputs loaded from
 * an earlier invocation (resume) are graded now, in task order. Returns every finished episode's verdict by slot.
 */
export async function gradeEpisodes(run: OpenedRun, opts: EvalOptions, pendingGrades: Map<number, Promise<GradeResult>>): Promise<Map<number, GradeResult>> {
  const grades = new Map<number, GradeResult>();
  const gradeCtx: GraderContext = { apiBase: opts.apiBase ?? OFFICIAL_API_BASE, fhir: opts.backend.base };
  const concurrency = Math.max(1, opts.concurrency ?? 1);
  for (const [slot, p] of pendingGrades) grades.set(slot, await p);
  const toGrade = run.slots.filter((s) => run.outputs.has(s.slot) && !grades.has(s.slot));
  let gi = 0;
  const gradeWorker = async () => {
    for (let i = gi++; i < toGrade.length; i = gi++) {
      const { slot, task } = toGrade[i];
      grades.set(slot, await gradeOutput(opts.grade, task, run.outputs.get(slot)!, gradeCtx));
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, concurrency) }, gradeWorker));
  return grades;
}

/** Stage 3 (finish): everything the derived files are made of, keyed by slot. */
export interface FinishInput {
  paths: RunPaths;
  manifest: RunManifest;
  trials: number;
  /** Every episode of the selection, in slot order (`id`: the task's id). */
  slots: ReadonlyArray<{ index: number; trial: number; slot: number; id: string }>;
  outputs: ReadonlyMap<number, TaskOutput>;
  /** A verdict for every slot in `outputs`. */
  grades: ReadonlyMap<number, GradeResult>;
  agentErrors: ReadonlyMap<number, string>;
  epStats: ReadonlyMap<number, EpisodeStatsLine>;
  /** summary.json's wallMs (asked for once overall.json and grades.jsonl are written). */
  wallMs: () => number;
}

/**
 * Writes overall.json, grades.jsonl and summary.json (atomically, in task order) over everything the folder holds
 * for the selection. `ehrgym merge` runs this stage over the union of a run's shards.
 */
export function finishRun(input: FinishInput): RunSummary & { agentFailures: number } {
  const { paths, manifest, trials, slots, outputs, grades, agentErrors, epStats } = input;
  const trialField = (trial: number) => trialFieldOf(trials, trial);
  const graded: GradedTask[] = [];
  const gradedSlots: number[] = [];
  const finished: TaskOutput[] = [];
  const passed = new Set<TaskOutput>();
  for (const { index, id, trial, slot } of slots) {
    const out = outputs.get(slot);
    if (!out) {
      // the agent failed (error.jsonl): incorrect, listed so reports see every attempted task
      if (agentErrors.has(slot)) {
        gradedSlots.push(slot);
        graded.push({
          index,
          ...trialField(trial),
          id,
          family: familyOf(id),
          status: 'running',
          correct: false,
          grade: { correct: false, checks: [{ name: 'agent', pass: false, note: `AGENT_FAILED: ${agentErrors.get(slot)}` }] },
          rounds: 0,
        });
      }
      continue;
    }
    const g = grades.get(slot)!;
    const st = epStats.get(slot);
    finished.push(out);
    if (g.correct) passed.add(out);
    gradedSlots.push(slot);
    const { index: _i, ...ge } = gradedEpisode(index, { id } as TaskCase, out, g, st?.rounds);
    graded.push({
      index,
      ...trialField(trial),
      ...ge,
      ...(st ? { promptTokens: st.promptTokens, completionTokens: st.completionTokens, ms: st.ms } : {}),
    });
  }
  const overall = agentBenchOverall(finished, (o) => passed.has(o));
  writeChunksAtomic(paths.overall, overallChunks(overall));
  writeAtomic(paths.grades, graded.map((g) => JSON.stringify(g)).join('\n') + (graded.length ? '\n' : ''));
  // scores over episodes (pass@1 = the mean over trials); with trials, pass@k and pass^k over tasks
  const ranOk = graded.map((g, i) => ({ ...g, index: gradedSlots[i] })).filter((g) => outputs.has(g.index));
  const summary = summarize(
    ranOk,
    slots.map((s) => ({ index: s.slot, id: s.id })),
    manifest,
    input.wallMs(),
  );
  const tasks = slots.filter((s) => s.trial === 1);
  const finalSummary =
    trials > 1
      ? {
          ...summary,
          trialStats: trialStats(
            tasks.map((s) => ({
              id: s.id,
              outcomes: Array.from({ length: trials }, (_, t) => grades.get(slotKey(s.index, t + 1, trials))?.correct === true),
            })),
            trials,
          ),
        }
      : summary;
  writeAtomic(paths.summary, JSON.stringify(finalSummary, null, 2) + '\n');
  return finalSummary;
}

/** open run → episodes → grading → finish. */
export async function runEval(opts: EvalOptions): Promise<EvalResult> {
  const t0 = performance.now();
  const run = openRun(opts);
  const { dir } = run;
  const ep = await runEpisodes(run, opts);
  const { failed, ran } = ep;
  const tEpisodes = performance.now();
  if (ep.stopped !== undefined) {
    await Promise.allSettled(ep.pendingGrades.values());
    return { dir, interrupted: false, stopped: ep.stopped, failed, ran, timing: { episodesMs: tEpisodes - t0, gradingMs: 0, filesMs: 0 } };
  }
  if (ep.interrupted) {
    await Promise.allSettled(ep.pendingGrades.values());
    return { dir, interrupted: true, failed, ran, timing: { episodesMs: tEpisodes - t0, gradingMs: 0, filesMs: 0 } };
  }
  const grades = await gradeEpisodes(run, opts, ep.pendingGrades);
  const tGraded = performance.now();

  // ---- derived files over everything the folder holds for the selection
  const finalSummary = finishRun({
    paths: run.paths,
    manifest: run.manifest,
    trials: run.trials,
    slots: run.slots.map((s) => ({ index: s.index, trial: s.trial, slot: s.slot, id: s.task.id })),
    outputs: run.outputs,
    grades,
    agentErrors: run.agentErrors,
    epStats: run.epStats,
    wallMs: () => Math.round(performance.now() - t0),
  });
  const stillFailed = [...new Set(run.slots.filter((s) => !run.outputs.has(s.slot)).map((s) => s.index))];
  const tEnd = performance.now();
  return {
    dir,
    summary: finalSummary,
    interrupted: false,
    failed: stillFailed,
    ran,
    timing: { episodesMs: tEpisodes - t0, gradingMs: tGraded - tEpisodes, filesMs: tEnd - tGraded },
  };
}
