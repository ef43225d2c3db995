/**
 * Helpers shared by the family modules: the exact strings of the harness, the expert-solver script runner,
 * payload builders (payloads known to pass the official grader; docs/tasks.md) and generator utilities.
 */
import { OFFICIAL_API_BASE } from '../fhir/types.js';
import type {
  AuditHooks,
  DetectorHints,
  FactoryHints,
  GenerateOptions,
  GeneratedTask,
  HistoryItem,
  RandomSource,
  SolveOptions,
  TaskCase,
  TaskFamily,
  WorldAccess,
} from './types.js';
import { PyFloat, pyCompare, pyDictGet, pyFromIsoFormat, pyIter, pyJsonDumps, pyJsonLoads, pyPath, PyException, type PyDateTime } from './pysem.js';
import { CUTOFF_24H, getJsonData, runGrader, sendGetRequest, scanLatest, type AssertSpec, type LatestScan } from './refsol.js';
import { POST_ACCEPTED_MARK, PUT_ACCEPTED_PREFIX, formatAction, getOkBody, GET_OK_SUFFIX } from '../protocol/text.js';

/** Bumped whenever an expert solver's output changes (2: vitals answers carry the previous blood pressure). */
export const SOLVER_VERSION = 'ehrgym-expert-2';

/** The harness's reply strings under their task-layer names (defined in src/protocol/text.ts). */
export {
  GET_OK_PREFIX as GET_REPLY_PREFIX,
  GET_OK_SUFFIX as GET_REPLY_SUFFIX,
  PLEASE_FINISH,
  POST_ACCEPTED as POST_ACCEPTED_REPLY,
} from '../protocol/text.js';

/** Thrown by an expert solver when the history is not one its policy produced (or the server answered an error). */
export class SolverError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SolverError';
  }
}

class NextAction {
  constructor(readonly text: string) {}
}

/** The actions a solver script can take; each returns the harness's reply (GET: the parsed body). */
export interface ScriptIO {
  readonly apiBase: string;
  readonly variant: string;
  /** `GET <url>`; returns the JSON body (floats preserved as PyFloat). `url` excludes `&_format=json`. */
  get(url: string): unknown;
  /** `GET <url>`; the JSON body as plain JSON (`jsonValue`): the suite's solvers, which need no Python semantics. */
  json(url: string): unknown;
  /** `POST <url>\n<json>`. */
  post(url: string, payload: unknown): void;
  /** `PUT <url>\n<json>` (the `ehrgym` dialect's update; suite families only). */
  put(url: string, payload: unknown): void;
  /** `FINISH(<json>)`. */
  finish(answer: unknown): never;
}

/**
 * Replays a deterministic solver script against the history: every action the script takes must match the agent
 * message at that position; the first action beyond the history is returned as the next message.
 */
export function runScript(
  task: TaskCase,
  history: readonly HistoryItem[],
  opts: SolveOptions | undefined,
  variants: readonly string[],
  script: (io: ScriptIO, task: TaskCase) => void,
): string {
  const apiBase = opts?.apiBase ?? OFFICIAL_API_BASE;
  const variant = opts?.variant ?? variants[0];
  if (!variants.includes(variant)) {
    throw new SolverError(`unknown solver variant "${variant}" for ${task.id.split('_')[0]} (known: ${variants.join(', ')})`);
  }
  // pair agent messages with the reply that follows each
  const turns: Array<{ sent: string; reply: string | undefined }> = [];
  history.forEach((h, i) => {
    if (h.role === 'agent') {
      const next = history[i + 1];
      turns.push({ sent: h.content, reply: next && next.role === 'user' ? next.content : undefined });
    }
  });
  let step = 0;
  const act = (text: string): string => {
    if (step === turns.length) throw new NextAction(text);
    const t = turns[step++];
    if (t.sent !== text) {
      throw new SolverError(`${task.id}: history diverges from the expert policy at agent turn ${step}`);
    }
    if (t.reply === undefined) throw new SolverError(`${task.id}: no reply recorded after agent turn ${step}`);
    return t.reply;
  };
  const parseBody = (url: string, parse: (body: string) => unknown): unknown => {
    const reply = act(formatAction({ kind: 'get', url }));
    const body = reply.endsWith(GET_OK_SUFFIX) ? getOkBody(reply) : undefined;
    if (body === undefined) throw new SolverError(`${task.id}: GET ${url} did not succeed: ${reply.slice(0, 200)}`);
    try {
      return parse(body);
    } catch {
      throw new SolverError(`${task.id}: GET ${url} returned a body that is not JSON text`);
    }
  };
  const io: ScriptIO = {
    apiBase,
    variant,
    get(url: string): unknown {
      return parseBody(url, (body) => pyJsonLoads(body, { preserveFloats: true }));
    },
    json(url: string): unknown {
      return parseBody(url, jsonValue);
    },
    post(url: string, payload: unknown): void {
      const reply = act(formatAction({ kind: 'post', url, body: pyJsonDumps(payload) }));
      if (!reply.includes(POST_ACCEPTED_MARK)) throw new SolverError(`${task.id}: POST ${url} was not accepted`);
    },
    put(url: string, payload: unknown): void {
      const reply = act(formatAction({ kind: 'put', url, body: pyJsonDumps(payload) }));
      if (!reply.startsWith(PUT_ACCEPTED_PREFIX)) throw new SolverError(`${task.id}: PUT ${url} was not accepted`);
    },
    finish(answer: unknown): never {
      act(formatAction({ kind: 'finish', answer: pyJsonDumps(answer) }));
      throw new SolverError(`${task.id}: the episode already finished`);
    },
  };
  try {
    script(io, task);
  } catch (e) {
    if (e instanceof NextAction) return e.text;
    throw e;
  }
  throw new SolverError(`${task.id}: solver script ended without FINISH`);
}

