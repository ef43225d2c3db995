/**
 * What every clinical-suite family shares: reading bundles and codings, comparing payloads, the answer's JSON list,
 * writes beyond what a branch allows, planting helpers, and the grading skeleton (find the patient, read the facts,
 * replay the episode's writes into a scratch session, check the end state, count prefix credit).
 *
 * A family file keeps only what is its own: the rule, the facts it reads, the scenarios it plants and the
 * checkpoints it grades.
 */
import { canonicalJson } from '../../fhir/json.js';
import type { Resource } from '../../fhir/types.js';
import { SNOMED } from '../../worlds/catalog.js';
import type { Rng } from '../../worlds/prng.js';
import { type Checkpoint, checkpoint, finishedCheckpoint, gradeCheckpoints } from '../checkpoints.js';
import { taskMrn, worldJson } from '../common.js';
import { type EndState, replayEndState } from '../endstate.js';
import type { GradeResult, GraderContext, TaskCase, TaskOutput, WorldAccess } from '../types.js';

/** Minutes in an hour and in a day (planting ages are in minutes before NOW). */
export const H = 60;
export const D = 1440;
/** The server's default page size: a planted decisive record goes at or past this position in server order. */
export const FIRST_PAGE = 20;

export type Res = Record<string, unknown>;

/** A search bundle's resources (an absent or malformed bundle has none). */
export function resources(bundle: unknown): Res[] {
  const e = (bundle as { entry?: unknown } | undefined)?.entry;
  if (!Array.isArray(e)) return [];
  return e.map((x) => (x as { resource?: Res } | undefined)?.resource).filter((r): r is Res => !!r && typeof r === 'object');
}

export interface Coding {
  system?: unknown;
  code?: unknown;
  display?: unknown;
}

/** A CodeableConcept's codings (none when it is not one). */
export function codings(cc: unknown): Coding[] {
  const c = (cc as { coding?: unknown } | undefined)?.coding;
  return Array.isArray(c) ? c.filter((x): x is Coding => !!x && typeof x === 'object') : [];
}

export const hasCode = (cc: unknown, system: string, code: string): boolean => codings(cc).some((c) => c.system === system && c.code === code);
export const hasAnyCode = (cc: unknown, system: string, codes: readonly string[]): boolean =>
  codings(cc).some((c) => c.system === system && codes.includes(String(c.code)));
/** The first code of a CodeableConcept in a code system (e.g. a status's). */
export const codeIn = (cc: unknown, system: string): string | undefined => {
  const c = codings(cc).find((x) => x.system === system)?.code;
  return typeof c === 'string' ? c : undefined;
};

export const sameJson = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b);
/** A resource without some of its keys (e.g. `meta`), to compare what an update changed. */
export const without = (r: Res | undefined, ...keys: string[]): Res => Object.fromEntries(Object.entries(r ?? {}).filter(([k]) => !keys.includes(k)));
/** The keys whose values differ between two versions of a resource, `meta` and `ignore` aside. */
export function changedKeys(before: Res | undefined, after: Res | undefined, ...ignore: string[]): string[] {
  const a = without(before, 'meta', ...ignore);
  const b = without(after, 'meta', ...ignore);
  return Object.keys({ ...a, ...b }).filter((k) => !sameJson(a[k], b[k]));
}
/** A dateTime with at least minute precision naming the same instant as `b` (any offset spelling). */
export const sameInstant = (a: unknown, b: string): boolean => typeof a === 'string' && /T\d\d:\d\d/.test(a) && Date.parse(a) === Date.parse(b);
/** `subject` is exactly `{reference: "Patient/<mrn>"}`. */
export const subjectIs = (r: Res | undefined, mrn: string): boolean => !!r && sameJson(r.subject, { reference: `Patient/${mrn}` });
/** A route given as "oral", `{text: "oral"}` or SNOMED 26643006. */
export function isOral(route: unknown): boolean {
  if (typeof route === 'string') return route.trim().toLowerCase() === 'oral';
  const text = (route as { text?: unknown } | undefined)?.text;
  return (typeof text === 'string' && text.trim().toLowerCase() === 'oral') || hasCode(route, SNOMED, '26643006');
}
/** Milliseconds of a dateTime string (NaN when it is not one). */
export const ms = (v: unknown): number => (typeof v === 'string' ? Date.parse(v) : Number.NaN);

/** Fisher–Yates with the world's generator (planting order is server order). */
export function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** `items` shuffled with `decisive` inserted at or past the first page (server order of an unsorted search). */
export function pastFirstPage<T>(items: T[], decisive: T, rng: Rng): T[] {
  const out = shuffle(items, rng);
  out.splice(rng.int(Math.min(FIRST_PAGE, out.length), out.length), 0, decisive);
  return out;
}

const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const LAB_CATEGORY = [{ coding: [{ system: OBS_CATEGORY, code: 'laboratory', display: 'Laboratory' }] }];
export const VITAL_CATEGORY = [{ coding: [{ system: OBS_CATEGORY, code: 'vital-signs', display: 'Vital Signs' }] }];
/** Observation statuses of a result that stands; `entered-in-error`, `cancelled`, `preliminary` do not. */
export const VALID_RESULT_STATUSES: readonly string[] = ['final', 'amended', 'corrected'];

/**
 * The FINISH answer as a JSON list, or why it is not one: no answer or text that is not JSON is a protocol failure;
 * JSON that is not a list of `length` items (e.g. `[]`) answers the wrong thing, a lookup failure.
 */
