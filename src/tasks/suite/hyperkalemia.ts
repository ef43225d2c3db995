/**
 * hyperkalemia — severity-graded emergency treatment of acute hyperkalaemia (clinical suite, lab-triggered protocol;
 * docs/tasks.md).
 *
 * Rule: UK Kidney Association, "Clinical Practice Guidelines: Treatment of Acute Hyperkalaemia in Adults" (Alfonzo A,
 * Harrison A, Baines R, Chu A, Mann S, MacRury M; 2020, updated October 2023). Severity by serum potassium: mild
 * 5.5–5.9, moderate 6.0–6.4, severe ≥ 6.5 mmol/L; an immediate 12-lead ECG when K ≥ 6.0; IV insulin–glucose (10 units
 * soluble insulin with 25 g glucose) for K ≥ 6.0; nebulised salbutamol 10–20 mg as adjuvant therapy for severe
 * hyperkalaemia (K ≥ 6.5); IV calcium only when the ECG shows changes of hyperkalaemia. The task's context states the
 * local protocol built on it: the ECG is not yet recorded (no calcium), salbutamol 10 mg is required at ≥ 6.5 and
 * allowed but not required at 6.0–6.4 (NHS implementations differ), mild and normal results need no emergency
 * order. Out of scope (stated): post-insulin glucose monitoring and infusion, potassium binders, dialysis patients.
 *
 * The world plants, on the cohort's lane-1 patients, an active "Hyperkalemia" problem (the family's patients), two
 * weeks of serum potassium results (unsorted in server order, the decisive one past the first page of 20, 40 % in
 * mEq/L, numerically equal to mmol/L for potassium), and traps: a newer `entered-in-error` result (a haemolysed
 * sample, withdrawn) whose value would change the band, newer `cancelled` requests without a value, the decisive
 * result `corrected` (a `status=final`-only query misses it), a whole-blood blood-gas potassium (LOINC 6298-4, not the
 * serum result) in another band, and boundary values exactly 5.5, 6.0 and 6.5. The answer is [K, band, the result's
 * time]: the time keeps a fixed answer from matching more than one task (the mild band holds five values). The grader
 * replays the episode's writes (`replayEndState`) and checks the record it left.
 *
 * Codes: LOINC 2823-3 and 6298-4, RxNorm 4850 (glucose) and 435 (albuterol) and 311034 (insulin regular, human
 * 100 UNT/ML Injectable Solution, the clinical drug both Humulin R and Novolin R map to) were checked against public
 * code lists; SNOMED 268400002 (12 lead electrocardiogram), 47625008 (intravenous route), 447694001 (respiratory tract
 * route), 14140009 (hyperkalemia) and ICD-10-CM E87.5 are the standard codes but were not confirmed in a public list
 * in the time available. The grader accepts routes by text as well as by code.
 */
import type { Resource } from '../../fhir/types.js';
import { fmtInstant, fmtMinute, MINUTE, NOW_MS } from '../../worlds/clinical.js';
import { ICD10, LOINC, RXNORM, SNOMED, UCUM } from '../../worlds/catalog.js';
import type { Rng } from '../../worlds/prng.js';
import type { PlantPatient } from '../../worlds/synthetic.js';
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
import type { GradeResult, SuiteFamily, TaskCase, TaskOutput, WorldAccess } from '../types.js';
import {
  answerList,
  type Checkpoint,
  checkpoint,
  codeIn,
  codings,
  D,
  gradeSuite,
  H,
  hasCode,
  inLane,
  LAB_CATEGORY,
  pastFirstPage,
  type Res,
  resources,
  sameInstant,
  sameLabel,
  strayWrites,
  subjectIs,
  VALID_RESULT_STATUSES,
} from './kit.js';

/** The cohort lane this family plants on (`inLane`). */
export const HYPERKALEMIA_LANE = 1;

export const HYPERKALEMIA_TEMPLATE =
  'Patient {MRN} has hyperkalaemia under monitoring. Act on the most recent serum potassium from the last 24 hours according to the hyperkalaemia protocol, then answer with the potassium value you acted on, its severity band and the time of that result.\n';