/** Variant `lookup-first`: GET the Patient by identifier before anything else (as an agent that checks the MRN does). */
export function lookupFirst(io: ScriptIO, mrn: string): void {
  if (io.variant === 'lookup-first') io.get(`${io.apiBase}Patient?identifier=${mrn}`);
}

/** Latest value from a `_sort=-date&_count=1` bundle, kept only if inside the window (solver `sorted` path). */
export function firstInWindow(bundle: unknown, since?: PyDateTime): { value: unknown; time: unknown } | null {
  const [first] = pyIter(pyDictGet(bundle, 'entry', []));
  if (first === undefined) return null;
  const time = pyPath(first, 'resource', 'effectiveDateTime');
  if (since && !pyCompare(pyFromIsoFormat(time), '>=', since)) return null;
  return { value: pyPath(first, 'resource', 'valueQuantity', 'value'), time };
}

/**
 * The expert's read of the patient's latest `code` reading (tasks 4, 5, 7, 9, 10; `since`: only readings at or after
 * it). Variant `sorted` GETs `_sort=-date&_count=1` and keeps its one entry as it is (`firstInWindow`); the others GET
 * the full history (`_count=5000`) and scan it as the grader does. Null when there is none (scan: no value found).
 */
export function latestReading(io: ScriptIO, mrn: string, code: string, since?: PyDateTime): { value: unknown; time: unknown } | null {
  if (io.variant === 'sorted') {
    return firstInWindow(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${code}&_sort=-date&_count=1`), since);
  }
  const s = scanLatest(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${code}&_count=5000`), since);
  return s.value === null ? null : { value: s.value, time: s.time };
}

/** A POST of an `always-act` policy: the resource type (the URL is `${apiBase}<resource>`) and its payload. */
export interface BlindPost {
  resource: string;
  payload: unknown;
}

/**
 * `AuditHooks.alwaysAct` of a family whose action is POSTs for the instruction's patient: reads nothing, sends
 * `posts(mrn)` in order, then `FINISH([])`, whatever the record holds.
 */
export function alwaysPost(templates: readonly string[], posts: (mrn: string) => readonly BlindPost[]): NonNullable<AuditHooks['alwaysAct']> {
  return (task, history, opts) =>
    runScript(task, history, { apiBase: opts?.apiBase }, ['always-act'], (io) => {
      const mrn = taskMrn(task, templates);
      for (const p of posts(mrn)) io.post(`${io.apiBase}${p.resource}`, p.payload);
      io.finish([]);
    });
}

