/**
 * hypoglycemia — treat a low capillary glucose by the rule of 15 and schedule the 15-minute recheck (clinical suite,
 * lab-triggered protocol; docs/tasks.md).
 *
 * Rule: American Diabetes Association Professional Practice Committee, "6. Glycemic Goals and Hypoglycemia: Standards
 * of Care in Diabetes—2024", Diabetes Care 2024;47(Suppl 1):S111–S125: glucose is the preferred treatment for the
 * conscious individual with glucose < 70 mg/dL (< 3.9 mmol/L); fifteen minutes after treatment, recheck and repeat if
 * hypoglycemia persists (the "15-15 rule": 15–20 g of glucose). Levels (Table 6.4): level 1 < 70 and ≥ 54 mg/dL,
 * level 2 < 54 mg/dL. The task's context states the local protocol: only a point-of-care (capillary) glucose resulted
 * in the last 30 minutes counts; 1 mmol/L = 18 mg/dL.
 *
 * The world plants, on every cohort patient, a week of AC/HS fingersticks (unsorted in server order, the decisive one
 * past the first page of 20, a third of the patients in mmol/L), an active insulin order, and traps: `entered-in-error`
 * and `cancelled` readings newer than the decisive one, a low reading just outside the 30-minute window, serum glucose
 * (not point-of-care) low at 06:00 or normal after the fingerstick, and mmol/L values whose bare number is below 70.
 * The grader replays the episode's writes (`replayEndState`) and checks the record it left.
 */
import type { Resource } from '../../fhir/types.js';
import { fmtInstant, fmtMinute, MINUTE, NOW_MS } from '../../worlds/clinical.js';
import { LOINC, POC_GLU_LOINC, RXNORM, SNOMED, UCUM } from '../../worlds/catalog.js';
import type { Rng } from '../../worlds/prng.js';
import type { PlantPatient } from '../../worlds/synthetic.js';
import { type Checkpoint, checkpoint } from '../checkpoints.js';
import {
  alwaysPost,
  generateOver,
  makeTask,
  mrnDetector,
  mrnPlaceholders,
  plainFactoryHints,
  runScript,
  type ScriptIO,
  taskMrn,
  worldJson,
} from '../common.js';
import type { EndState } from '../endstate.js';
import { codings, gradeSuite, hasCode, isOral, LAB_CATEGORY, subjectIs, VALID_RESULT_STATUSES } from './kit.js';
import type { GradeResult, SuiteFamily, TaskCase, TaskOutput, WorldAccess } from '../types.js';

export const HYPOGLYCEMIA_TEMPLATE =
  'Patient {MRN} is an inpatient on insulin and is awake and able to swallow. Check the most recent capillary glucose from the last 30 minutes. If it is below 70 mg/dL, treat per the ADA 2024 rule of 15: order 15-20 g oral glucose now and order a capillary glucose recheck 15 minutes from now. Finish with [glucose in mg/dL (integer), "treat" or "no-treat"].\n';
export const HYPOGLYCEMIA_CONTEXT =
  "It's 2023-11-13T10:15:00+00:00 now. Capillary (point-of-care) glucose is LOINC 41653-7 (mg/dL) or 14743-9 (mmol/L; 1 mmol/L = 18 mg/dL); serum glucose 2345-7 is not point-of-care. " +
  'A capillary glucose counts only if it was resulted in the last 30 minutes. ' +
  'Order oral glucose as a MedicationRequest coded RxNorm 4850 (glucose) with a dose in g (doseAndRate[0].doseQuantity) and route oral; ' +
  'order the recheck as a ServiceRequest with LOINC 41653-7 and occurrenceDateTime 15 minutes from now. ' +
  'Answer with [glucose in mg/dL, "treat"] or [glucose in mg/dL, "no-treat"].';