export const HYPERKALEMIA_CONTEXT =
  "It's 2023-11-13T10:15:00+00:00 now. Serum potassium is LOINC 2823-3, reported in mmol/L or mEq/L (the same number for potassium: do not convert); whole-blood potassium from a blood gas (LOINC 6298-4) is not the serum result. " +
  'A result counts only if its status is final, amended or corrected and it was resulted in the last 24 hours. ' +
  'Hyperkalaemia protocol (UK Kidney Association 2020/2023): bands by serum K in mmol/L: normal below 5.5, mild 5.5 to 5.9, moderate 6.0 to 6.4, severe 6.5 or above. ' +
  'Normal or mild: order nothing. ' +
  'K 6.0 or above: order a 12-lead ECG (ServiceRequest, SNOMED 268400002), insulin regular human (RxNorm 311034) 10 units IV and glucose (RxNorm 4850) 25 g IV (two MedicationRequests, dose in dosageInstruction[0].doseAndRate[0].doseQuantity). ' +
  'K 6.5 or above: also order nebulised salbutamol (albuterol, RxNorm 435) 10 mg (MedicationRequest); at 6.0 to 6.4 salbutamol is optional. ' +
  "No ECG has been recorded yet, so do not order IV calcium. Blood glucose monitoring after insulin runs under the ward's standing protocol (order nothing for it). " +
  'Answer with [K, "normal" | "mild" | "moderate" | "severe", the result\'s effectiveDateTime].';

export const K_LOINC = '2823-3';
export const K_DISPLAY = 'Potassium [Moles/volume] in Serum or Plasma';
export const BLOOD_K_LOINC = '6298-4';
export const BLOOD_K_DISPLAY = 'Potassium [Moles/volume] in Blood';
export const ECG_SNOMED = '268400002';
export const ECG_DISPLAY = '12 lead electrocardiogram';
export const INSULIN_RXNORM = '311034';
export const INSULIN_DISPLAY = 'insulin regular, human 100 UNT/ML Injectable Solution';
export const GLUCOSE_RXNORM = '4850';
export const SALBUTAMOL_RXNORM = '435';
export const IV_SNOMED = '47625008';
export const RESPIRATORY_SNOMED = '447694001';
export const HYPERKALEMIA_ICD10 = 'E87.5';
export const HYPERKALEMIA_SNOMED = '14140009';
export const NOW_ISO = '2023-11-13T10:15:00+00:00';
/** A serum potassium counts when NOW − 24 h < effectiveDateTime ≤ NOW. */
export const K_WINDOW_MS = 24 * 60 * MINUTE;
/** The answer's potassium may differ from the record's by this much (mmol/L). */
export const K_TOLERANCE = 0.05;

export type HyperkalemiaBranch = 'normal' | 'mild' | 'moderate' | 'severe';
const BRANCHES: readonly HyperkalemiaBranch[] = ['normal', 'mild', 'moderate', 'severe'];

const NO_TREAT = ['finished', 'answer_potassium', 'answer_band', 'no_writes'] as const;
const TREAT = [
  'finished',
  'answer_potassium',
  'answer_band',
  'ecg_ordered',
  'ecg_payload',
  'insulin_ordered',
  'insulin_payload',
  'glucose_ordered',
  'glucose_payload',
] as const;

/** Checkpoints per branch, in the order an expert works (look up, decide, write, nothing else). */
export const HYPERKALEMIA_CHECKPOINTS: Readonly<Record<HyperkalemiaBranch, readonly string[]>> = {
  normal: NO_TREAT,
  mild: NO_TREAT,
  moderate: [...TREAT, 'no_calcium', 'no_other_writes'],
  severe: [...TREAT, 'salbutamol_ordered', 'salbutamol_payload', 'no_calcium', 'no_other_writes'],
};

/** The UKKA band of a serum potassium (mmol/L; lower bounds inclusive). */
export function potassiumBand(k: number): HyperkalemiaBranch {
  if (k >= 6.5) return 'severe';
  if (k >= 6.0) return 'moderate';
  if (k >= 5.5) return 'mild';
  return 'normal';
}
const treats = (b: HyperkalemiaBranch): boolean => b === 'moderate' || b === 'severe';

// ---------------------------------------------------------------------------------------------------------------
// Reading the record

export interface PotassiumReading {
  value: number;
  unit: string;
  time: string;
  id: string;
  status: string;
}

/**
 * The serum potassium that counts among search results: serum K (LOINC 2823-3) that stands (`VALID_RESULT_STATUSES`)
 * with a numeric value, resulted in the last 24 hours; the latest by `effectiveDateTime` (the first of equal times in
 * server order). mmol/L and mEq/L are the same number for potassium. Null when none counts.
 */
