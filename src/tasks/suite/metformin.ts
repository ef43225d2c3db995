/**
 * metformin — start metformin only if the race-free eGFR allows it, stop it when the eGFR has fallen below 30 (clinical
 * suite, medication safety; docs/tasks.md).
 *
 * Rule: FDA Drug Safety Communication, "FDA revises warnings regarding use of the diabetes medicine metformin in
 * certain patients with reduced kidney function" (8 April 2016), carried into every metformin label (§2, §4): obtain
 * the eGFR before starting; contraindicated below 30 mL/min/1.73 m²; starting at 30–45 is not recommended; in patients
 * taking metformin whose eGFR falls below 45 assess benefit and risk, and discontinue below 30. The eGFR is the CKD-EPI
 * 2021 creatinine equation without race (Inker LA et al., N Engl J Med 2021;385:1737–1749; kidney.org, NIDDK):
 * 142 × min(Scr/κ,1)^α × max(Scr/κ,1)^−1.200 × 0.9938^age × 1.012 [female], κ 0.7 / 0.9, α −0.241 / −0.302 (F / M),
 * Scr in mg/dL (µmol/L ÷ 88.4). The starting order is the extended-release 500 mg tablet once daily (the ER label's
 * starting dose, "500 mg orally once daily with the evening meal").
 *
 * The family reads the patient's age and sex, every serum creatinine (LOINC 2160-0 mg/dL and 14682-9 µmol/L) and the
 * metformin orders. Branches: not on metformin → `start` (eGFR ≥ 45: order it), `do_not_start` (30–44),
 * `contraindicated` (< 30); already on an active metformin order → `stop` (eGFR < 30: set that order to stopped) or
 * `continue` (≥ 30: leave it; the label's benefit/risk review at 30–44 is the prescriber's, the task changes nothing).
 *
 * The world plants (lane 0 only) a fresh creatinine this morning, newer than the cohort's morning labs (so it is the
 * decisive result, and past the first page of an unsorted creatinine search), with its value chosen by inverting the
 * equation so the eGFR falls in a band ≥ 1.5 away from 30 and 45. Traps: the decisive value reported in µmol/L
 * (14682-9; an agent that skips the conversion, or searches 2160-0 only, gets another eGFR), a newer
 * `entered-in-error` creatinine of the opposite band, and an old `stopped` immediate-release metformin order (not a
 * current one). The grader replays the episode's writes (`replayEndState`) and checks the record it left.
 *
 * Codes (checked against public sources): LOINC 2160-0, 14682-9 (HL7 CPG CKD value set); RxNorm 860975 (24 HR
 * metformin hydrochloride 500 MG Extended Release Oral Tablet, the catalog's), 861007 (metformin hydrochloride 500 MG
 * Oral Tablet, SCD); RxNorm 6809 (metformin, ingredient) is recognised as metformin but not checked.
 */
import type { Resource } from '../../fhir/types.js';
import { fmtInstant, fmtMinute, MINUTE, NOW_MS } from '../../worlds/clinical.js';
import { LOINC, RXNORM, SNOMED, UCUM } from '../../worlds/catalog.js';
import type { Rng } from '../../worlds/prng.js';
import { ageOn20231113, type PlantPatient } from '../../worlds/synthetic.js';
import {
  generateOver,
  makeTask,
  mrnDetector,
  mrnPlaceholders,
  plainFactoryHints,
  runScript,
  type ScriptIO,
  taskMrn,
  worldJson,
  alwaysPost,
} from '../common.js';
import type { EndState } from '../endstate.js';
import {
  answerList,
  changedKeys,
  type Checkpoint,
  checkpoint,
  codings,
  D,
  gradeSuite,
  hasAnyCode,
  inLane,
  isOral,
  LAB_CATEGORY,
  onLane,
  resources,
  sameLabel,
  shuffle,
  strayWrites,
  subjectIs,
  VALID_RESULT_STATUSES,
} from './kit.js';
import type { GradeResult, SuiteFamily, TaskCase, TaskOutput, WorldAccess } from '../types.js';

