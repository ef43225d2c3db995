/**
 * The environment core shared by the ORS and OpenEnv surfaces (docs/env.md): task splits, environment sessions (one cap
 * for every surface, idle reaping) and episodes.
 *
 * - An environment session is what a client holds: an ORS session id (from `/create`), an OpenEnv WebSocket, an
 *   OpenEnv `/mcp` session. At most `maxSessions` are live at once, whatever the surface; opening one more is a
 *   `CapacityError`. A session untouched for `idleTimeoutMs` is reaped (its episode dropped, its socket closed).
 * - An episode is one task on a fresh copy-on-write session of its world's FHIR store: tool calls are mapped onto the
 *   text protocol's actions (src/protocol/tools.ts) and executed in that session (POSTs live), and the episode records
 *   the text-protocol history exactly as the tools protocol does (src/agent/tools-loop.ts), so `finish` is graded by
 *   the family's grader as an eval run would be. The reward is 1 or 0; the reward components are the grader's named
 *   checks. Finishing, closing or reaping drops the FHIR session (O(1)); the base world never changes.
 * - The FHIR session of an episode is named after its task (`env-task5_21`, `.2`, `.3`… while others of the same task
 *   are live), so an episode's observations (searchset ids depend on the session name) are the same bytes every time
 *   it runs alone.
 */
import type { FhirStore } from '../fhir/store.js';
import type { FhirBackend, EpisodeSession } from '../eval/backend.js';
import type { GradeResult, HistoryItem, TaskCase, TaskOutput } from '../tasks/types.js';
import { getFamily } from '../tasks/registry.js';
import { validateTasks, TaskSetError } from '../tasks/loader.js';
import { pyJsonDumps } from '../tasks/pysem.js';
import { executeAction, defaultJsonLoads } from '../agent/loop.js';
import { formatAction } from '../protocol/text.js';
import { MEDAGENTBENCH_DIALECT, taskDialect } from '../protocol/dialect.js';
import { callToAction, renderToolsPrompt, toolErrorText, toolErrorTurn, toolNames, toolSpecs, type ToolSpec } from '../protocol/tools.js';
import { taskRecord, type Split } from './tasks.js';
import { checkReplicaId, mintSessionId } from '../fhir/replica.js';

export const DEFAULT_MAX_SESSIONS = 10_000;
/** Idle sessions are reaped after 900 s, as the ORS reference server does. */
export const DEFAULT_IDLE_TIMEOUT_S = 900;
/** Tool calls per episode; the call that reaches it without `finish` ends the episode with reward 0. */
export const DEFAULT_MAX_STEPS = 100;

export type Surface = 'ors' | 'ws' | 'mcp';

/** The environment's name (ORS lists it; its class name lower-cased in the reference server). */
export const ENV_NAME = 'medagentbench';

/** A world the environment serves episodes on. */
export interface EnvWorld {
  key: string;
  store: FhirStore;
  backend: FhirBackend;
}

export interface EnvOptions {
  splits: Split[];
  worlds: EnvWorld[];
  apiBase: string;
  maxSessions?: number;
  idleTimeoutMs?: number;
  maxSteps?: number;
  /** Prefix of the session ids the server mints (`<replicaId>.<UUID>`), for a load balancer in front of replicas (docs/scale.md). */
  replicaId?: string;
  /** Milliseconds clock (tests). */
  now?: () => number;
}

/** Opening a session beyond `maxSessions`. */
export class CapacityError extends Error {
  constructor(
    readonly active: number,
    readonly max: number,
  ) {
    super(`Server at capacity: ${active}/${max} sessions active. Cannot accept new connections.`);
    this.name = 'CapacityError';
  }
}

/** A request naming a split, index or task the environment does not have. */
export class TaskRefError extends Error {
  constructor(
    readonly kind: 'split' | 'index' | 'task',
    message: string,
  ) {
    super(message);
    this.name = 'TaskRefError';
  }
}

/** What an episode is for: a split and index, a task id, or a full task record. */
export type TaskRef = { split: string; index: number } | { taskId: string } | { spec: unknown };

/** The answer to one tool call. */
export type StepOutcome =
  | {
      ok: true;
      /** The observation text (what the tools protocol answers; for `finish`, the verdict explanation). */
      text: string;
      finished: boolean;
      /** 1 or 0 once finished, else null. */
      reward: number | null;
      /** The grader's named checks once finished, else null. */
      components: Record<string, boolean> | null;
      explanation: string | null;
    }
  | { ok: false; error: string; errorType: 'tool_not_found' | 'invalid_args' | 'finished' };