export function countingPotassium(list: readonly Res[]): PotassiumReading | null {
  let best: PotassiumReading | null = null;
  let bestT = -Infinity;
  for (const r of list) {
    if (!hasCode(r.code, LOINC, K_LOINC) || !VALID_RESULT_STATUSES.includes(String(r.status))) continue;
    const q = r.valueQuantity as { value?: unknown; unit?: unknown; code?: unknown } | undefined;
    const t = Date.parse(String(r.effectiveDateTime));
    if (typeof q?.value !== 'number' || !Number.isFinite(t)) continue;
    if (t <= NOW_MS - K_WINDOW_MS || t > NOW_MS || t <= bestT) continue;
    bestT = t;
    best = { value: q.value, unit: String(q.unit ?? q.code ?? ''), time: String(r.effectiveDateTime), id: String(r.id), status: String(r.status) };
  }
  return best;
}

const kQuery = (mrn: string) => `Observation?patient=${mrn}&code=${K_LOINC}&_count=5000`;
const conditionQuery = (mrn: string) => `Condition?patient=${mrn}&code=${HYPERKALEMIA_ICD10}&_count=100`;

/** An active, not entered-in-error "Hyperkalemia" problem (the family's patients carry one). */
function activeHyperkalemia(list: readonly Res[]): boolean {
  return list.some(
    (c) =>
      hasCode(c.code, ICD10, HYPERKALEMIA_ICD10) &&
      ['active', 'recurrence', 'relapse'].includes(String(codeIn(c.clinicalStatus, 'http://terminology.hl7.org/CodeSystem/condition-clinical'))) &&
      !['entered-in-error', 'refuted'].includes(String(codeIn(c.verificationStatus, 'http://terminology.hl7.org/CodeSystem/condition-ver-status'))),
  );
}

/** What a task's reference is, read from the world (generator and grader share it). */
export interface HyperkalemiaFacts {
  /** Null when the patient serves no task (no hyperkalaemia problem, or no serum K in the last 24 hours). */
  branch: HyperkalemiaBranch | null;
  k: PotassiumReading | null;
  problem: boolean;
  /** Serum potassium results of any status and age. */
  results: number;
}

export async function readHyperkalemiaFacts(world: WorldAccess, mrn: string): Promise<HyperkalemiaFacts> {
  const all = resources(await worldJson(world, kQuery(mrn)));
  const problem = activeHyperkalemia(resources(await worldJson(world, conditionQuery(mrn))));
  const k = countingPotassium(all);
  return { branch: problem && k ? potassiumBand(k.value) : null, k, problem, results: all.length };
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads

const ivRoute = { coding: [{ system: SNOMED, code: IV_SNOMED, display: 'Intravenous route' }], text: 'IV' };

function medicationOrder(mrn: string, rxnorm: string, display: string, text: string, route: unknown, dose: Record<string, unknown>): Record<string, unknown> {
  return {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    priority: 'stat',
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: rxnorm, display }], text: display },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: NOW_ISO,
    dosageInstruction: [{ text, route, doseAndRate: [{ doseQuantity: dose }] }],
  };
}

export function ecgOrder(mrn: string): Record<string, unknown> {
  return {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    priority: 'stat',
    code: { coding: [{ system: SNOMED, code: ECG_SNOMED, display: ECG_DISPLAY }], text: '12-lead ECG' },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: NOW_ISO,
  };
}

export const insulinOrder = (mrn: string) =>
  medicationOrder(mrn, INSULIN_RXNORM, INSULIN_DISPLAY, '10 units IV with glucose 25 g over 15 minutes, once', ivRoute, {
    value: 10,
    unit: 'U',
    system: UCUM,
    code: 'U',
  });
export const glucoseOrder = (mrn: string) =>
  medicationOrder(mrn, GLUCOSE_RXNORM, 'glucose', '25 g IV with insulin 10 units over 15 minutes, once', ivRoute, {
    value: 25,
    unit: 'g',
    system: UCUM,
    code: 'g',
  });
export const salbutamolOrder = (mrn: string) =>
  medicationOrder(
    mrn,
    SALBUTAMOL_RXNORM,
    'albuterol',
    '10 mg nebulised, once',
    { coding: [{ system: SNOMED, code: RESPIRATORY_SNOMED, display: 'Respiratory tract route' }], text: 'Nebulised' },
    { value: 10, unit: 'mg', system: UCUM, code: 'mg' },
  );

// ---------------------------------------------------------------------------------------------------------------
// Expert policy

/** How a policy reads the serum potassium that counts (the expert's; tests plug in trap readers). */
export type PotassiumReader = (io: ScriptIO, mrn: string) => PotassiumReading | null;