/** Extract `{MRN}` (or other placeholders) from an instruction by its template. */
export function matchTemplate(template: string, instruction: string): Record<string, string> | null {
  const names: string[] = [];
  const re = template
    .split(/(\{[A-Z]+\})/)
    .map((part) => {
      const m = /^\{([A-Z]+)\}$/.exec(part);
      if (m) {
        names.push(m[1]);
        return m[1] === 'MRN' ? '(\\S+?)' : '(.+?)';
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  const m = new RegExp(`^${re}$`, 's').exec(instruction);
  if (!m) return null;
  const out: Record<string, string> = {};
  names.forEach((n, i) => (out[n] = m[i + 1]));
  return out;
}

/** The patient MRN of a task: parsed from the instruction by template, else `eval_MRN`. */
export function taskMrn(task: TaskCase, templates: readonly string[]): string {
  for (const t of templates) {
    const m = matchTemplate(t, task.instruction);
    if (m?.MRN) return m.MRN;
  }
  if (task.eval_MRN) return task.eval_MRN;
  throw new SolverError(`${task.id}: cannot find the patient MRN in the instruction`);
}

/** `TaskFamily.placeholders` of a family whose instruction names the patient by MRN: the record's `eval_MRN`. */
export function mrnPlaceholders(task: TaskCase): Record<string, string> | null {
  return task.eval_MRN ? { MRN: task.eval_MRN } : null;
}

/** Detector hints of a family whose instruction names the patient by MRN (override what differs). */
export function mrnDetector(over: Partial<DetectorHints> = {}): DetectorHints {
  return { mrnInInstruction: true, answerIsMrn: false, retrievedValue: false, latestValue: false, ...over };
}

/** Factory hints of a family whose branch the planted facts do not decide and that has no boundary tags. */
export function plainFactoryHints(remainderRank: number): FactoryHints {
  return { remainderRank, reusePatients: false, branchOf: () => null, boundaryTags: () => [] };
}

/** `TaskFamily.instruction` of a family whose template has one placeholder, `{MRN}`. */
export function mrnInstruction(family: string, template: string): TaskFamily['instruction'] {
  return ({ mrn }) => {
    if (!mrn) throw new Error(`${family}.instruction: mrn is required`);
    return template.replace('{MRN}', mrn);
  };
}

/** A family whose whole task is one POST for the instruction's patient (tasks 3 and 8). */
export interface SinglePostSpec<Id extends string> {
  id: Id;
  name: string;
  template: string;
  context: string;
  /** Paraphrased templates (`{MRN}`). */
  paraphrases: readonly string[];
  /** See `FactoryHints.remainderRank`. */
  remainderRank: number;
  /** The resource type posted: the grader wants the URL `${apiBase}<resource>`. */
  resource: string;
  /** The expert solver's payload (one known to pass the official grader). */
  payload: (mrn: string) => unknown;
  /** The grader's `try: assert …` block on the posted payload, in the official order. */
  asserts: (payload: unknown, task: TaskCase) => AssertSpec[];
}

/**
 * A single-POST family: one branch (`n/a`), no facts; the expert posts `payload(mrn)` (variant `lookup-first` reads
 * the Patient first) and finishes with `[]`; the grader is `extract_posts` → exactly one POST to
 * `${apiBase}<resource>` → the asserts on its payload.
 */
export function singlePostFamily<const Id extends string>(spec: SinglePostSpec<Id>): TaskFamily<Id> {
  const variants = ['direct', 'lookup-first'] as const;
  const family: TaskFamily<Id> = {
    id: spec.id,
    name: spec.name,
    kind: 'action',
    instructionTemplates: [spec.template],
    context: spec.context,
    branches: ['n/a'],
    variants,
    turns: { min: 2, max: 2 },
    recordKey: 'eval_MRN',
    paraphrases: spec.paraphrases,
    placeholders: mrnPlaceholders,
    // any patient serves the one branch
    planted: 'none',
    detector: mrnDetector(),
    factory: plainFactoryHints(spec.remainderRank),
    // no "nothing found" answer; acting is the whole task (the payload depends on the MRN only)
    audit: { nothingFound: null, alwaysAct: alwaysPost([spec.template], (mrn) => [{ resource: spec.resource, payload: spec.payload(mrn) }]) },

    instruction: mrnInstruction(spec.id, spec.template),

    generate(_world, opts) {
      return generateOver(spec.id, opts, async (mrn) => ({
        branch: 'n/a',
        patient: mrn,
        facts: {},
        build: (id) => makeTask(id, family.instruction({ mrn }), spec.context, mrn),
      }));
    },

    solve(task, history, opts) {
      return runScript(task, history, opts, variants, (io) => {
        const mrn = taskMrn(task, [spec.template]);
        lookupFirst(io, mrn);
        io.post(`${io.apiBase}${spec.resource}`, spec.payload(mrn));
        io.finish([]);
      });
    },

    grade(task, output, ctx) {
      return runGrader((g) => {
        g.branch = 'n/a';
        const post = g.onePost(output.history, `${ctx.apiBase}${spec.resource}`);
        return post !== null && g.asserts(spec.asserts(post.payload, task));
      });
    },
  };
  return family;
}

/** Build the TaskCase in the official key order. */
export function makeTask(id: string, instruction: string, context: string, mrn: string | null, sol?: string[]): TaskCase {
  const t: TaskCase = { id, instruction, context };
  if (sol !== undefined) t.sol = sol;
  if (mrn !== null) t.eval_MRN = mrn;
  return t;
}

/** `PyFloat` wrapper so solver payloads print `1.0` like the Python agents do. */
export const f = (v: number): PyFloat => new PyFloat(v);

// ---------------------------------------------------------------------------------------------------------------
// Payloads known to pass the official grader
// ---------------------------------------------------------------------------------------------------------------

export const ORTHO_COMMENT =
  'Situation: acute left knee injury, Background: radiology report indicates ACL tear. Assessment: ACL tear grade II. Recommendation: request for Orthopedic service to evaluate and provide management recommendations.';

export function bpObservation(mrn: string): unknown {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://hl7.org/fhir/observation-category', code: 'vital-signs', display: 'Vital Signs' }] }],
    code: { text: 'BP' },
    subject: { reference: `Patient/${mrn}` },
    effectiveDateTime: '2023-11-13T10:15:00+00:00',
    valueString: '118/77 mmHg',
  };
}

/** An active order MedicationRequest of an NDC drug for the patient, authored now (keys in the payloads' order). */
function ndcMedicationRequest(mrn: string, ndc: string, display: string, dosageInstruction: unknown[]): unknown {
  return {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/sid/ndc', code: ndc, display }], text: display },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: '2023-11-13T10:15:00+00:00',
    dosageInstruction,
  };
}

/** An active STAT order ServiceRequest for the patient, authored now, then `rest` (keys in the payloads' order). */
function statServiceRequest(mrn: string, coding: { system: string; code: string; display: string }, rest = {}): unknown {
  return {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    priority: 'stat',
    code: { coding: [coding] },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: '2023-11-13T10:15:00+00:00',
    ...rest,
  };
}

export function magnesiumOrder(mrn: string, grams: number, hours: number): unknown {
  return ndcMedicationRequest(mrn, '0338-1715-40', 'IV Magnesium Sulfate', [
    { doseAndRate: [{ doseQuantity: { value: f(grams), unit: 'g' }, rateQuantity: { value: f(hours), unit: 'h' } }], route: 'IV' },
  ]);
}

export function orthoReferral(mrn: string): unknown {
  return statServiceRequest(
    mrn,
    { system: 'http://snomed.info/sct', code: '306181000000106', display: 'Orthopedic surgery referral' },
    { note: { text: ORTHO_COMMENT } },
  );
}

export function potassiumOrder(mrn: string, mEq: number): unknown {
  return ndcMedicationRequest(mrn, '40032-917-01', 'Potassium Oral Repletion', [
    { doseAndRate: [{ doseQuantity: { value: f(mEq), unit: 'mEq' } }], route: 'oral' },
  ]);
}

export function potassiumLab(mrn: string): unknown {
  return statServiceRequest(
    mrn,
    { system: 'http://loinc.org', code: '2823-3', display: 'Serum Potassium Level' },
    { occurrenceDateTime: '2023-11-14T08:00:00+00:00' },
  );
}

export function a1cOrder(mrn: string): unknown {
  return statServiceRequest(mrn, { system: 'http://loinc.org', code: '4548-4', display: 'HbA1C' });
}

// ---------------------------------------------------------------------------------------------------------------
// Generator utilities
// ---------------------------------------------------------------------------------------------------------------

/** Fisher–Yates shuffle of a copy, driven by the rng. */
export function shuffled<T>(items: readonly T[], rng: RandomSource): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** GET from the world exactly as the harness would (`&_format=json` appended), parsed with Python semantics. */
export async function worldGet(world: WorldAccess, pathAndQuery: string): Promise<unknown> {
  return getJsonData(world.fhir, `${world.apiBase}${pathAndQuery}&_format=json`);
}

/**
 * GET from the world as `worldGet` does, as plain JSON (`jsonValue`): the clinical suite's reads. Its graders and
 * generators are ours, not the official grader's, so they need no Python semantics (PyFloat, bigints); `JSON.parse`
 * is several times faster than the Python-semantics parser over long histories.
 */
export async function worldJson(world: WorldAccess, pathAndQuery: string): Promise<unknown> {
  const r = await sendGetRequest(world.fhir, `${world.apiBase}${pathAndQuery}&_format=json`);
  if (!('data' in r)) throw new PyException('KeyError', "'data'");
  return typeof r.data === 'string' ? jsonValue(r.data) : plain(r.data);
}

/**
 * JSON text as plain JSON: `JSON.parse` (FHIR JSON is JSON; integers beyond 2^53 read as the nearest double, where
 * `plain(pyJsonLoads())` would keep them as strings). Text that `JSON.parse` refuses goes to the Python-semantics
 * parser, which reads `NaN` and `Infinity` and names the error of anything else.
 */
export function jsonValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return plain(pyJsonLoads(text));
  }
}