export const METFORMIN_TEMPLATE =
  'The team wants patient {MRN} on metformin for type 2 diabetes. Compute the eGFR (CKD-EPI 2021, race-free) from the most recent serum creatinine and apply the FDA metformin eGFR limits: if the patient is not on metformin, order it when starting is allowed; if they already have an active metformin order, stop it when the eGFR requires it. Finish with [eGFR rounded to one decimal, decision].\n';
export const METFORMIN_CONTEXT =
  "It's 2023-11-13T10:15:00+00:00 now. Serum creatinine is LOINC 2160-0 (mg/dL) or 14682-9 (umol/L; 1 mg/dL = 88.4 umol/L); only results with status final, amended or corrected count, and the most recent by effectiveDateTime is the one to use. " +
  'CKD-EPI 2021: eGFR = 142 x min(Scr/k,1)^a x max(Scr/k,1)^-1.200 x 0.9938^age x 1.012 if female, with Scr in mg/dL, k = 0.7 (female) or 0.9 (male), a = -0.241 (female) or -0.302 (male), age in completed years from Patient.birthDate. ' +
  'FDA labelling: not on metformin and eGFR >= 45: start, ordering metformin ER 500 mg by mouth once daily (MedicationRequest, status active, intent order, RxNorm 860975, doseAndRate[0].doseQuantity 500 mg, timing.repeat frequency 1 period 1 periodUnit d); ' +
  'eGFR 30 to < 45: do not start; eGFR < 30: contraindicated. A metformin order is current only with status active. Already on metformin and eGFR < 30: stop it (set that MedicationRequest to status stopped and change nothing else); already on metformin and eGFR >= 30: leave it unchanged. ' +
  'Answer with [eGFR, "start"], [eGFR, "do-not-start"], [eGFR, "contraindicated"], [eGFR, "stop"] or [eGFR, "continue"], the eGFR in mL/min/1.73 m2 rounded to one decimal.';

export const CR_MGDL_LOINC = '2160-0';
export const CR_MGDL_DISPLAY = 'Creatinine [Mass/volume] in Serum or Plasma';
export const CR_UMOL_LOINC = '14682-9';
export const CR_UMOL_DISPLAY = 'Creatinine [Moles/volume] in Serum or Plasma';
/** 1 mg/dL of creatinine = 88.4 µmol/L. */
export const UMOL_PER_MGDL = 88.4;
export const METFORMIN_ER_RXNORM = '860975';
export const METFORMIN_ER_DISPLAY = '24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet';
export const METFORMIN_IR_RXNORM = '861007';
export const METFORMIN_IR_DISPLAY = 'metformin hydrochloride 500 MG Oral Tablet';
/** Codes that make a MedicationRequest a metformin order (the SCDs and the ingredient). */
export const METFORMIN_CODES: readonly string[] = [METFORMIN_ER_RXNORM, METFORMIN_IR_RXNORM, '6809'];
export const NOW_ISO = '2023-11-13T10:15:00+00:00';
/**
 * A patient serves a task when their most recent creatinine was resulted in the last 3 hours (this morning's fresh
 * result the team decides on; the cohort's own morning labs are drawn before 06:30, at least 3 h 45 min before NOW).
 */
export const FRESH_MS = 3 * 60 * MINUTE;
/**
 * The answer's eGFR is to one decimal and must be within this of the unrounded value (rounding, or 88.42 for 88.4). One
 * decimal, not the lab's integer: the do-not-start band is 12 units wide, so a fixed integer answer would match too
 * many tasks; an age off by a year moves the eGFR by about 0.6 and fails.
 */
export const EGFR_TOLERANCE = 0.15;
export const round1 = (x: number): number => Math.round(x * 10) / 10;
/** eGFRs closer than this to 30 or 45 serve no task (rounding could change the band). */
export const BOUNDARY_MARGIN = 1.5;

export type MetforminBranch = 'start' | 'do_not_start' | 'contraindicated' | 'stop' | 'continue';
/** In the order the balanced split fills them (the first three get the extra task of 28). */
const BRANCHES: readonly MetforminBranch[] = ['start', 'stop', 'do_not_start', 'contraindicated', 'continue'];
export const METFORMIN_LABELS: Readonly<Record<MetforminBranch, string>> = {
  start: 'start',
  do_not_start: 'do-not-start',
  contraindicated: 'contraindicated',
  stop: 'stop',
  continue: 'continue',
};