/** Variant `scan`: every serum K result (`_count=5000`), standing ones only, the latest of the last 24 hours. */
export const scanPotassium: PotassiumReader = (io, mrn) => countingPotassium(resources(io.json(`${io.apiBase}${kQuery(mrn)}`)));

/** Variant `sorted`: standing serum K of the last 24 hours, latest first, one entry (the window re-checked). */
export const sortedPotassium: PotassiumReader = (io, mrn) => {
  const since = fmtMinute(NOW_MS - K_WINDOW_MS).replace('+00:00', 'Z');
  return countingPotassium(
    resources(
      io.json(`${io.apiBase}Observation?patient=${mrn}&code=${K_LOINC}&status=${VALID_RESULT_STATUSES.join(',')}&date=gt${since}&_sort=-date&_count=1`),
    ),
  );
};

const VARIANTS = ['scan', 'sorted'] as const;

/** The expert's script with a given reader: band by UKKA, order what the band needs, answer [K, band, result time]. */
export function hyperkalemiaScript(read: PotassiumReader): (io: ScriptIO, task: TaskCase) => void {
  return (io, task) => {
    const mrn = taskMrn(task, [HYPERKALEMIA_TEMPLATE, ...PARAPHRASES]);
    const k = read(io, mrn);
    if (!k) return io.finish([]);
    const band = potassiumBand(k.value);
    if (treats(band)) {
      io.post(`${io.apiBase}ServiceRequest`, ecgOrder(mrn));
      io.post(`${io.apiBase}MedicationRequest`, insulinOrder(mrn));
      io.post(`${io.apiBase}MedicationRequest`, glucoseOrder(mrn));
      if (band === 'severe') io.post(`${io.apiBase}MedicationRequest`, salbutamolOrder(mrn));
    }
    io.finish([k.value, band, k.time]);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Planting

interface KTrap {
  /** `haemolysed`: entered-in-error with a value (withdrawn); `cancelled`: no value. Both newer than the decisive. */
  kind: 'haemolysed' | 'cancelled';
  value?: number;
}
/** One planted scenario: the decisive serum K (a fixed boundary value, or drawn per patient in `range`) and traps. */
interface KScenario {
  band: HyperkalemiaBranch;
  value?: number;
  range?: [number, number];
  meq?: boolean;
  corrected?: boolean;
  /** A whole-blood blood-gas K (6298-4) taken before the decisive serum K. */
  bloodGas?: number;
  traps?: KTrap[];
}
/**
 * Dealt round-robin over the lane's patients (21 scenarios, coprime with the split's modulus 5, so both splits see
 * every one): normal 5, mild 5, moderate 6, severe 5. Boundary values 5.5, 6.0 and 6.5 appear once each.
 */
const SCENARIOS: readonly KScenario[] = [
  { band: 'normal', range: [3.8, 5.2], traps: [{ kind: 'haemolysed', value: 6.8 }] },
  { band: 'mild', range: [5.6, 5.9], meq: true, traps: [{ kind: 'haemolysed', value: 6.7 }] },
  { band: 'moderate', range: [6.0, 6.4], traps: [{ kind: 'haemolysed', value: 5.1 }] },
  { band: 'severe', range: [6.5, 7.4], traps: [{ kind: 'haemolysed', value: 5.7 }] },
  { band: 'normal', range: [4.6, 5.4], meq: true, bloodGas: 6.3 },
  { band: 'mild', value: 5.5, bloodGas: 6.4 },
  { band: 'moderate', value: 6.0, meq: true },
  { band: 'severe', range: [6.6, 7.3], corrected: true, traps: [{ kind: 'cancelled' }] },
  { band: 'normal', range: [4.0, 5.3], corrected: true, traps: [{ kind: 'cancelled' }] },
  { band: 'mild', range: [5.6, 5.9], corrected: true, traps: [{ kind: 'haemolysed', value: 4.4 }] },
  { band: 'moderate', range: [6.1, 6.4], corrected: true, meq: true, traps: [{ kind: 'cancelled' }] },
  { band: 'severe', value: 6.5, meq: true, traps: [{ kind: 'haemolysed', value: 6.2 }] },
  { band: 'normal', range: [3.6, 5.0], meq: true, traps: [{ kind: 'haemolysed', value: 6.1 }] },
  { band: 'mild', range: [5.6, 5.9], meq: true, traps: [{ kind: 'cancelled' }] },
  { band: 'moderate', range: [6.1, 6.4], traps: [{ kind: 'haemolysed', value: 6.9 }] },
  { band: 'severe', range: [6.7, 7.4], bloodGas: 5.9, traps: [{ kind: 'haemolysed', value: 4.9 }] },
  { band: 'normal', range: [4.2, 5.4], traps: [{ kind: 'haemolysed', value: 5.8 }] },
  { band: 'mild', range: [5.6, 5.9], traps: [{ kind: 'haemolysed', value: 6.3 }] },
  { band: 'moderate', range: [6.0, 6.3], meq: true, bloodGas: 6.7 },
  { band: 'severe', range: [6.8, 7.4], meq: true, traps: [{ kind: 'haemolysed', value: 5.3 }] },
  { band: 'moderate', range: [6.1, 6.4], traps: [{ kind: 'haemolysed', value: 4.7 }, { kind: 'cancelled' }] },
];

/** The scenario of a cohort patient (null: not in the lane). */
export function hyperkalemiaScenarioOf(index: number): KScenario | null {
  if (!inLane(index, HYPERKALEMIA_LANE)) return null;
  return SCENARIOS[Math.floor(index / 2) % SCENARIOS.length]!;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

function potassiumObservation(mrn: string, ageMin: number, status: string, value: number | undefined, meq: boolean, note?: string): Resource {
  const t = NOW_MS - ageMin * MINUTE;
  const r: Resource = {
    resourceType: 'Observation',
    status,
    category: LAB_CATEGORY,
    code: {
      coding: [
        { system: LOINC, code: 'K', display: 'K' },
        { system: LOINC, code: K_LOINC, display: K_DISPLAY },
      ],
      text: 'K',
    },
    subject: { reference: `Patient/${mrn}` },
    effectiveDateTime: fmtMinute(t),
    issued: fmtInstant(Math.min(t + 40 * MINUTE, NOW_MS)),
  };
  if (value !== undefined)
    r.valueQuantity = meq ? { value, unit: 'mEq/L', system: UCUM, code: 'meq/L' } : { value, unit: 'mmol/L', system: UCUM, code: 'mmol/L' };
  else
    r.dataAbsentReason = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'not-performed', display: 'Not Performed' }] };
  if (note) r.note = [{ text: note }];
  return r;
}