/** `NOW − 24 h` (the window of tasks 4–6) as a `date=ge` search value, `+` percent-encoded. */
const WINDOW_24H_START = '2023-11-12T10:15:00%2B00:00';

/*
 * Generators' lab reads. A grader reads the patient's full history of a code (`Observation?patient=&code=&_count=5000`)
 * and scans it in server order (`scanLatest` / `scanMean`); a generator only needs the branch and facts of that scan,
 * and a narrower query gives the same scan result without rendering and parsing the whole history:
 * - latest reading: `_sort=-date&_count=1`. The server sorts by instant, latest first, ties in server order, so its
 *   one entry is the one the full scan keeps (the first, in server order, of the latest readings).
 * - last 24 h: `date=ge<NOW − 24 h>`. Every reading at or after the cutoff, in server order; the scan skips earlier
 *   readings anyway, so sums (in the same order), counts and the latest reading are the same.
 * Both hold whenever the full scan itself succeeds (every reading has an aware `effectiveDateTime` and a value; fewer
 * than 5,000 readings). Verdicts never depend on this: graders always run the full scan.
 */

/** The latest reading of `code` for a patient, as the grader's full-history scan finds it (generators). */
export async function latestLab(world: WorldAccess, mrn: string, code: string): Promise<LatestScan> {
  return scanLatest(await worldGet(world, `Observation?patient=${mrn}&code=${code}&_sort=-date&_count=1`));
}