export class Episode {
  readonly history: HistoryItem[];
  steps = 0;
  finished = false;
  reward: number | null = null;
  components: Record<string, boolean> | null = null;
  explanation: string | null = null;
  grade: GradeResult | null = null;
  /** Calls of one episode run one after another. */
  queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly task: TaskCase,
    readonly split: string | null,
    readonly index: number | null,
    readonly prompt: string,
    readonly world: EnvWorld,
    public fhir: EpisodeSession | null,
  ) {
    this.history = [{ role: 'user', content: prompt }];
  }

  get taskId(): string {
    return this.task.id;
  }
}

export class EnvSession {
  episode: Episode | null = null;
  /** Episodes started in this session (the OpenEnv state's episode count). */
  episodes = 0;
  closed = false;
  /** Called when the session is reaped or closed by the server (e.g. to close its socket). */
  onClose: (() => void) | undefined;

  constructor(
    readonly id: string,
    readonly surface: Surface,
    public lastActive: number,
  ) {}
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  try {
    return pyJsonDumps(v);
  } catch {
    return String(v);
  }
}

/** The reward components: each check's name → pass (a repeated name gets `#2`, `#3`…). */
export function rewardComponents(grade: GradeResult): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const c of grade.checks) {
    let name = c.name;
    for (let n = 2; Object.hasOwn(out, name); n++) name = `${c.name}#${n}`;
    out[name] = c.pass;
  }
  return out;
}

/** One line explaining a verdict: the branch and the first failing check with what it compared. */
export function explainGrade(grade: GradeResult): string {
  const branch = grade.branch ? ` (branch ${grade.branch})` : '';
  if (grade.correct) return `correct${branch}: ${grade.checks.length} check${grade.checks.length === 1 ? '' : 's'} passed`;
  if (grade.exception) return `incorrect${branch}: the grader raised ${grade.exception.split('\n')[0]}`;
  const f = grade.checks.find((c) => !c.pass);
  if (!f) return `incorrect${branch}`;
  const note = f.note ? ` (${f.note})` : '';
  return `incorrect${branch}: check "${f.name}" failed: expected ${show(f.expected)}, got ${show(f.actual)}${note}`;
}

export class EnvCore {
  readonly splits: ReadonlyMap<string, Split>;
  readonly apiBase: string;
  readonly maxSessions: number;
  readonly idleTimeoutMs: number;
  readonly maxSteps: number;
  readonly replicaId: string | undefined;
  private readonly worlds: Map<string, EnvWorld>;
  private readonly byId = new Map<string, { split: Split; index: number }>();
  private readonly sessions = new Map<string, EnvSession>();
  private readonly now: () => number;
  private reaper: NodeJS.Timeout | undefined;
  private nextTrain = 0;
  private readonly defaultWorld: EnvWorld;

  constructor(opts: EnvOptions) {
    this.splits = new Map(opts.splits.map((s) => [s.name, s]));
    this.worlds = new Map(opts.worlds.map((w) => [w.key, w]));
    this.apiBase = opts.apiBase;
    this.maxSessions = opts.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_S * 1000;
    this.maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
    this.replicaId = opts.replicaId === undefined ? undefined : checkReplicaId(opts.replicaId);
    this.now = opts.now ?? (() => performance.now());
    for (const s of opts.splits) {
      if (!this.worlds.has(s.world)) throw new Error(`split ${s.name}: world ${s.world} is not loaded`);
      s.tasks.forEach((t, i) => this.byId.set(t.id, { split: s, index: i }));
    }
    const first = opts.worlds[0];
    if (!first) throw new Error('the environment needs a world');
    this.defaultWorld = first;
    // an episode holds at most one FHIR session, so the stores never refuse one the environment admitted
    for (const w of opts.worlds) if (w.store.maxSessions < this.maxSessions) w.store.maxSessions = this.maxSessions;
  }

  // ------------------------------------------------------------------ tasks

  /** The worlds episodes run on (the first is the one full task specs run on). */
  worldList(): EnvWorld[] {
    return [...this.worlds.values()];
  }

  splitList(): Split[] {
    return [...this.splits.values()];
  }

  split(name: string): Split {
    const s = this.splits.get(name);
    if (!s) throw new TaskRefError('split', 'Invalid split');
    return s;
  }

  task(split: string, index: number): TaskCase {
    const s = this.split(split);
    if (!Number.isInteger(index) || index < 0 || index >= s.tasks.length) throw new TaskRefError('index', 'Invalid index');
    return s.tasks[index]!;
  }