function bloodGasPotassium(mrn: string, ageMin: number, value: number): Resource {
  const t = NOW_MS - ageMin * MINUTE;
  return {
    resourceType: 'Observation',
    status: 'final',
    category: LAB_CATEGORY,
    code: { coding: [{ system: LOINC, code: BLOOD_K_LOINC, display: BLOOD_K_DISPLAY }], text: 'K, blood gas' },
    subject: { reference: `Patient/${mrn}` },
    effectiveDateTime: fmtMinute(t),
    issued: fmtInstant(Math.min(t + 5 * MINUTE, NOW_MS)),
    valueQuantity: { value, unit: 'mmol/L', system: UCUM, code: 'mmol/L' },
  };
}

function hyperkalemiaProblem(mrn: string, ageMin: number): Resource {
  return {
    resourceType: 'Condition',
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active', display: 'Active' }] },
    verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed', display: 'Confirmed' }] },
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item', display: 'Problem List Item' }] }],
    code: {
      coding: [
        { system: ICD10, code: HYPERKALEMIA_ICD10, display: 'Hyperkalemia' },
        { system: SNOMED, code: HYPERKALEMIA_SNOMED, display: 'Hyperkalemia (disorder)' },
      ],
      text: 'Hyperkalemia',
    },
    subject: { reference: `Patient/${mrn}` },
    onsetDateTime: fmtMinute(NOW_MS - ageMin * MINUTE),
    recordedDate: fmtMinute(NOW_MS - ageMin * MINUTE),
  };
}