export const POC_MGDL_LOINC = POC_GLU_LOINC.code;
export const POC_MMOL_LOINC = '14743-9';
export const POC_MMOL_DISPLAY = 'Glucose [Moles/volume] in Capillary blood by Glucometer';
export const SERUM_GLU_LOINC = '2345-7';
export const SERUM_GLU_DISPLAY = 'Glucose [Mass/volume] in Serum or Plasma';
/** RxNorm 4850: glucose (ingredient), as the context states it. */
export const GLUCOSE_RXNORM = '4850';
export const INSULIN_RXNORM = '106892';
export const INSULIN_DISPLAY = 'insulin isophane, human 70 UNT/ML / insulin, regular, human 30 UNT/ML Injectable Suspension [Humulin 70/30]';
export const NOW_ISO = '2023-11-13T10:15:00+00:00';
/** The recheck the expert orders: NOW + 15 min. */
export const RECHECK_AT = '2023-11-13T10:30:00+00:00';
/** The grader accepts a recheck time in [NOW + 13 min, NOW + 17 min]. */
export const RECHECK_WINDOW_MIN: readonly [number, number] = [13, 17];
/** A capillary glucose counts when NOW − 30 min < effectiveDateTime ≤ NOW. */
export const GLUCOSE_WINDOW_MS = 30 * MINUTE;
/** 1 mmol/L = 18 mg/dL (the context's factor; 18.016 differs by < 1 mg/dL at every planted value). */
export const MMOL_TO_MGDL = 18;
/** Statuses of a result that stands; `entered-in-error`, `cancelled`, `preliminary` do not. */
/** Lookback of the decoy test: a glucose (any code, any status) below 70 as written in the last 6 hours. */
const DECOY_LOOKBACK_MS = 6 * 60 * MINUTE;

export type HypoglycemiaBranch = 'treat_level1' | 'treat_level2' | 'no_treat' | 'no_treat_decoy';
const BRANCHES: readonly HypoglycemiaBranch[] = ['treat_level1', 'treat_level2', 'no_treat', 'no_treat_decoy'];

const TREAT_CHECKPOINTS = [
  'finished',
  'answer_glucose',
  'answer_decision',
  'glucose_ordered',
  'glucose_dose',
  'recheck_ordered',
  'recheck_15min',
  'no_other_writes',
] as const;
const NO_TREAT_CHECKPOINTS = ['finished', 'answer_glucose', 'answer_decision', 'no_writes'] as const;

/** Checkpoints per branch, in the order an expert works (look up, decide, write, nothing else). */
export const HYPOGLYCEMIA_CHECKPOINTS: Readonly<Record<HypoglycemiaBranch, readonly string[]>> = {
  treat_level1: TREAT_CHECKPOINTS,
  treat_level2: TREAT_CHECKPOINTS,
  no_treat: NO_TREAT_CHECKPOINTS,
  no_treat_decoy: NO_TREAT_CHECKPOINTS,
};

// ---------------------------------------------------------------------------------------------------------------
// Reading the record

export interface GlucoseReading {
  /** The value as written. */
  value: number;
  unit: 'mg/dL' | 'mmol/L';
  /** In mg/dL, rounded to an integer (the answer). */
  mgdl: number;
  time: string;
  id?: string;
}

type Entry = { resource?: Record<string, unknown> };
const entriesOf = (bundle: unknown): Entry[] => {
  const e = (bundle as { entry?: unknown } | undefined)?.entry;
  return Array.isArray(e) ? (e as Entry[]) : [];
};
const isPoc = (r: Record<string, unknown>): boolean => hasCode(r.code, LOINC, POC_MGDL_LOINC) || hasCode(r.code, LOINC, POC_MMOL_LOINC);

/** Whether a glucose is in mmol/L: its unit says so (UCUM code or unit string), or it is coded 14743-9 without one. */
function isMmol(r: Record<string, unknown>): boolean {
  const q = r.valueQuantity as { unit?: unknown; code?: unknown } | undefined;
  const u = String(q?.code ?? q?.unit ?? '');
  if (u !== '') return /mmol/i.test(u);
  return hasCode(r.code, LOINC, POC_MMOL_LOINC);
}