const ANSWER = ['finished', 'answer_egfr', 'answer_decision'] as const;
/** Checkpoints per branch, in the order an expert works (look up, decide, write, nothing else). */
export const METFORMIN_CHECKPOINTS: Readonly<Record<MetforminBranch, readonly string[]>> = {
  start: [...ANSWER, 'metformin_ordered', 'order_payload', 'no_other_writes'],
  do_not_start: [...ANSWER, 'no_writes'],
  contraindicated: [...ANSWER, 'no_writes'],
  stop: [...ANSWER, 'metformin_stopped', 'stop_only_status', 'no_other_writes'],
  continue: [...ANSWER, 'no_writes'],
};

// ---------------------------------------------------------------------------------------------------------------
// The rule

/** CKD-EPI 2021 creatinine eGFR (mL/min/1.73 m², unrounded) from Scr in mg/dL, age in completed years, sex. */
export function ckdEpi2021(scrMgdl: number, age: number, gender: 'male' | 'female'): number {
  const female = gender === 'female';
  const k = female ? 0.7 : 0.9;
  const a = female ? -0.241 : -0.302;
  const r = scrMgdl / k;
  return 142 * Math.min(r, 1) ** a * Math.max(r, 1) ** -1.2 * 0.9938 ** age * (female ? 1.012 : 1);
}

/** The creatinine (mg/dL) giving an eGFR: the equation inverted on the branch of the spline the target falls on. */
export function creatinineFor(egfr: number, age: number, gender: 'male' | 'female'): number {
  const female = gender === 'female';
  const k = female ? 0.7 : 0.9;
  const a = female ? -0.241 : -0.302;
  const ratio = egfr / (142 * 0.9938 ** age * (female ? 1.012 : 1));
  return k * (ratio >= 1 ? ratio ** (1 / a) : ratio ** (1 / -1.2));
}