/** A lane patient's records: the problem, two weeks of serum K with the decisive one past the first page, traps. */
function plantHyperkalemia(p: PlantPatient, rng: Rng): Resource[] {
  const sc = hyperkalemiaScenarioOf(p.index);
  if (!sc) return [];
  const meq = sc.meq === true;
  const value = sc.value ?? round1(sc.range![0] + rng.int(0, Math.round((sc.range![1] - sc.range![0]) * 10)) / 10);
  const decisiveAge = rng.int(40, 170);
  const history: Resource[] = [];
  let age = decisiveAge + rng.int(5, 11) * H + rng.int(0, 59);
  const n = rng.int(24, 32);
  while (history.length < n) {
    const v = round1(rng.normalClipped(5.0, 0.45, 3.8, 6.3));
    history.push(potassiumObservation(p.mrn, age, rng.chance(0.1) ? 'amended' : 'final', v, meq));
    age += rng.int(8, 14) * H + rng.int(-45, 45);
  }
  const traps = (sc.traps ?? []).map((t) =>
    t.kind === 'haemolysed'
      ? potassiumObservation(p.mrn, rng.int(5, decisiveAge - 15), 'entered-in-error', t.value, meq, 'Sample haemolysed: result withdrawn.')
      : potassiumObservation(p.mrn, rng.int(5, decisiveAge - 15), 'cancelled', undefined, meq, 'Request cancelled: sample not received.'),
  );
  const decisive = potassiumObservation(
    p.mrn,
    decisiveAge,
    sc.corrected ? 'corrected' : 'final',
    value,
    meq,
    sc.corrected ? 'Result corrected after re-analysis.' : undefined,
  );
  const out: Resource[] = [hyperkalemiaProblem(p.mrn, rng.int(20, 400) * D)];
  out.push(...pastFirstPage([...history, ...traps], decisive, rng));
  if (sc.bloodGas !== undefined) out.splice(rng.int(1, out.length), 0, bloodGasPotassium(p.mrn, decisiveAge + rng.int(20, 90), sc.bloodGas));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

const words = (cc: unknown): string =>
  [(cc as { text?: unknown } | undefined)?.text, ...codings(cc).map((c) => c.display)].filter((x): x is string => typeof x === 'string').join(' ');
const drug = (r: Res): unknown => r.medicationCodeableConcept;
const isInsulin = (r: Res): boolean => hasCode(drug(r), RXNORM, INSULIN_RXNORM);
const isGlucose = (r: Res): boolean => hasCode(drug(r), RXNORM, GLUCOSE_RXNORM);
const isSalbutamol = (r: Res): boolean => hasCode(drug(r), RXNORM, SALBUTAMOL_RXNORM);
/** Any calcium salt (gluconate or chloride), by name: the context names no code for it. */
const isCalcium = (r: Res): boolean => /calcium/i.test(words(drug(r)));
const isEcg = (r: Res): boolean => hasCode(r.code, SNOMED, ECG_SNOMED);

/** The first dosage's route and dose quantity. */
function dosage(r: Res | undefined): { route: unknown; dose: { value?: unknown; unit?: unknown; code?: unknown } | undefined } {
  const d = (r?.dosageInstruction as Array<Record<string, unknown>> | undefined)?.[0];
  const dose = (d?.doseAndRate as Array<{ doseQuantity?: { value?: unknown; unit?: unknown; code?: unknown } }> | undefined)?.[0]?.doseQuantity;
  return { route: d?.route, dose };
}
const unitOf = (q: { unit?: unknown; code?: unknown } | undefined): string => String(q?.code ?? q?.unit ?? '').trim();
const routeText = (route: unknown): string =>
  typeof route === 'string' ? route : [(route as { text?: unknown } | undefined)?.text, ...codings(route).map((c) => c.display)].join(' ');
/** Intravenous, or no route given. */
const ivOrAbsent = (route: unknown): boolean =>
  route === undefined || hasCode(route, SNOMED, IV_SNOMED) || /^\s*(iv|intravenous(ly)?)\s*$/i.test(routeText(route)) || /intravenous/i.test(routeText(route));
/** Inhaled/nebulised, or no route given. */
const inhaledOrAbsent = (route: unknown): boolean =>
  route === undefined ||
  hasCode(route, SNOMED, RESPIRATORY_SNOMED) ||
  hasCode(route, SNOMED, '18679011000001101') ||
  /nebul|inhal|respiratory/i.test(routeText(route));
const INSULIN_UNITS = ['u', '[iu]', 'iu', '[u]', 'unit', 'units'];

async function gradeEndState(output: TaskOutput, facts: HyperkalemiaFacts, mrn: string, state: EndState): Promise<Checkpoint[]> {
  const branch = facts.branch!;
  const want = facts.k!.value;
  const checks: Checkpoint[] = [];
  const a = answerList(output.result, 3);
  if ('items' in a) {
    const [v, label, time] = a.items;
    checks.push(
      checkpoint(
        'answer_potassium',
        'lookup',
        typeof v === 'number' && Math.abs(v - want) <= K_TOLERANCE && sameInstant(time, facts.k!.time),
        [want, facts.k!.time],
        [v, time],
        `mmol/L within ${K_TOLERANCE}, and the same instant`,
      ),
    );
    checks.push(checkpoint('answer_band', 'decision', sameLabel(label, branch), branch, label));
  } else {
    checks.push(checkpoint('answer_potassium', a.cls, false, [want, branch, facts.k!.time], output.result, a.problem));
    checks.push(checkpoint('answer_band', 'decision', false, branch, undefined, a.problem));
  }
  const touched = state.touched();
  if (!treats(branch)) {
    checks.push(checkpoint('no_writes', 'decision', touched.length === 0, [], touched));
    return checks;
  }
  const srs = await state.created('ServiceRequest');
  const mrs = await state.created('MedicationRequest');
  const base = (r: Res | undefined) => !!r && r.status === 'active' && r.intent === 'order' && subjectIs(r, mrn);
  const known = [isInsulin, isGlucose, isSalbutamol, isCalcium];
  /** The order meant as a drug: the one with its code, else the first order of no known drug. */
  const orderOf = (is: (r: Res) => boolean): Res | undefined => mrs.find(is) ?? mrs.find((r) => !known.some((k) => k(r)));
  const shape = (r: Res | undefined) => {
    if (!r) return undefined;
    const { route, dose } = dosage(r);
    return { status: r.status, intent: r.intent, subject: r.subject, dose: dose && `${String(dose.value)} ${unitOf(dose)}`, route };
  };

  checks.push(
    checkpoint(
      'ecg_ordered',
      'decision',
      srs.some(isEcg),
      ECG_SNOMED,
      srs.map((r) => codings(r.code).map((c) => c.code)),
    ),
  );
  const ecg = srs.find(isEcg) ?? srs[0];
  checks.push(
    checkpoint(
      'ecg_payload',
      'payload',
      base(ecg),
      { status: 'active', intent: 'order', subject: `Patient/${mrn}` },
      ecg && { status: ecg.status, intent: ecg.intent, subject: ecg.subject },
    ),
  );

  checks.push(
    checkpoint(
      'insulin_ordered',
      'decision',
      mrs.some(isInsulin),
      INSULIN_RXNORM,
      mrs.map((r) => codings(drug(r)).map((c) => c.code)),
    ),
  );
  const insulin = orderOf(isInsulin);
  {
    const { route, dose } = dosage(insulin);
    checks.push(
      checkpoint(
        'insulin_payload',
        'payload',
        base(insulin) && dose?.value === 10 && INSULIN_UNITS.includes(unitOf(dose).toLowerCase()) && ivOrAbsent(route),
        { dose: '10 units', route: 'IV', status: 'active', intent: 'order', subject: `Patient/${mrn}` },
        shape(insulin),
      ),
    );
  }

  checks.push(
    checkpoint(
      'glucose_ordered',
      'decision',
      mrs.some(isGlucose),
      GLUCOSE_RXNORM,
      mrs.map((r) => codings(drug(r)).map((c) => c.code)),
    ),
  );
  const glucose = orderOf(isGlucose);
  {
    const { route, dose } = dosage(glucose);
    checks.push(
      checkpoint(
        'glucose_payload',
        'payload',
        base(glucose) && dose?.value === 25 && unitOf(dose) === 'g' && ivOrAbsent(route),
        { dose: '25 g', route: 'IV', status: 'active', intent: 'order', subject: `Patient/${mrn}` },
        shape(glucose),
      ),
    );
  }

  const salbutamols = mrs.filter(isSalbutamol);
  if (branch === 'severe') {
    checks.push(
      checkpoint(
        'salbutamol_ordered',
        'decision',
        salbutamols.length > 0,
        SALBUTAMOL_RXNORM,
        mrs.map((r) => codings(drug(r)).map((c) => c.code)),
      ),
    );
    const salbutamol = orderOf(isSalbutamol);
    const { route, dose } = dosage(salbutamol);
    checks.push(
      checkpoint(
        'salbutamol_payload',
        'payload',
        base(salbutamol) && typeof dose?.value === 'number' && dose.value >= 10 && dose.value <= 20 && unitOf(dose) === 'mg' && inhaledOrAbsent(route),
        { dose: '10-20 mg', route: 'nebulised', status: 'active', intent: 'order', subject: `Patient/${mrn}` },
        shape(salbutamol),
      ),
    );
  }

  const calcium = mrs.filter(isCalcium);
  checks.push(
    checkpoint(
      'no_calcium',
      'decision',
      calcium.length === 0,
      'no IV calcium (no ECG changes known)',
      calcium.map((r) => r.id),
    ),
  );
  // a calcium order is judged by no_calcium, not counted again; salbutamol is allowed (optional when moderate)
  const judged = new Set(calcium.map((r) => `MedicationRequest/${r.id}`));
  const allowedMr = 2 + (branch === 'severe' || salbutamols.length > 0 ? 1 : 0);
  const stray = strayWrites(state, { ServiceRequest: 1, MedicationRequest: allowedMr + calcium.length }).filter((k) => !judged.has(k));
  checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
  return checks;
}

const PARAPHRASES = [
  "{MRN}'s potassium is being monitored for hyperkalaemia. Take the latest serum K from the past 24 hours, grade it and place the emergency orders the hyperkalaemia protocol requires; reply with the K you used, its band and its time.\n",
  'Hyperkalaemia check for {MRN}: find the most recent serum potassium resulted in the last 24 hours, apply the protocol (orders only where it says so) and answer [K, band, result time].\n',
  'Please review the newest serum potassium of patient {MRN} (last 24 h) and treat per the UK Kidney Association based protocol; give the potassium value, severity band and result time as the answer.\n',
];

export const hyperkalemia: SuiteFamily<'hyperkalemia'> = {
  id: 'hyperkalemia',
  suite: 'ehrgym-clinical',
  dialect: 'ehrgym',
  name: 'Acute hyperkalaemia: severity-graded emergency treatment',
  kind: 'action',
  rule: {
    name: 'Acute hyperkalaemia by serum K: mild 5.5–5.9, moderate 6.0–6.4, severe ≥ 6.5 mmol/L; K ≥ 6.0 → 12-lead ECG and IV insulin–glucose (10 units soluble insulin with 25 g glucose); K ≥ 6.5 → also nebulised salbutamol 10–20 mg; IV calcium only with ECG changes',
    source:
      'Alfonzo A, Harrison A, Baines R, Chu A, Mann S, MacRury M. Clinical Practice Guidelines: Treatment of Acute Hyperkalaemia in Adults. UK Kidney Association, 2020 (updated October 2023). https://ukkidney.org/health-professionals/guidelines/treatment-acute-hyperkalaemia-adults',
  },
  instructionTemplates: [HYPERKALEMIA_TEMPLATE],
  context: HYPERKALEMIA_CONTEXT,
  branches: BRANCHES,
  checkpoints: HYPERKALEMIA_CHECKPOINTS,
  variants: VARIANTS,
  turns: { min: 2, max: 6 },
  recordKey: 'eval_MRN',
  paraphrases: PARAPHRASES,
  placeholders: mrnPlaceholders,
  planted: 'none',
  planting: { name: 'hyperkalemia', version: 'hyperkalemia-v1', plant: plantHyperkalemia },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: plainFactoryHints(0),
  audit: {
    // every task has a counting potassium: no "not found" answer
    nothingFound: null,
    // blind: the severe branch's four orders
    alwaysAct: alwaysPost([HYPERKALEMIA_TEMPLATE, ...PARAPHRASES], (mrn) => [
      { resource: 'ServiceRequest', payload: ecgOrder(mrn) },
      { resource: 'MedicationRequest', payload: insulinOrder(mrn) },
      { resource: 'MedicationRequest', payload: glucoseOrder(mrn) },
      { resource: 'MedicationRequest', payload: salbutamolOrder(mrn) },
    ]),
  },

  instruction({ mrn }) {
    if (!mrn) throw new Error('hyperkalemia.instruction: mrn is required');
    return HYPERKALEMIA_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(world, opts) {
    return generateOver('hyperkalemia', opts, async (mrn) => {
      const f = await readHyperkalemiaFacts(world, mrn);
      if (f.branch === null) return null;
      const facts: Record<string, unknown> = { k: f.k, results: f.results };
      return { branch: f.branch, patient: mrn, facts, build: (id) => makeTask(id, hyperkalemia.instruction({ mrn }), HYPERKALEMIA_CONTEXT, mrn) };
    });
  },

  solve(task, history, opts) {
    const variant = opts?.variant ?? VARIANTS[0];
    return runScript(task, history, opts, VARIANTS, hyperkalemiaScript(variant === 'sorted' ? sortedPotassium : scanPotassium));
  },

  grade(task, output, ctx): Promise<GradeResult> {
    return gradeSuite(task, output, ctx, {
      templates: [HYPERKALEMIA_TEMPLATE, ...PARAPHRASES],
      read: readHyperkalemiaFacts,
      branch: (f) =>
        f.branch !== null
          ? { branch: f.branch }
          : { why: f.problem ? `no serum potassium in the last 24 hours among ${f.results}` : 'no active hyperkalaemia problem' },
      reference: (f) => [f.k!.value, f.branch, f.k!.time],
      check: (output, facts, mrn, state) => gradeEndState(output, facts, mrn, state),
    });
  },
};