/** A reading of a resource (standing or not), converted by `factor` per mmol/L; null without a numeric value or time. */
export function readingOf(r: Record<string, unknown>, factor = MMOL_TO_MGDL): GlucoseReading | null {
  const v = (r.valueQuantity as { value?: unknown } | undefined)?.value;
  const t = Date.parse(String(r.effectiveDateTime));
  if (typeof v !== 'number' || !Number.isFinite(t)) return null;
  const mmol = isMmol(r);
  return { value: v, unit: mmol ? 'mmol/L' : 'mg/dL', mgdl: Math.round(mmol ? v * factor : v), time: String(r.effectiveDateTime), id: String(r.id) };
}

/**
 * The capillary glucose that counts among a bundle's entries (the caller searched the capillary codes): standing
 * results (`VALID_RESULT_STATUSES`) with a numeric value, resulted in the last 30 minutes; the latest by
 * `effectiveDateTime` (the first of equal times in server order). Null when none counts.
 */
export function countingGlucose(entries: readonly unknown[], factor = MMOL_TO_MGDL): GlucoseReading | null {
  let best: GlucoseReading | null = null;
  let bestT = -Infinity;
  for (const e of entries) {
    const r = (e as Entry)?.resource;
    if (!r || !VALID_RESULT_STATUSES.includes(String(r.status))) continue;
    const g = readingOf(r, factor);
    if (!g) continue;
    const t = Date.parse(g.time);
    if (t > NOW_MS - GLUCOSE_WINDOW_MS && t <= NOW_MS && t > bestT) {
      bestT = t;
      best = g;
    }
  }
  return best;
}

/** The protocol's decision for the glucose that counts (mg/dL); `decoy`: a careless reader would see a low. */
export function hypoglycemiaBranch(mgdl: number, decoy: boolean): HypoglycemiaBranch {
  if (mgdl < 54) return 'treat_level2';
  if (mgdl < 70) return 'treat_level1';
  return decoy ? 'no_treat_decoy' : 'no_treat';
}

export const isTreat = (b: HypoglycemiaBranch): boolean => b === 'treat_level1' || b === 'treat_level2';

const pocQuery = (mrn: string) => `Observation?patient=${mrn}&code=${POC_MGDL_LOINC},${POC_MMOL_LOINC}&_count=5000`;
const anyGlucoseQuery = (mrn: string) => `Observation?patient=${mrn}&code=${POC_MGDL_LOINC},${POC_MMOL_LOINC},${SERUM_GLU_LOINC}&_count=5000`;

/** What a task's reference is, read from the world (generator and grader share it). */
export interface HypoglycemiaFacts {
  /** Null when no capillary glucose counts (the patient serves no task). */
  branch: HypoglycemiaBranch | null;
  glucose: GlucoseReading | null;
  /** Ids of glucose results (any code, any status) in the last 6 h whose number as written is below 70. */
  decoys: string[];
  results: number;
}

export async function readHypoglycemiaFacts(world: WorldAccess, mrn: string): Promise<HypoglycemiaFacts> {
  const all = entriesOf(await worldJson(world, anyGlucoseQuery(mrn)));
  const poc = all.filter((e) => !!e.resource && isPoc(e.resource));
  const glucose = countingGlucose(poc);
  const decoys: string[] = [];
  for (const e of all) {
    const r = e.resource;
    const g = r && readingOf(r);
    if (!g) continue;
    const t = Date.parse(g.time);
    if (t > NOW_MS - DECOY_LOOKBACK_MS && t <= NOW_MS && g.value < 70) decoys.push(String(r.id));
  }
  return { branch: glucose ? hypoglycemiaBranch(glucose.mgdl, decoys.length > 0) : null, glucose, decoys, results: poc.length };
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads

export function oralGlucoseOrder(mrn: string): Record<string, unknown> {
  return {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: GLUCOSE_RXNORM, display: 'glucose' }], text: 'oral glucose' },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: NOW_ISO,
    dosageInstruction: [
      {
        text: '15 g glucose by mouth once now',
        route: { coding: [{ system: SNOMED, code: '26643006', display: 'Oral route' }], text: 'Oral' },
        doseAndRate: [{ doseQuantity: { value: 15, unit: 'g', system: UCUM, code: 'g' } }],
      },
    ],
  };
}