  /** Python slice semantics (`tasks[start:stop]`). */
  taskRange(split: string, start: number | null, stop: number | null): TaskCase[] {
    const s = this.split(split);
    const n = s.tasks.length;
    const norm = (v: number | null, dflt: number) => (v === null ? dflt : v < 0 ? Math.max(0, n + v) : Math.min(v, n));
    return s.tasks.slice(norm(start, 0), Math.max(norm(start, 0), norm(stop, n)));
  }

  /** A new session id (ORS `create_session`, OpenEnv sessions): a random UUID, `<replicaId>.<UUID>` with a replica id. */
  mintId(): string {
    return mintSessionId(this.replicaId);
  }

  /** The next `train` task in order (wrapping), for resets that name no task. */
  nextTrainRef(): TaskRef {
    const s = this.splits.get('train');
    const pick = s && s.tasks.length > 0 ? s : this.splitList().find((x) => x.tasks.length > 0);
    if (!pick) throw new TaskRefError('split', 'no split has tasks');
    const index = this.nextTrain++ % pick.tasks.length;
    return { split: pick.name, index };
  }

  /** Throws TaskRefError unless `ref` names a task (nothing is opened). */
  checkRef(ref: TaskRef): void {
    this.resolve(ref);
  }

  private resolve(ref: TaskRef): { task: TaskCase; split: string | null; index: number | null; world: EnvWorld } {
    if ('split' in ref) {
      const task = this.task(ref.split, ref.index);
      return { task, split: ref.split, index: ref.index, world: this.worlds.get(this.split(ref.split).world)! };
    }
    if ('taskId' in ref) {
      const at = this.byId.get(ref.taskId);
      if (!at) throw new TaskRefError('task', `Unknown task id ${JSON.stringify(ref.taskId)}`);
      return { task: at.split.tasks[at.index]!, split: at.split.name, index: at.index, world: this.worlds.get(at.split.world)! };
    }
    // a task spec: an id the server has (`{id}` / `{task_id}`), or a full task record run on the replica
    const spec = ref.spec;
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new TaskRefError('task', 'task_spec must be an object');
    const o = spec as Record<string, unknown>;
    const id = typeof o.task_id === 'string' ? o.task_id : typeof o.id === 'string' ? o.id : undefined;
    // a task the server has, named by id (the records clients list carry no answers): the server's own record
    if (id !== undefined && this.byId.has(id)) return this.resolve({ taskId: id });
    if (!('instruction' in o) && id !== undefined) return this.resolve({ taskId: id });
    let task: TaskCase;
    try {
      task = taskRecord(validateTasks([spec], 'task_spec')[0]!);
    } catch (e) {
      if (e instanceof TaskSetError) throw new TaskRefError('task', e.message);
      throw e;
    }
    const known = this.byId.get(task.id);
    const world = known ? this.worlds.get(known.split.world)! : this.defaultWorld;
    return { task, split: null, index: null, world };
  }

  // ------------------------------------------------------------------ sessions

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** Open an environment session. Throws CapacityError at `maxSessions`. */
  open(id: string, surface: Surface): EnvSession {
    if (this.sessions.size >= this.maxSessions) throw new CapacityError(this.sessions.size, this.maxSessions);
    const s = new EnvSession(id, surface, this.now());
    this.sessions.set(key(surface, id), s);
    this.startReaper();
    return s;
  }

  get(id: string, surface: Surface): EnvSession | undefined {
    return this.sessions.get(key(surface, id));
  }

  has(id: string, surface: Surface): boolean {
    return this.sessions.has(key(surface, id));
  }

  /** Mark a session active now (ping, any request on it). */
  touch(s: EnvSession): void {
    s.lastActive = this.now();
  }

  /** Close a session and drop its episode's FHIR session. Idempotent. */
  async close(s: EnvSession): Promise<void> {
    if (s.closed) return;
    s.closed = true;
    this.sessions.delete(key(s.surface, s.id));
    const ep = s.episode;
    s.episode = null;
    if (ep) await this.dropFhir(ep);
    if (this.sessions.size === 0) this.stopReaper();
  }

  /** Reap sessions idle for longer than `idleTimeoutMs`. Returns how many. */
  async reap(): Promise<number> {
    const now = this.now();
    const stale = [...this.sessions.values()].filter((s) => now - s.lastActive > this.idleTimeoutMs);
    for (const s of stale) {
      await this.close(s);
      s.onClose?.();
    }
    return stale.length;
  }

  private startReaper(): void {
    if (this.reaper) return;
    // ORS checks every 5 s; a short timeout is checked four times per timeout
    const every = Math.max(10, Math.min(5000, this.idleTimeoutMs / 4));
    this.reaper = setInterval(() => void this.reap(), every);
    this.reaper.unref();
  }

  private stopReaper(): void {
    if (this.reaper) clearInterval(this.reaper);
    this.reaper = undefined;
  }