/** The label's decision for an eGFR, by whether the patient already has an active metformin order. */
export function metforminBranch(egfr: number, onMetformin: boolean): MetforminBranch {
  if (onMetformin) return egfr < 30 ? 'stop' : 'continue';
  if (egfr >= 45) return 'start';
  return egfr >= 30 ? 'do_not_start' : 'contraindicated';
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the record

export interface CreatinineReading {
  /** As written, in its unit. */
  value: number;
  unit: 'mg/dL' | 'umol/L';
  mgdl: number;
  time: string;
  id: string;
}

const isUmol = (r: Record<string, unknown>): boolean => {
  const q = r.valueQuantity as { unit?: unknown; code?: unknown } | undefined;
  const u = String(q?.code ?? q?.unit ?? '');
  if (u !== '') return /mol/i.test(u);
  return hasAnyCode(r.code, LOINC, [CR_UMOL_LOINC]);
};

/** A creatinine result as read (any status); null without a numeric value or time. */
export function creatinineOf(r: Record<string, unknown>): CreatinineReading | null {
  const v = (r.valueQuantity as { value?: unknown } | undefined)?.value;
  if (typeof v !== 'number' || !Number.isFinite(Date.parse(String(r.effectiveDateTime)))) return null;
  const umol = isUmol(r);
  return { value: v, unit: umol ? 'umol/L' : 'mg/dL', mgdl: umol ? v / UMOL_PER_MGDL : v, time: String(r.effectiveDateTime), id: String(r.id) };
}

/** The creatinine that counts among search results: standing (`VALID_RESULT_STATUSES`), latest by effectiveDateTime. */
export function latestCreatinine(results: readonly Record<string, unknown>[]): CreatinineReading | null {
  let best: CreatinineReading | null = null;
  let bestT = -Infinity;
  for (const r of results) {
    if (!VALID_RESULT_STATUSES.includes(String(r.status))) continue;
    if (!hasAnyCode(r.code, LOINC, [CR_MGDL_LOINC, CR_UMOL_LOINC])) continue;
    const c = creatinineOf(r);
    if (!c) continue;
    const t = Date.parse(c.time);
    if (t <= NOW_MS && t > bestT) {
      bestT = t;
      best = c;
    }
  }
  return best;
}

const isMetformin = (r: Record<string, unknown>): boolean => hasAnyCode(r.medicationCodeableConcept, RXNORM, METFORMIN_CODES);
/** The active metformin orders among MedicationRequest search results. */
export const activeMetformin = (orders: readonly Record<string, unknown>[]): Record<string, unknown>[] =>
  orders.filter((r) => r.status === 'active' && isMetformin(r));

const creatinineQuery = (mrn: string) => `Observation?patient=${mrn}&code=${CR_MGDL_LOINC},${CR_UMOL_LOINC}&_count=5000`;
const ordersQuery = (mrn: string) => `MedicationRequest?patient=${mrn}&_count=5000`;

export interface Demographics {
  age: number;
  gender: 'male' | 'female';
}
/** Age (completed years at NOW) and sex of a Patient resource; null when either is missing or not male/female. */
export function demographicsOf(p: Record<string, unknown> | undefined): Demographics | null {
  const bd = p?.birthDate;
  const g = p?.gender;
  if (typeof bd !== 'string' || !/^\d{4}-\d\d-\d\d$/.test(bd) || (g !== 'male' && g !== 'female')) return null;
  return { age: ageOn20231113(bd), gender: g };
}

/** What a task's reference is, read from the world (generator and grader share it). */
export interface MetforminFacts {
  branch: MetforminBranch | null;
  why?: string;
  demographics: Demographics | null;
  creatinine: CreatinineReading | null;
  /** Unrounded eGFR of the creatinine that counts. */
  egfr: number | null;
  /** The active metformin order (stop/continue). */
  orderId: string | null;
  results: number;
}

export async function readMetforminFacts(world: WorldAccess, mrn: string): Promise<MetforminFacts> {
  const patient = resources(await worldJson(world, `Patient?identifier=${mrn}`))[0];
  const demographics = demographicsOf(patient);
  const results = resources(await worldJson(world, creatinineQuery(mrn)));
  const creatinine = latestCreatinine(results);
  const active = activeMetformin(resources(await worldJson(world, ordersQuery(mrn))));
  const base = { demographics, creatinine, egfr: null, orderId: null, results: results.length };
  const none = (why: string): MetforminFacts => ({ ...base, branch: null, why });
  if (!demographics) return none('no age or sex');
  if (!creatinine) return none(`no standing creatinine among ${results.length}`);
  if (Date.parse(creatinine.time) < NOW_MS - FRESH_MS) return none(`the latest creatinine (${creatinine.time}) is not this morning's fresh result`);
  if (active.length > 1) return none(`${active.length} active metformin orders`);
  const egfr = ckdEpi2021(creatinine.mgdl, demographics.age, demographics.gender);
  if (Math.abs(egfr - 30) < BOUNDARY_MARGIN || Math.abs(egfr - 45) < BOUNDARY_MARGIN) return none(`eGFR ${egfr.toFixed(1)} too close to a threshold`);
  const orderId = active[0] ? String(active[0].id) : null;
  return { ...base, egfr, orderId, branch: metforminBranch(egfr, orderId !== null) };
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads

export function metforminOrder(mrn: string): Record<string, unknown> {
  return {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: METFORMIN_ER_RXNORM, display: METFORMIN_ER_DISPLAY }], text: METFORMIN_ER_DISPLAY },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: NOW_ISO,
    dosageInstruction: [
      {
        text: '500 mg by mouth once daily with the evening meal',
        timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } },
        route: { coding: [{ system: SNOMED, code: '26643006', display: 'Oral route' }], text: 'Oral' },
        doseAndRate: [{ doseQuantity: { value: 500, unit: 'mg', system: UCUM, code: 'mg' } }],
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Expert policy

/** How a policy reads the creatinine that counts (the expert's; tests plug in trap readers). */
export type CreatinineReader = (io: ScriptIO, mrn: string) => CreatinineReading | null;

/** Variant `scan`: every creatinine of both codes (`_count=5000`), standing ones only, the latest. */
export const scanCreatinine: CreatinineReader = (io, mrn) => latestCreatinine(resources(io.json(`${io.apiBase}${creatinineQuery(mrn)}`)));

/** Variant `sorted`: the 20 most recent of both codes, latest first; the first standing one. */
export const sortedCreatinine: CreatinineReader = (io, mrn) =>
  latestCreatinine(resources(io.json(`${io.apiBase}Observation?patient=${mrn}&code=${CR_MGDL_LOINC},${CR_UMOL_LOINC}&_sort=-date&_count=20`)));

const VARIANTS = ['scan', 'sorted'] as const;

/** The expert's script with a given creatinine reader: demographics, creatinine, orders, decide, write, answer. */
export function metforminScript(read: CreatinineReader): (io: ScriptIO, task: TaskCase) => void {
  return (io, task) => {
    const mrn = taskMrn(task, [METFORMIN_TEMPLATE, ...metformin.paraphrases]);
    const demo = demographicsOf(resources(io.json(`${io.apiBase}Patient?identifier=${mrn}`))[0]);
    const cr = read(io, mrn);
    if (!demo || !cr) return io.finish([]);
    // `sorted` (the corpus's rows) asks for the active metformin orders only; `scan` reads every order
    const ordersUrl =
      io.variant === 'sorted' ? `MedicationRequest?patient=${mrn}&code=${METFORMIN_CODES.join(',')}&status=active&_count=200` : ordersQuery(mrn);
    const active = activeMetformin(resources(io.json(`${io.apiBase}${ordersUrl}`)));
    const egfr = ckdEpi2021(cr.mgdl, demo.age, demo.gender);
    const branch = metforminBranch(egfr, active.length > 0);
    if (branch === 'start') io.post(`${io.apiBase}MedicationRequest`, metforminOrder(mrn));
    if (branch === 'stop') io.put(`${io.apiBase}MedicationRequest/${String(active[0]!.id)}`, { ...active[0], status: 'stopped' });
    io.finish([round1(egfr), METFORMIN_LABELS[branch]]);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Planting

type Band = 'high' | 'mid' | 'low';
/** eGFR bands planted (each ≥ 1.5 from 30 and 45). */
const BANDS: Readonly<Record<Band, readonly [number, number]>> = { high: [47, 100], mid: [31.5, 43.5], low: [12, 28.5] };
/** A trap's band: one that flips the decision whether or not the patient is on metformin (mid → low: do-not-start → contraindicated, continue → stop). */
const OPPOSITE: Readonly<Record<Band, Band>> = { high: 'low', mid: 'low', low: 'high' };

interface CreatinineScenario {
  band: Band;
  /** The decisive result (and the traps) in µmol/L, LOINC 14682-9. */
  umol?: boolean;
  /** A newer `entered-in-error` creatinine of the opposite band. */
  eie?: boolean;
  /** An old `stopped` immediate-release metformin order. */
  stoppedOrder?: boolean;
}
/**
 * Dealt round-robin over the lane's patients (13, coprime with the split's modulus 5, so both splits see every
 * scenario): high × 4, mid × 4, low × 5 (the `stop` branch needs a low eGFR on a patient already on metformin), in an
 * order that gives every branch at least 7 of the clinical world's test patients.
 */
const SCENARIOS: readonly CreatinineScenario[] = [
  { band: 'mid', eie: true },
  { band: 'mid', umol: true, stoppedOrder: true },
  { band: 'low', eie: true },
  { band: 'low', umol: true },
  { band: 'mid' },
  { band: 'low', stoppedOrder: true },
  { band: 'high', eie: true },
  { band: 'high', umol: true },
  { band: 'low', eie: true, umol: true },
  { band: 'high', stoppedOrder: true },
  { band: 'high', umol: true, eie: true },
  { band: 'low' },
  { band: 'mid', umol: true, eie: true },
];
/** The lane the family plants on (families reading creatinine plant on disjoint lanes). */
export const METFORMIN_LANE = 0;

/** The scenario a patient gets (null: off the lane). */
export function metforminScenarioOf(index: number): CreatinineScenario | null {
  if (!inLane(index, METFORMIN_LANE)) return null;
  return SCENARIOS[Math.floor(index / 2) % SCENARIOS.length]!;
}

function creatinineObservation(mrn: string, ageMin: number, status: string, mgdl: number, umol: boolean, umolDisplay: string): Resource {
  const t = NOW_MS - ageMin * MINUTE;
  return {
    resourceType: 'Observation',
    status,
    category: LAB_CATEGORY,
    code: umol
      ? { coding: [{ system: LOINC, code: CR_UMOL_LOINC, display: CR_UMOL_DISPLAY }], text: 'Creatinine' }
      : { coding: [{ system: LOINC, code: CR_MGDL_LOINC, display: CR_MGDL_DISPLAY }], text: 'Creatinine' },
    subject: { reference: `Patient/${mrn}` },
    effectiveDateTime: fmtMinute(t),
    issued: fmtInstant(Math.min(t + 40 * MINUTE, NOW_MS)),
    valueQuantity: umol
      ? { value: Math.round(mgdl * UMOL_PER_MGDL), unit: umolDisplay, system: UCUM, code: 'umol/L' }
      : { value: Math.round(mgdl * 100) / 100, unit: 'mg/dL', system: UCUM, code: 'mg/dL' },
  };
}

/** A creatinine (mg/dL) whose eGFR lies in the band, after the rounding the record applies. */
function creatinineInBand(band: Band, age: number, gender: 'male' | 'female', umol: boolean, rng: Rng, spread?: number): number {
  const [lo, hi] = BANDS[band];
  for (let i = 0; i < 50; i++) {
    // the decisive value's target eGFR: `spread` (a low-discrepancy point in [0, 1) per patient) on the first try, so
    // that no two patients of a band share an answer; random after that
    const u = i === 0 && spread !== undefined ? spread : rng.next();
    const scr = creatinineFor(lo + u * (hi - lo), age, gender);
    const stored = umol ? Math.round(scr * UMOL_PER_MGDL) / UMOL_PER_MGDL : Math.round(scr * 100) / 100;
    const e = ckdEpi2021(stored, age, gender);
    if (stored >= 0.4 && e >= lo && e <= hi) return stored;
  }
  // a very old patient cannot reach the top of the high band with a plausible creatinine: the band's floor
  return Math.round(creatinineFor(lo + 2, age, gender) * 100) / 100;
}

function stoppedMetforminOrder(mrn: string, ageMin: number): Resource {
  return {
    resourceType: 'MedicationRequest',
    status: 'stopped',
    intent: 'order',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/medicationrequest-category', code: 'community', display: 'Community' }] }],
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: METFORMIN_IR_RXNORM, display: METFORMIN_IR_DISPLAY }], text: METFORMIN_IR_DISPLAY },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: fmtMinute(NOW_MS - ageMin * MINUTE),
    dosageInstruction: [
      {
        text: '500 mg oral BID',
        timing: { repeat: { frequency: 2, period: 1, periodUnit: 'd' } },
        route: { coding: [{ system: SNOMED, code: '26643006', display: 'Oral route' }], text: 'Oral' },
        doseAndRate: [{ doseQuantity: { value: 500, unit: 'mg' } }],
      },
    ],
  };
}