export function answerList(result: TaskOutput['result'], length: number): { items: unknown[] } | { problem: string; cls: 'protocol' | 'lookup' } {
  if (typeof result !== 'string') return { problem: 'no answer', cls: 'protocol' };
  let v: unknown;
  try {
    v = JSON.parse(result);
  } catch {
    return { problem: 'the answer is not JSON', cls: 'protocol' };
  }
  if (!Array.isArray(v) || v.length !== length) return { problem: `the answer is not a list of ${length}`, cls: 'lookup' };
  return { items: v };
}

/** An answer label compared as the suite does: trimmed, case-insensitive. */
export const sameLabel = (a: unknown, b: string): boolean => typeof a === 'string' && a.trim().toLowerCase() === b.toLowerCase();

/**
 * Everything the episode wrote beyond what a branch allows: `allowed` counts the resources it may create per type
 * (`{ServiceRequest: 1}`); `updates` lists the `Type/id` it may change. Anything else created or changed is stray.
 */
export function strayWrites(state: EndState, allowed: Readonly<Record<string, number>> = {}, updates: readonly string[] = []): string[] {
  const stray: string[] = [];
  const used: Record<string, number> = {};
  for (const k of state.touched()) {
    if (updates.includes(k)) continue;
    const [type] = k.split('/') as [string];
    const created = state.writes.some((w) => w.method === 'POST' && `${w.type}/${w.id}` === k);
    if (created && (used[type] ?? 0) < (allowed[type] ?? 0)) {
      used[type] = (used[type] ?? 0) + 1;
      continue;
    }
    stray.push(k);
  }
  return stray;
}

/** The checkpoint that nothing beyond the branch's writes was written. */
export const noOtherWrites = (stray: string[], name = 'no_other_writes'): Checkpoint => checkpoint(name, 'payload', stray.length === 0, [], stray);

let gradeSessions = 0;

/** What a family gives the grading skeleton. */
export interface SuiteGrading<F, S = string> {
  /** The task's subject (default: the MRN in the instruction, by these templates). */
  templates?: readonly string[];
  subject?: (task: TaskCase) => S;
  /** How the no-task exception names the subject (default `String(subject)`). */
  label?: (subject: S) => string;
  /** The facts from the world (the generator reads the same). */
  read: (ctx: GraderContext, subject: S) => Promise<F>;
  /** The branch, or null with the reason when the subject serves no task on this world. */
  branch: (facts: F) => { branch: string } | { why: string };
  /** The reference answer (reports show it). */
  reference: (facts: F) => unknown;
  /** The checkpoints after `finished`, on the end state the episode left. */
  check: (output: TaskOutput, facts: F, subject: S, state: EndState, branch: string) => Promise<Checkpoint[]>;
}

/**
 * Grade a suite episode: `finished`, then the family's checkpoints on the replayed end state, prefix credit. A task
 * whose subject cannot be found, or that the world does not serve, grades as an exception (class protocol).
 */
export async function gradeSuite<F, S = string>(task: TaskCase, output: TaskOutput, ctx: GraderContext, g: SuiteGrading<F, S>): Promise<GradeResult> {
  let subject: S;
  try {
    subject = g.subject ? g.subject(task) : (taskMrn(task, g.templates ?? []) as S);
  } catch (e) {
    return gradeCheckpoints([finishedCheckpoint(output)], { exception: (e as Error).message });
  }
  const facts = await g.read(ctx, subject);
  const b = g.branch(facts);
  if ('why' in b) {
    return gradeCheckpoints([finishedCheckpoint(output)], {
      exception: `${task.id}: ${g.label ? g.label(subject) : String(subject)} has no task on this world (${b.why})`,
    });
  }
  const reference = g.reference(facts);
  let replay: Awaited<ReturnType<typeof replayEndState>>;
  try {
    replay = await replayEndState(ctx, output.history ?? [], { put: true, session: `grade-${task.id}-${++gradeSessions}` });
  } catch (e) {
    return gradeCheckpoints([finishedCheckpoint(output)], { branch: b.branch, reference, exception: (e as Error).message });
  }
  try {
    const checks = [finishedCheckpoint(output), ...(await g.check(output, facts, subject, replay.state, b.branch))];
    return gradeCheckpoints(checks, { branch: b.branch, reference, credit: 'prefix' });
  } finally {
    await replay.close();
  }
}

export type { Checkpoint, Resource };
export { checkpoint };

/**
 * Planting lanes: families whose records would change each other's facts plant on disjoint halves of the cohort
 * (`p.index % 2`). Lane 0: metformin, citalopram, pneumococcal, dupguard. Lane 1: aki, diabetes, influenza,
 * hyperkalemia. The first five families plant on both lanes, and every family reads its facts from the record (the
 * cohort's own labs, conditions and orders included), so generator and grader agree whatever else is planted.
 */
export const inLane = (index: number, lane: 0 | 1): boolean => index % 2 === lane;

const cohortOrder = new WeakMap<WorldAccess, Promise<Map<string, number>>>();

/**
 * A patient's cohort index on a synthetic world (the world lists its Patients in cohort order), or -1. Generators use
 * it to serve only their planting lane's patients: another lane's records (a fresh creatinine, a flu dose planted as
 * background) can look like a task without the traps the family plants.
 */
export async function cohortIndex(world: WorldAccess, mrn: string): Promise<number> {
  let order = cohortOrder.get(world);
  if (!order) {
    order = worldJson(world, 'Patient?_count=5000').then((b) => new Map(resources(b).map((r, i) => [String(r.id), i])));
    cohortOrder.set(world, order);
  }
  return (await order).get(mrn) ?? -1;
}

/** Whether a patient is on a planting lane (`inLane` by cohort index). */
export async function onLane(world: WorldAccess, mrn: string, lane: 0 | 1): Promise<boolean> {
  const i = await cohortIndex(world, mrn);
  return i >= 0 && inLane(i, lane);
}