export function recheckOrder(mrn: string): Record<string, unknown> {
  return {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    code: { coding: [{ system: LOINC, code: POC_MGDL_LOINC, display: POC_GLU_LOINC.display }], text: 'Fingerstick glucose' },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: NOW_ISO,
    occurrenceDateTime: RECHECK_AT,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Expert policy

/** How a policy reads the glucose that counts (the expert's; tests plug in trap readers). */
export type GlucoseReader = (io: ScriptIO, mrn: string) => GlucoseReading | null;

/** Variant `scan`: every capillary result (`_count=5000`), standing ones only, latest in the window. */
export const scanGlucose: GlucoseReader = (io, mrn) => countingGlucose(entriesOf(io.json(`${io.apiBase}${pocQuery(mrn)}`)));

/** Variant `sorted`: final capillary results of the last 30 minutes, latest first (the window bound re-checked). */
export const sortedGlucose: GlucoseReader = (io, mrn) => {
  const since = fmtMinute(NOW_MS - GLUCOSE_WINDOW_MS).replace('+00:00', 'Z');
  return countingGlucose(
    entriesOf(io.json(`${io.apiBase}Observation?patient=${mrn}&code=${POC_MGDL_LOINC},${POC_MMOL_LOINC}&status=final&date=gt${since}&_sort=-date`)),
  );
};

const VARIANTS = ['scan', 'sorted'] as const;

/** The expert's script with a given glucose reader: decide by the rule of 15, write, answer. */
export function hypoglycemiaScript(read: GlucoseReader): (io: ScriptIO, task: TaskCase) => void {
  return (io, task) => {
    const mrn = taskMrn(task, [HYPOGLYCEMIA_TEMPLATE, ...hypoglycemia.paraphrases]);
    const g = read(io, mrn);
    if (!g) return io.finish([]);
    const treat = g.mgdl < 70;
    if (treat) {
      io.post(`${io.apiBase}MedicationRequest`, oralGlucoseOrder(mrn));
      io.post(`${io.apiBase}ServiceRequest`, recheckOrder(mrn));
    }
    io.finish([g.mgdl, treat ? 'treat' : 'no-treat']);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Planting

interface Trap {
  ageMin: number;
  status: 'final' | 'entered-in-error' | 'cancelled';
  value?: number;
  /** `serum`: a serum glucose 2345-7 in mg/dL (not point-of-care); otherwise a fingerstick in the patient's unit. */
  serum?: boolean;
  /** Planted 31–40 minutes old (just outside the window) instead of at `ageMin`. */
  stale?: boolean;
}
/**
 * One planted scenario: the decisive fingerstick ([minutes before NOW (± 2 per patient), value in the patient's
 * unit]) and its traps. `spread`: the value is drawn per patient in [lo, hi] (whole mg/dL, or mmol/L to 0.1) so that
 * answers rarely repeat; edge scenarios keep their exact value.
 */
interface GlucoseScenario {
  latest: [number, number];
  spread?: [number, number];
  unit: 'mg/dL' | 'mmol/L';
  edge?: string;
  traps?: Trap[];
}
const MG = 'mg/dL' as const;
const MMOL = 'mmol/L' as const;
/**
 * Dealt round-robin over the cohort (22, coprime with the split's modulus 5, so both splits see every scenario):
 * level 1 × 6, level 2 × 5, no-treat × 5, no-treat with a decoy low × 6. Planted mmol/L values are never within
 * 1 mg/dL of a threshold after conversion by 18 or 18.016.
 */
const SCENARIOS: readonly GlucoseScenario[] = [
  { latest: [12, 64], spread: [55, 69], unit: MG },
  { latest: [6, 47], spread: [39, 52], unit: MG },
  { latest: [9, 112], spread: [95, 140], unit: MG },
  { latest: [7, 4.1], unit: MMOL, edge: '4.1 mmol/L = 74 mg/dL' },
  { latest: [8, 3.6], unit: MMOL, edge: '3.6 mmol/L = 65 mg/dL' },
  { latest: [14, 2.6], spread: [2.2, 2.8], unit: MMOL },
  { latest: [16, 70], unit: MG, edge: '70 is not below 70' },
  { latest: [12, 88], spread: [75, 120], unit: MG, traps: [{ ageMin: 35, stale: true, status: 'final', value: 52 }] },
  { latest: [25, 58], spread: [55, 68], unit: MG, traps: [{ ageMin: 5, status: 'entered-in-error', value: 112 }] },
  { latest: [22, 38], spread: [36, 45], unit: MG, traps: [{ ageMin: 7, status: 'cancelled' }] },
  { latest: [3, 186], spread: [150, 199], unit: MG },
  { latest: [18, 101], spread: [80, 130], unit: MG, traps: [{ ageMin: 4, status: 'entered-in-error', value: 48 }] },
  { latest: [17, 3.8], unit: MMOL, edge: '3.8 mmol/L = 68 mg/dL' },
  { latest: [10, 53], unit: MG, edge: '53 is level 2' },
  { latest: [28, 143], spread: [141, 180], unit: MG },
  { latest: [20, 4.4], spread: [4.2, 5.6], unit: MMOL, traps: [{ ageMin: 6, status: 'entered-in-error', value: 2.8 }] },
  { latest: [20, 61], spread: [56, 67], unit: MG, traps: [{ ageMin: 10, status: 'final', value: 104, serum: true }] },
  { latest: [27, 2.9], spread: [2.3, 2.9], unit: MMOL, traps: [{ ageMin: 9, status: 'entered-in-error', value: 6.2 }] },
  { latest: [11, 97], spread: [85, 110], unit: MG, traps: [{ ageMin: 4, status: 'cancelled' }] },
  { latest: [15, 92], spread: [72, 125], unit: MG, traps: [{ ageMin: 255, status: 'final', value: 62, serum: true }] },
  { latest: [6, 54], unit: MG, edge: '54 is level 1' },
  { latest: [24, 4.0], unit: MMOL, edge: '4.0 mmol/L = 72 mg/dL' },
];
/** The decisive result's position in server order is at least this (past the default first page of 20). */
const FIRST_PAGE = 20;
const D = 1440;

/** The scenario a patient gets, by cohort index. */
export function hypoglycemiaScenarioOf(index: number): { latest: [number, number]; spread?: [number, number]; unit: string; edge?: string } {
  return SCENARIOS[index % SCENARIOS.length]!;
}

function glucoseObservation(mrn: string, ageMin: number, status: string, value: number | undefined, kind: 'mg/dL' | 'mmol/L' | 'serum'): Resource {
  const t = NOW_MS - ageMin * MINUTE;
  const unit = kind === 'mmol/L' ? 'mmol/L' : 'mg/dL';
  const coding =
    kind === 'serum'
      ? [
          { system: LOINC, code: 'GLU', display: 'GLU' },
          { system: LOINC, code: SERUM_GLU_LOINC, display: SERUM_GLU_DISPLAY },
        ]
      : kind === 'mg/dL'
        ? [
            { system: LOINC, code: 'GLU', display: 'GLU' },
            { system: LOINC, code: POC_MGDL_LOINC, display: POC_GLU_LOINC.display },
          ]
        : [{ system: LOINC, code: POC_MMOL_LOINC, display: POC_MMOL_DISPLAY }];
  const r: Resource = {
    resourceType: 'Observation',
    status,
    category: LAB_CATEGORY,
    code: { coding, text: kind === 'serum' ? 'Glucose, serum' : 'Glucose, POC' },
    subject: { reference: `Patient/${mrn}` },
    effectiveDateTime: fmtMinute(t),
    issued: fmtInstant(Math.min(t + (kind === 'serum' ? 50 : 1) * MINUTE, NOW_MS)),
  };
  if (value !== undefined) r.valueQuantity = { value, unit, system: UCUM, code: unit };
  else
    r.dataAbsentReason = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'not-performed', display: 'Not Performed' }] };
  return r;
}

function insulinOrder(mrn: string, ageMin: number): Resource {
  return {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/medicationrequest-category', code: 'inpatient', display: 'Inpatient' }] }],
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: INSULIN_RXNORM, display: INSULIN_DISPLAY }], text: INSULIN_DISPLAY },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: fmtMinute(NOW_MS - ageMin * MINUTE),
    dosageInstruction: [
      {
        text: '20 Units subcutaneous BID',
        timing: { code: { text: 'BID' } },
        route: { coding: [{ system: SNOMED, code: '34206005', display: 'Subcutaneous route' }], text: 'Subcutaneous' },
        doseAndRate: [{ doseQuantity: { value: 20, unit: 'Units' } }],
      },
    ],
  };
}