/**
 * A lane patient's records: this morning's decisive creatinine (40–170 min old, newer than the cohort's morning labs),
 * the scenario's traps, a few older outside-lab µmol/L results on µmol/L patients, in shuffled order after the cohort's
 * own creatinine (so past the first page of an unsorted search).
 */
function plantMetformin(p: PlantPatient, rng: Rng): Resource[] {
  const sc = metforminScenarioOf(p.index);
  if (!sc) return [];
  const age = ageOn20231113(p.birthDate);
  const umol = sc.umol === true;
  const umolDisplay = rng.chance(1 / 3) ? 'µmol/L' : 'umol/L';
  const decisiveAge = rng.int(40, 170);
  const out: Resource[] = [
    creatinineObservation(
      p.mrn,
      decisiveAge,
      'final',
      creatinineInBand(sc.band, age, p.gender, umol, rng, (p.index * 0.6180339887498949) % 1),
      umol,
      umolDisplay,
    ),
  ];
  if (sc.eie) {
    const flip = creatinineInBand(OPPOSITE[sc.band], age, p.gender, umol, rng);
    out.push(creatinineObservation(p.mrn, rng.int(5, decisiveAge - 20), 'entered-in-error', flip, umol, umolDisplay));
  }
  if (umol) {
    for (let i = rng.int(2, 4); i > 0; i--) {
      const mgdl = Math.min(2.4, Math.max(0.6, rng.normal(1.05, 0.3)));
      out.push(creatinineObservation(p.mrn, rng.int(60, 700) * D + rng.int(0, 600), 'final', mgdl, true, umolDisplay));
    }
  }
  if (sc.stoppedOrder) out.push(stoppedMetforminOrder(p.mrn, rng.int(400, 1100) * D));
  return shuffle(out, rng);
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

async function gradeEndState(output: TaskOutput, facts: MetforminFacts, mrn: string, state: EndState): Promise<Checkpoint[]> {
  const branch = facts.branch!;
  const want = facts.egfr!;
  const label = METFORMIN_LABELS[branch];
  const checks: Checkpoint[] = [];
  const a = answerList(output.result, 2);
  if ('items' in a && typeof a.items[0] === 'number') {
    checks.push(checkpoint('answer_egfr', 'lookup', Math.abs(a.items[0] - want) <= EGFR_TOLERANCE, round1(want), a.items[0], `eGFR within ${EGFR_TOLERANCE}`));
    checks.push(checkpoint('answer_decision', 'decision', sameLabel(a.items[1], label), label, a.items[1]));
  } else {
    const problem = 'items' in a ? 'the answer does not start with a number' : a.problem;
    checks.push(checkpoint('answer_egfr', 'items' in a ? 'lookup' : a.cls, false, [round1(want), label], output.result, problem));
    checks.push(checkpoint('answer_decision', 'decision', false, label, undefined, problem));
  }
  if (branch === 'do_not_start' || branch === 'contraindicated' || branch === 'continue') {
    const touched = state.touched();
    checks.push(checkpoint('no_writes', 'decision', touched.length === 0, [], touched));
    return checks;
  }
  if (branch === 'stop') {
    const orderId = facts.orderId!;
    const key = `MedicationRequest/${orderId}`;
    const before = await state.readBase('MedicationRequest', orderId);
    const after = await state.read('MedicationRequest', orderId);
    checks.push(checkpoint('metformin_stopped', 'decision', after?.status === 'stopped', 'stopped', after?.status));
    const changed = changedKeys(before, after, 'status');
    checks.push(
      checkpoint('stop_only_status', 'payload', changed.length === 0, [], changed, 'fields of the metformin order other than status and meta that changed'),
    );
    const stray = strayWrites(state, {}, [key]);
    checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
    return checks;
  }
  const created = await state.created('MedicationRequest');
  const isOrder = (r: Resource) => hasAnyCode(r.medicationCodeableConcept, RXNORM, [METFORMIN_ER_RXNORM]);
  checks.push(
    checkpoint(
      'metformin_ordered',
      'decision',
      created.some(isOrder),
      METFORMIN_ER_RXNORM,
      created.map((r) => codings(r.medicationCodeableConcept).map((c) => c.code)),
    ),
  );
  const mr = created.find(isOrder) ?? created[0];
  const dosage = (mr?.dosageInstruction as Array<Record<string, unknown>> | undefined)?.[0];
  const dose = (dosage?.doseAndRate as Array<{ doseQuantity?: { value?: unknown; unit?: unknown; code?: unknown } }> | undefined)?.[0]?.doseQuantity;
  const repeat = (dosage?.timing as { repeat?: { frequency?: unknown; period?: unknown; periodUnit?: unknown } } | undefined)?.repeat;
  const ok =
    !!mr &&
    mr.status === 'active' &&
    mr.intent === 'order' &&
    subjectIs(mr, mrn) &&
    dose?.value === 500 &&
    (dose.unit === 'mg' || (dose.unit === undefined && dose.code === 'mg')) &&
    repeat?.frequency === 1 &&
    repeat.period === 1 &&
    repeat.periodUnit === 'd' &&
    (dosage?.route === undefined || isOral(dosage.route));
  checks.push(
    checkpoint(
      'order_payload',
      'payload',
      ok,
      { dose: '500 mg', timing: '1 per 1 d', route: 'oral', status: 'active', intent: 'order', subject: `Patient/${mrn}` },
      mr && {
        dose: dose && `${String(dose.value)} ${String(dose.unit ?? dose.code)}`,
        timing: repeat,
        route: dosage?.route,
        status: mr.status,
        intent: mr.intent,
        subject: mr.subject,
      },
    ),
  );
  const stray = strayWrites(state, { MedicationRequest: 1 });
  checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
  return checks;
}

const PARAPHRASES = [
  'Can metformin be started for {MRN}? Work out the CKD-EPI 2021 eGFR from the latest creatinine, apply the FDA eGFR limits (order it if allowed; if there is already an active metformin order, stop it when the eGFR requires), and reply [eGFR, decision].\n',
  'Renal check before metformin for patient {MRN}: race-free eGFR from the most recent serum creatinine, then act per the FDA labelling on metformin and answer with [eGFR to one decimal, decision].\n',
  'Patient {MRN} has type 2 diabetes. Using the newest creatinine and the CKD-EPI 2021 equation, decide what the FDA metformin label allows (start, do not start, contraindicated, or for a current order stop or continue), make the order change if any, and finish with [eGFR, decision].\n',
];

export const metformin: SuiteFamily<'metformin'> = {
  id: 'metformin',
  suite: 'ehrgym-clinical',
  dialect: 'ehrgym',
  name: 'Metformin by race-free eGFR',
  kind: 'action',
  rule: {
    name: 'Metformin and kidney function: obtain eGFR before starting; contraindicated below 30, starting at 30–45 not recommended, discontinue if it falls below 30 (eGFR by the CKD-EPI 2021 race-free creatinine equation)',
    source:
      'FDA Drug Safety Communication: FDA revises warnings regarding use of the diabetes medicine metformin in certain patients with reduced kidney function, 8 April 2016 (metformin labels §2, §4); Inker LA et al. New Creatinine- and Cystatin C-Based Equations to Estimate GFR without Race. N Engl J Med 2021;385:1737-1749',
  },
  instructionTemplates: [METFORMIN_TEMPLATE],
  context: METFORMIN_CONTEXT,
  branches: BRANCHES,
  checkpoints: METFORMIN_CHECKPOINTS,
  variants: VARIANTS,
  turns: { min: 4, max: 5 },
  recordKey: 'eval_MRN',
  paraphrases: PARAPHRASES,
  placeholders: mrnPlaceholders,
  planted: 'none',
  planting: { name: 'metformin', version: 'metformin-v2', plant: plantMetformin },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: plainFactoryHints(0),
  audit: {
    // every task has a creatinine that counts: no "not found" answer
    nothingFound: null,
    // blind: the start branch's order
    alwaysAct: alwaysPost([METFORMIN_TEMPLATE, ...PARAPHRASES], (mrn) => [{ resource: 'MedicationRequest', payload: metforminOrder(mrn) }]),
  },

  instruction({ mrn }) {
    if (!mrn) throw new Error('metformin.instruction: mrn is required');
    return METFORMIN_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(world, opts) {
    return generateOver('metformin', opts, async (mrn) => {
      if (!(await onLane(world, mrn, 0))) return null;
      const f = await readMetforminFacts(world, mrn);
      if (f.branch === null) return null;
      const facts: Record<string, unknown> = {
        demographics: f.demographics,
        creatinine: f.creatinine,
        egfr: f.egfr,
        orderId: f.orderId,
        results: f.results,
      };
      return { branch: f.branch, patient: mrn, facts, build: (id) => makeTask(id, metformin.instruction({ mrn }), METFORMIN_CONTEXT, mrn) };
    });
  },

  solve(task, history, opts) {
    const variant = opts?.variant ?? VARIANTS[0];
    return runScript(task, history, opts, VARIANTS, metforminScript(variant === 'sorted' ? sortedCreatinine : scanCreatinine));
  },

  grade(task, output, ctx): Promise<GradeResult> {
    return gradeSuite(task, output, ctx, {
      templates: [METFORMIN_TEMPLATE, ...PARAPHRASES],
      read: readMetforminFacts,
      branch: (f) => (f.branch !== null ? { branch: f.branch } : { why: f.why ?? 'no task' }),
      reference: (f) => [round1(f.egfr!), METFORMIN_LABELS[f.branch!]],
      check: (output, facts, mrn, state) => gradeEndState(output, facts, mrn, state),
    });
  },
};