/** The patient's readings of `code` within the last 24 h (a Bundle in server order; generators of tasks 4–6). */
export async function labsLast24h(world: WorldAccess, mrn: string, code: string): Promise<unknown> {
  return worldGet(world, `Observation?patient=${mrn}&code=${code}&date=ge${WINDOW_24H_START}&_count=5000`);
}

/** The latest reading of `code` within the last 24 h, as the grader's full-history scan finds it (generators). */
export async function latestLabLast24h(world: WorldAccess, mrn: string, code: string): Promise<LatestScan> {
  return scanLatest(await labsLast24h(world, mrn, code), CUTOFF_24H);
}

/**
 * The common generator loop: shuffle the candidates, derive each one's instance (null = unusable), keep those of the
 * requested branch, stop at `count`, and number the ids from `startIndex`.
 */
export async function generateOver(
  family: string,
  opts: GenerateOptions,
  derive: (mrn: string) => Promise<(Omit<GeneratedTask, 'task'> & { build: (id: string) => TaskCase }) | null>,
): Promise<GeneratedTask[]> {
  const out: GeneratedTask[] = [];
  const start = opts.startIndex ?? 1;
  const limit = opts.count ?? Infinity;
  for (const mrn of shuffled(opts.patients, opts.rng)) {
    if (out.length >= limit) break;
    const d = await derive(mrn);
    if (!d) continue;
    if (opts.branch !== undefined && d.branch !== opts.branch) continue;
    const id = `${family}_${start + out.length}`;
    out.push({ task: d.build(id), branch: d.branch, patient: d.patient, facts: d.facts });
  }
  return out;
}

/** Plain JSON view of a value (PyFloat → number) for facts and reports. */
export function plain(v: unknown): unknown {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)));
}