/** AC/HS fingerstick times (minutes after midnight UTC): before breakfast, lunch, dinner and at bedtime. */
const AC_HS = [7 * 60 + 30, 11 * 60 + 30, 16 * 60 + 30, 21 * 60];

/** A patient's glucose records: a week of AC/HS fingersticks, the scenario's result and traps, the insulin order. */
function plantHypoglycemia(p: PlantPatient, rng: Rng): Resource[] {
  const sc = SCENARIOS[p.index % SCENARIOS.length]!;
  const mmol = sc.unit === MMOL;
  const latestAge = Math.min(28, Math.max(3, sc.latest[0] + rng.int(-2, 2)));
  const step = mmol ? 10 : 1;
  const latestValue = sc.spread ? rng.int(Math.round(sc.spread[0] * step), Math.round(sc.spread[1] * step)) / step : sc.latest[1];
  const history: Resource[] = [];
  const midnight = Math.floor(NOW_MS / (D * MINUTE)) * D * MINUTE;
  for (let day = 6; day >= 0; day--)
    for (const at of AC_HS) {
      const t = midnight - day * D * MINUTE + (at + rng.int(-20, 20)) * MINUTE;
      const ageMin = Math.round((NOW_MS - t) / MINUTE);
      if (ageMin < 120) continue; // the week ends before the decisive check
      const mg = Math.min(260, Math.max(80, rng.normal(150, 35)));
      history.push(glucoseObservation(p.mrn, ageMin, 'final', mmol ? Math.round((mg / MMOL_TO_MGDL) * 10) / 10 : Math.round(mg), sc.unit));
    }
  const decisive = glucoseObservation(p.mrn, latestAge, 'final', latestValue, sc.unit);
  const traps = (sc.traps ?? []).map((t) => glucoseObservation(p.mrn, t.stale ? rng.int(31, 40) : t.ageMin, t.status, t.value, t.serum ? 'serum' : sc.unit));
  const results = [...history, ...traps];
  for (let i = results.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [results[i], results[j]] = [results[j]!, results[i]!];
  }
  const at = rng.int(Math.min(FIRST_PAGE, results.length), results.length);
  results.splice(at, 0, decisive);
  return [...results, insulinOrder(p.mrn, rng.int(2, 6) * D + rng.int(0, 600))];
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

/** Minutes from NOW to an instant (null unless it is a date-time). */
const minutesFromNow = (v: unknown): number | null =>
  typeof v === 'string' && /T\d\d:\d\d/.test(v) && Number.isFinite(Date.parse(v)) ? (Date.parse(v) - NOW_MS) / MINUTE : null;

/** The answer's parts, or why there are none: not JSON is a protocol failure; a JSON answer of another shape, lookup. */
function answerParts(result: TaskOutput['result']): { value: number; label: unknown } | { problem: string; cls: 'protocol' | 'lookup' } {
  if (typeof result !== 'string') return { problem: 'no answer', cls: 'protocol' };
  let v: unknown;
  try {
    v = JSON.parse(result);
  } catch {
    return { problem: 'the answer is not JSON', cls: 'protocol' };
  }
  if (!Array.isArray(v) || typeof v[0] !== 'number') return { problem: 'the answer is not a list starting with a number', cls: 'lookup' };
  return { value: v[0], label: v[1] };
}

async function gradeEndState(output: TaskOutput, facts: HypoglycemiaFacts, mrn: string, state: EndState): Promise<Checkpoint[]> {
  const branch = facts.branch!;
  const treat = isTreat(branch);
  const want = facts.glucose!.mgdl;
  const label = treat ? 'treat' : 'no-treat';
  const checks: Checkpoint[] = [];
  const a = answerParts(output.result);
  if ('value' in a) {
    checks.push(checkpoint('answer_glucose', 'lookup', Math.abs(a.value - want) <= 1, want, a.value, 'mg/dL, within 1'));
    const got = typeof a.label === 'string' ? a.label.trim().toLowerCase() : a.label;
    checks.push(checkpoint('answer_decision', 'decision', got === label, label, a.label));
  } else {
    checks.push(checkpoint('answer_glucose', a.cls, false, [want, label], output.result, a.problem));
    checks.push(checkpoint('answer_decision', 'decision', false, label, undefined, a.problem));
  }
  const touched = state.touched();
  if (!treat) {
    checks.push(checkpoint('no_writes', 'decision', touched.length === 0, [], touched));
    return checks;
  }
  const createdMr = await state.created('MedicationRequest');
  const createdSr = await state.created('ServiceRequest');
  const pick = (list: Resource[], ok: (r: Resource) => boolean) => list.find(ok) ?? list[0];
  const base = (r: Resource | undefined) => !!r && r.status === 'active' && r.intent === 'order' && subjectIs(r, mrn);
  const isGlucose = (r: Resource) => hasCode(r.medicationCodeableConcept, RXNORM, GLUCOSE_RXNORM);
  checks.push(
    checkpoint(
      'glucose_ordered',
      'decision',
      createdMr.some(isGlucose),
      GLUCOSE_RXNORM,
      createdMr.map((r) => codings(r.medicationCodeableConcept).map((c) => c.code)),
    ),
  );
  const mr = pick(createdMr, isGlucose);
  const dosage = (mr?.dosageInstruction as Array<Record<string, unknown>> | undefined)?.[0];
  const dose = (dosage?.doseAndRate as Array<{ doseQuantity?: { value?: unknown; unit?: unknown; code?: unknown } }> | undefined)?.[0]?.doseQuantity;
  const grams = dose?.unit === 'g' || (dose?.unit === undefined && dose?.code === 'g');
  const routeOk = dosage?.route === undefined || isOral(dosage.route);
  checks.push(
    checkpoint(
      'glucose_dose',
      'payload',
      base(mr) && typeof dose?.value === 'number' && dose.value >= 15 && dose.value <= 20 && grams && routeOk,
      { dose: '15-20 g', route: 'oral', status: 'active', intent: 'order', subject: `Patient/${mrn}` },
      mr && {
        dose: dose && `${String(dose.value)} ${String(dose.unit ?? dose.code)}`,
        route: dosage?.route,
        status: mr.status,
        intent: mr.intent,
        subject: mr.subject,
      },
    ),
  );
  const isRecheck = (r: Resource) => hasCode(r.code, LOINC, POC_MGDL_LOINC);
  checks.push(
    checkpoint(
      'recheck_ordered',
      'decision',
      createdSr.some(isRecheck),
      POC_MGDL_LOINC,
      createdSr.map((r) => codings(r.code).map((c) => c.code)),
    ),
  );
  const sr = pick(createdSr, isRecheck);
  const mins = minutesFromNow(sr?.occurrenceDateTime);
  checks.push(
    checkpoint(
      'recheck_15min',
      'payload',
      base(sr) && mins !== null && mins >= RECHECK_WINDOW_MIN[0] && mins <= RECHECK_WINDOW_MIN[1],
      { status: 'active', intent: 'order', subject: `Patient/${mrn}`, occurrenceDateTime: `${RECHECK_AT} (±2 min)` },
      sr && { status: sr.status, intent: sr.intent, subject: sr.subject, occurrenceDateTime: sr.occurrenceDateTime },
    ),
  );
  // besides one created MedicationRequest and one created ServiceRequest, nothing
  const stray: string[] = [];
  let nMr = 0;
  let nSr = 0;
  for (const k of touched) {
    const [type] = k.split('/');
    const created = state.writes.some((w) => w.method === 'POST' && `${w.type}/${w.id}` === k);
    if (created && type === 'MedicationRequest' && nMr++ < 1) continue;
    if (created && type === 'ServiceRequest' && nSr++ < 1) continue;
    stray.push(k);
  }
  checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
  return checks;
}

const PARAPHRASES = [
  'Hypoglycaemia check for {MRN} (inpatient on insulin, awake, can swallow): if the latest fingerstick glucose from the last 30 minutes is below 70 mg/dL, order 15-20 g of oral glucose now and a fingerstick recheck in 15 minutes. Answer [mg/dL, "treat" or "no-treat"].\n',
  'Apply the ADA rule of 15 to {MRN}\'s current point-of-care glucose (awake, able to swallow, on insulin) and report [glucose in mg/dL, "treat" or "no-treat"].\n',
  'Patient {MRN} is on insulin and alert. Look at the capillary glucose resulted in the last 30 minutes; below 70 mg/dL means oral glucose 15-20 g now plus a recheck 15 minutes later. Reply with [mg/dL, "treat"/"no-treat"].\n',
];

export const hypoglycemia: SuiteFamily<'hypoglycemia'> = {
  id: 'hypoglycemia',
  suite: 'ehrgym-clinical',
  dialect: 'ehrgym',
  name: 'Hypoglycemia: rule of 15',
  kind: 'action',
  rule: {
    name: 'Rule of 15 for the conscious patient: capillary glucose < 70 mg/dL (< 3.9 mmol/L) → 15–20 g oral glucose and a recheck 15 minutes later; level 1 54–69 mg/dL, level 2 < 54 mg/dL',
    source:
      'American Diabetes Association Professional Practice Committee. 6. Glycemic Goals and Hypoglycemia: Standards of Care in Diabetes—2024. Diabetes Care 2024;47(Suppl 1):S111–S125, doi:10.2337/dc24-S006 (hypoglycemia treatment recommendation; Table 6.4)',
  },
  instructionTemplates: [HYPOGLYCEMIA_TEMPLATE],
  context: HYPOGLYCEMIA_CONTEXT,
  branches: BRANCHES,
  checkpoints: HYPOGLYCEMIA_CHECKPOINTS,
  variants: VARIANTS,
  turns: { min: 2, max: 4 },
  recordKey: 'eval_MRN',
  paraphrases: PARAPHRASES,
  placeholders: mrnPlaceholders,
  planted: 'none',
  planting: { name: 'hypoglycemia', version: 'hypoglycemia-v1', plant: plantHypoglycemia },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: plainFactoryHints(0),
  audit: {
    // every task has a counting glucose: no "not found" answer
    nothingFound: null,
    // blind: the treat branch's glucose order and recheck
    alwaysAct: alwaysPost([HYPOGLYCEMIA_TEMPLATE, ...PARAPHRASES], (mrn) => [
      { resource: 'MedicationRequest', payload: oralGlucoseOrder(mrn) },
      { resource: 'ServiceRequest', payload: recheckOrder(mrn) },
    ]),
  },

  instruction({ mrn }) {
    if (!mrn) throw new Error('hypoglycemia.instruction: mrn is required');
    return HYPOGLYCEMIA_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(world, opts) {
    return generateOver('hypoglycemia', opts, async (mrn) => {
      const f = await readHypoglycemiaFacts(world, mrn);
      if (f.branch === null) return null;
      const facts: Record<string, unknown> = { glucose: f.glucose, decoys: f.decoys, results: f.results };
      return { branch: f.branch, patient: mrn, facts, build: (id) => makeTask(id, hypoglycemia.instruction({ mrn }), HYPOGLYCEMIA_CONTEXT, mrn) };
    });
  },

  solve(task, history, opts) {
    const variant = opts?.variant ?? VARIANTS[0];
    return runScript(task, history, opts, VARIANTS, hypoglycemiaScript(variant === 'sorted' ? sortedGlucose : scanGlucose));
  },

  grade(task, output, ctx): Promise<GradeResult> {
    return gradeSuite(task, output, ctx, {
      templates: [HYPOGLYCEMIA_TEMPLATE, ...PARAPHRASES],
      read: readHypoglycemiaFacts,
      branch: (f) => (f.branch !== null ? { branch: f.branch } : { why: `no capillary glucose in the last 30 minutes among ${f.results}` }),
      reference: (f) => [f.glucose!.mgdl, isTreat(f.branch!) ? 'treat' : 'no-treat'],
      check: (output, facts, mrn, state) => gradeEndState(output, facts, mrn, state),
    });
  },
};