  /** Close every session (server shutdown). */
  async shutdown(): Promise<void> {
    for (const s of [...this.sessions.values()]) {
      await this.close(s);
      s.onClose?.();
    }
    this.stopReaper();
  }

  // ------------------------------------------------------------------ episodes

  /** Start an episode in a session (ending the one it had): a fresh FHIR session, the prompt, the tools. */
  async reset(s: EnvSession, ref: TaskRef): Promise<Episode> {
    const r = this.resolve(ref);
    const old = s.episode;
    s.episode = null;
    if (old) await this.dropFhir(old);
    const fhir = await r.world.backend.openSession(`env-${r.task.id}`.slice(0, 64));
    const ep = new Episode(r.task, r.split, r.index, renderToolsPrompt(r.task), r.world, fhir);
    if (s.closed) {
      await this.dropFhir(ep);
      throw new Error('the session was closed');
    }
    s.episode = ep;
    s.episodes++;
    this.touch(s);
    return ep;
  }

  /** The tools of an episode's dialect (`taskDialect`; MedAgentBench's without an episode). */
  tools(ep?: { task: TaskCase } | null): readonly ToolSpec[] {
    return toolSpecs(ep ? taskDialect(ep.task) : MEDAGENTBENCH_DIALECT);
  }

  /**
   * One tool call in the session's episode. `argsText` is the JSON text of the arguments (floats as written). Calls of
   * an episode are answered in the order they arrive.
   */
  call(s: EnvSession, name: string, argsText: string): Promise<StepOutcome> {
    const ep = s.episode;
    this.touch(s);
    if (!ep) return Promise.resolve({ ok: false, error: 'no episode: reset the session first', errorType: 'finished' });
    const run = ep.queue.then(() => this.step(ep, name, argsText));
    ep.queue = run.catch(() => undefined);
    return run;
  }

  private async step(ep: Episode, name: string, argsText: string): Promise<StepOutcome> {
    if (ep.finished) return { ok: false, error: `the episode of ${ep.taskId} is finished`, errorType: 'finished' };
    // closed or reaped while this call waited for the one before it
    if (!ep.fhir) return { ok: false, error: `the episode of ${ep.taskId} is closed`, errorType: 'finished' };
    ep.steps++;
    const dialect = taskDialect(ep.task);
    const outcome = callToAction(name, argsText, this.apiBase, dialect);
    let result: StepOutcome;
    if (!outcome.ok) {
      ep.history.push({ role: 'agent', content: toolErrorTurn(name, argsText) });
      const error = toolErrorText(outcome.error);
      ep.history.push({ role: 'user', content: error });
      result = { ok: false, error, errorType: toolNames(dialect).includes(name) ? 'invalid_args' : 'tool_not_found' };
    } else {
      ep.history.push({ role: 'agent', content: formatAction(outcome.action) });
      if (outcome.action.kind === 'finish') return this.finish(ep, outcome.action.answer);
      const text = await executeAction(outcome.action, { fhir: ep.fhir!.transport, postMode: 'live', jsonLoads: defaultJsonLoads });
      ep.history.push({ role: 'user', content: text });
      result = { ok: true, text, finished: false, reward: null, components: null, explanation: null };
    }
    if (ep.steps >= this.maxSteps) {
      ep.finished = true;
      ep.reward = 0;
      ep.components = {};
      ep.explanation = `step limit reached: ${this.maxSteps} tool calls without finish`;
      await this.dropFhir(ep);
      const text = result.ok ? result.text : result.error;
      return { ok: true, text, finished: true, reward: 0, components: {}, explanation: ep.explanation };
    }
    return result;
  }

  private async finish(ep: Episode, answer: string): Promise<StepOutcome> {
    const output: TaskOutput = { index: ep.index, status: 'completed', result: answer, history: ep.history };
    const backend = ep.world.backend;
    const grade = await getFamily(ep.taskId).grade(ep.task, output, {
      apiBase: this.apiBase,
      fhir: backend.base,
      openSession: (name) => backend.openSession(name),
    });
    ep.finished = true;
    ep.grade = grade;
    ep.reward = grade.correct ? 1 : 0;
    ep.components = rewardComponents(grade);
    ep.explanation = explainGrade(grade);
    await this.dropFhir(ep);
    return { ok: true, text: ep.explanation, finished: true, reward: ep.reward, components: ep.components, explanation: ep.explanation };
  }

  private async dropFhir(ep: Episode): Promise<void> {
    const f = ep.fhir;
    ep.fhir = null;
    if (f) await f.close();
  }
}

function key(surface: Surface, id: string): string {
  return `${surface}\u0000${id}`;
}
