/**
 * citalopram — a citalopram dose increase limited by age and QTc (clinical suite, medication safety; docs/tasks.md).
 *
 * Rule: US FDA Drug Safety Communication "Revised recommendations for Celexa (citalopram hydrobromide) related to a
 * potential risk of abnormal heart rhythms with high doses", 28 March 2012 (after the one of 24 August 2011), and the
 * citalopram label as revised 27 March 2012 (Dosage and Administration; Warnings and Precautions, QT prolongation):
 * the maximum dose is 40 mg/day, and 20 mg/day for patients older than 60 years (also with hepatic impairment, in
 * CYP2C19 poor metabolisers or with cimetidine); citalopram should be discontinued in patients found to have
 * persistent QTc measurements above 500 ms. The label asks for ECG monitoring in patients at risk and names no
 * recency for a QTc; the task's context states the local protocol's: a dose increase needs a QTc of 500 ms or less
 * measured in the last 90 days, otherwise a 12-lead ECG is ordered first and the dose kept. A single latest QTc above
 * 500 ms is not yet "persistent": the same, an ECG to confirm it. Age is in completed years on today's date.
 *
 * The world plants, on the lane-0 cohort patients, an active citalopram 20 mg order (with an older stopped course and,
 * on some, a cancelled 40 mg order), and a history of ECGs: QTc results (LOINC 8636-3; some reported in seconds),
 * unsorted in server order with the decisive ones past the first page of 20, the uncorrected QT (8634-8) of the latest
 * ECG, and traps: entered-in-error and cancelled results newer than the decisive ones, a result just outside the 90-day
 * window, an old pair of results above 500 ms that are not the latest two. Which scenario a patient gets depends on
 * the age in its birthDate; generator and grader read everything back from the record.
 *
 * Codes (checked against public sources): RxNorm 200371 citalopram 20 MG Oral Tablet and 309314 citalopram 40 MG Oral
 * Tablet (openFDA NDC records' rxcui); LOINC 8636-3 QT interval corrected and 8634-8 QT interval (HL7 v2 ECG results);
 * SNOMED CT 268400002 12 lead electrocardiogram (DICOM CID 3670, ECG procedure type); SNOMED CT 26643006 oral route.
 */
import type { Resource } from '../../fhir/types.js';
import { fmtInstant, fmtMinute, MINUTE, NOW_MS } from '../../worlds/clinical.js';
import { LOINC, RXNORM, SNOMED, UCUM } from '../../worlds/catalog.js';
import type { Rng } from '../../worlds/prng.js';
import { ageOn20231113, type PlantPatient } from '../../worlds/synthetic.js';
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
  changedKeys,
  checkpoint,
  codings,
  D,
  FIRST_PAGE,
  gradeSuite,
  H,
  hasAnyCode,
  hasCode,
  inLane,
  type Res,
  resources,
  sameJson,
  sameLabel,
  shuffle,
  strayWrites,
  subjectIs,
  VALID_RESULT_STATUSES,
  without,
} from './kit.js';

export const CITALOPRAM_TEMPLATE =
  'Psychiatry asks to increase citalopram for patient {MRN} from 20 mg to 40 mg daily. Apply the FDA citalopram safety limits to the existing order, and answer with your decision and the latest QTc.\n';
export const CITALOPRAM_CONTEXT =
  "It's 2023-11-13T10:15:00+00:00 now. Citalopram orders are MedicationRequests coded RxNorm 200371 (citalopram 20 MG Oral Tablet); RxNorm 309314 is the 40 MG Oral Tablet. " +
  'The QTc is LOINC 8636-3 (QT interval corrected; LOINC 8634-8 is the uncorrected QT and does not count). A QTc counts only with status final, amended or corrected; some ECG machines report it in seconds (s): use milliseconds (1 s = 1000 ms). ' +
  "The patient's age is in completed years on today's date, from Patient.birthDate. The patient has no hepatic impairment, takes no CYP2C19 inhibitor and has normal potassium and magnesium. " +
  'Rule (FDA Drug Safety Communication, March 2012, and the citalopram label), applied in this order: ' +
  '(1) the two most recent QTc values are both above 500 ms: discontinue citalopram (PUT the active citalopram MedicationRequest with status stopped, nothing else changed except an optional statusReason or note); answer ["stop", QTc]. ' +
  '(2) the patient is older than 60 (61 or more): 20 mg daily is the maximum; change nothing and order nothing; answer ["keep-20mg", QTc]. ' +
  '(3) the latest QTc was measured more than 90 days ago, or is above 500 ms (not confirmed by the one before): keep the dose and order a 12-lead ECG (ServiceRequest, SNOMED CT 268400002, status active, intent order); answer ["ecg", QTc]. ' +
  '(4) otherwise: increase to 40 mg once daily by updating the existing order (PUT) with dosageInstruction[0].doseAndRate[0].doseQuantity 40 mg; the medication may stay RxNorm 200371 or become 309314; change nothing else; answer ["increase", QTc]. ' +
  'QTc in the answer: the latest QTc that counts, in ms as a number, whatever its age.';

export const QTC_LOINC = '8636-3';
export const QTC_DISPLAY = 'QT interval corrected';
export const QT_LOINC = '8634-8';
export const QT_DISPLAY = 'QT interval';
export const CITALOPRAM_20_RXNORM = '200371';
export const CITALOPRAM_20_DISPLAY = 'citalopram 20 MG Oral Tablet';
export const CITALOPRAM_40_RXNORM = '309314';
export const CITALOPRAM_40_DISPLAY = 'citalopram 40 MG Oral Tablet';
export const ECG_SNOMED = '268400002';
export const ECG_DISPLAY = '12 lead electrocardiogram';
export const NOW_ISO = '2023-11-13T10:15:00+00:00';
/** A QTc clears a dose increase when measured at or after NOW − 90 days. */
export const QTC_WINDOW_MS = 90 * D * MINUTE;
/** QTc above this (ms) is prolonged for the rule. */
export const QTC_LIMIT = 500;
/** Older than this (completed years): 20 mg/day is the maximum. */
export const AGE_LIMIT = 60;
const CITALOPRAM_CODES = [CITALOPRAM_20_RXNORM, CITALOPRAM_40_RXNORM] as const;

export type CitalopramBranch = 'increase' | 'keep' | 'stop' | 'ecg';
const BRANCHES: readonly CitalopramBranch[] = ['increase', 'keep', 'stop', 'ecg'];
export const CITALOPRAM_LABELS: Readonly<Record<CitalopramBranch, string>> = { increase: 'increase', keep: 'keep-20mg', stop: 'stop', ecg: 'ecg' };

/** Checkpoints per branch, in the order an expert works (look up, decide, write, nothing else). */
export const CITALOPRAM_CHECKPOINTS: Readonly<Record<CitalopramBranch, readonly string[]>> = {
  increase: ['finished', 'answer_qtc', 'answer_decision', 'dose_40mg', 'increase_only_dose', 'no_other_writes'],
  keep: ['finished', 'answer_qtc', 'answer_decision', 'citalopram_unchanged', 'no_writes'],
  stop: ['finished', 'answer_qtc', 'answer_decision', 'citalopram_stopped', 'stop_only_status', 'no_other_writes'],
  ecg: ['finished', 'answer_qtc', 'answer_decision', 'citalopram_unchanged', 'ecg_ordered', 'ecg_payload', 'no_other_writes'],
};

// ---------------------------------------------------------------------------------------------------------------
// Reading the record

export interface QtcReading {
  /** Milliseconds. */
  ms: number;
  time: string;
  id: string;
}

/** A QTc quantity in ms (seconds converted), or null when its unit is neither. */
export function qtcMs(q: unknown): number | null {
  const v = (q as { value?: unknown } | undefined)?.value;
  if (typeof v !== 'number' || !Number.isFinite(v)) return null;
  const u = (q as { code?: unknown; unit?: unknown }).code ?? (q as { unit?: unknown }).unit;
  if (u === 'ms') return v;
  if (u === 's') return Math.round(v * 1_000_000) / 1000;
  return null;
}

/**
 * The QTc results that count among a bundle's resources (standing status, a value in ms or s, a time), newest first;
 * equal times keep server order.
 */
export function standingQtcs(list: readonly Res[]): QtcReading[] {
  const out: Array<QtcReading & { t: number; k: number }> = [];
  list.forEach((r, k) => {
    if (!VALID_RESULT_STATUSES.includes(String(r.status)) || !hasCode(r.code, LOINC, QTC_LOINC)) return;
    const ms = qtcMs(r.valueQuantity);
    const t = Date.parse(String(r.effectiveDateTime));
    if (ms === null || !Number.isFinite(t)) return;
    out.push({ ms, time: String(r.effectiveDateTime), id: String(r.id), t, k });
  });
  out.sort((a, b) => b.t - a.t || a.k - b.k);
  return out.map(({ ms, time, id }) => ({ ms, time, id }));
}

/** The rule's decision on the patient's age and QTc results (newest first). */
export function citalopramBranch(age: number, qtcs: readonly QtcReading[]): CitalopramBranch {
  const [latest, previous] = qtcs;
  if (latest && previous && latest.ms > QTC_LIMIT && previous.ms > QTC_LIMIT) return 'stop';
  if (age > AGE_LIMIT) return 'keep';
  if (!latest || Date.parse(latest.time) < NOW_MS - QTC_WINDOW_MS || latest.ms > QTC_LIMIT) return 'ecg';
  return 'increase';
}

const isCitalopram = (r: Res): boolean => hasAnyCode(r.medicationCodeableConcept, RXNORM, CITALOPRAM_CODES);

/** The patient's active citalopram orders in a MedicationRequest bundle. */
export function activeCitalopramOrders(bundle: unknown): Res[] {
  return resources(bundle).filter((r) => r.status === 'active' && isCitalopram(r));
}

/** The first dose of an order (`dosageInstruction[0].doseAndRate[0].doseQuantity`). */
export function orderDose(r: Res | undefined): { value?: unknown; unit?: unknown; code?: unknown } | undefined {
  const d = (r?.dosageInstruction as Array<{ doseAndRate?: Array<{ doseQuantity?: Record<string, unknown> }> }> | undefined)?.[0];
  return d?.doseAndRate?.[0]?.doseQuantity;
}
const isMg = (q: { unit?: unknown; code?: unknown } | undefined): boolean => q?.unit === 'mg' || q?.code === 'mg';

/** Age in completed years on today's date from a Patient bundle's first entry (null without a birthDate). */
export function ageOf(bundle: unknown): number | null {
  const b = resources(bundle)[0]?.birthDate;
  return typeof b === 'string' && /^\d{4}-\d\d-\d\d$/.test(b) ? ageOn20231113(b) : null;
}

const patientQuery = (mrn: string) => `Patient?identifier=${mrn}`;
const qtcQuery = (mrn: string) => `Observation?patient=${mrn}&code=${QTC_LOINC}&_count=5000`;
const orderQuery = (mrn: string) => `MedicationRequest?patient=${mrn}&_count=5000`;

/** What a task's reference is, read from the world (generator and grader share it). */
export interface CitalopramFacts {
  branch: CitalopramBranch | null;
  age: number | null;
  /** The latest QTc that counts (any age) and the one before it. */
  qtc: QtcReading | null;
  previous: QtcReading | null;
  /** The one active citalopram order at 20 mg (null when there is none, several, or another dose: no task). */
  orderId: string | null;
  activeOrders: number;
  results: number;
}

export async function readCitalopramFacts(world: WorldAccess, mrn: string): Promise<CitalopramFacts> {
  const age = ageOf(await worldJson(world, patientQuery(mrn)));
  const all = resources(await worldJson(world, qtcQuery(mrn)));
  const qtcs = standingQtcs(all);
  const orders = activeCitalopramOrders(await worldJson(world, orderQuery(mrn)));
  const dose = orderDose(orders[0]);
  const one = orders.length === 1 && dose?.value === 20 && isMg(dose);
  return {
    branch: age === null || qtcs.length === 0 || !one ? null : citalopramBranch(age, qtcs),
    age,
    qtc: qtcs[0] ?? null,
    previous: qtcs[1] ?? null,
    orderId: one ? String(orders[0]!.id) : null,
    activeOrders: orders.length,
    results: all.length,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads

export function ecgOrder(mrn: string): Record<string, unknown> {
  return {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    code: { coding: [{ system: SNOMED, code: ECG_SNOMED, display: ECG_DISPLAY }], text: '12-lead ECG' },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: NOW_ISO,
    note: [{ text: 'QTc before a citalopram dose increase' }],
  };
}

/** The order at 40 mg once daily: the dose and the dosage text changed, nothing else. */
export function increasedOrder(order: Res): Res {
  const di = structuredClone(order.dosageInstruction) as Array<Record<string, unknown>>;
  const first = di[0]!;
  (first.doseAndRate as Array<Record<string, unknown>>)[0]!.doseQuantity = { value: 40, unit: 'mg', system: UCUM, code: 'mg' };
  first.text = '40 mg oral DAILY';
  return { ...order, dosageInstruction: di };
}

// ---------------------------------------------------------------------------------------------------------------
// Expert policy

/** How a policy reads the patient's standing QTc results, newest first (the expert's; tests plug in trap readers). */
export type QtcReader = (io: ScriptIO, mrn: string) => QtcReading[];

/** Variant `scan`: every result (`_count=5000`), standing ones only, sorted here. */
export const scanQtcs: QtcReader = (io, mrn) => standingQtcs(resources(io.json(`${io.apiBase}${qtcQuery(mrn)}`)));

/** Variant `sorted`: final results, latest first, the two the rule needs. */
export const sortedQtcs: QtcReader = (io, mrn) =>
  standingQtcs(resources(io.json(`${io.apiBase}Observation?patient=${mrn}&code=${QTC_LOINC}&status=final&_sort=-date&_count=2`)));

const VARIANTS = ['scan', 'sorted'] as const;

/**
 * How a policy finds the active orders (patients take many drugs: an unfiltered first page may not hold citalopram).
 * `scan`: every active order; `sorted`: the 20 mg tablet's code.
 */
const ORDER_QUERIES = {
  scan: (mrn: string) => `MedicationRequest?patient=${mrn}&status=active&_count=5000`,
  sorted: (mrn: string) => `MedicationRequest?patient=${mrn}&code=${CITALOPRAM_20_RXNORM}&status=active`,
} as const;

/** The expert's script with a given QTc reader: age, QTc, the order; decide by the rule, write, answer. */
export function citalopramScript(read: QtcReader, orders: (mrn: string) => string = ORDER_QUERIES.scan): (io: ScriptIO, task: TaskCase) => void {
  return (io, task) => {
    const mrn = taskMrn(task, [CITALOPRAM_TEMPLATE, ...citalopram.paraphrases]);
    const age = ageOf(io.json(`${io.apiBase}${patientQuery(mrn)}`));
    const qtcs = read(io, mrn);
    const answer = qtcs[0] ? qtcs[0].ms : -1;
    if (age === null) io.finish([]);
    const branch = citalopramBranch(age!, qtcs);
    if (branch === 'keep') io.finish([CITALOPRAM_LABELS.keep, answer]);
    if (branch === 'ecg') {
      io.post(`${io.apiBase}ServiceRequest`, ecgOrder(mrn));
      io.finish([CITALOPRAM_LABELS.ecg, answer]);
    }
    const order = activeCitalopramOrders(io.json(`${io.apiBase}${orders(mrn)}`))[0];
    if (order) {
      const url = `${io.apiBase}MedicationRequest/${String(order.id)}`;
      io.put(url, branch === 'stop' ? { ...order, status: 'stopped' } : increasedOrder(order));
    }
    io.finish([CITALOPRAM_LABELS[branch], answer]);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Planting

type Unit = 'ms' | 's';
/** One planted scenario: the standing QTc results that decide, newest first ([minutes before NOW, ms, unit]). */
interface QtcScenario {
  /** The branch it serves (the grader derives it from the record). */
  branch: CitalopramBranch;
  latest: Array<[number, number, Unit?]>;
  /** Results newer than the decisive ones that do not count. */
  traps?: Array<{ ageMin: number; status: 'entered-in-error' | 'cancelled'; ms?: number }>;
  /** An old pair of results above 500 ms in the history (not the latest two). */
  spike?: boolean;
  /** Boundary values and times stay exact (no jitter). */
  edge?: string;
}
/**
 * Patients aged 60 or less, dealt round-robin over the lane: increase 4 / ecg 5 / stop 2. Both lists' lengths are
 * prime to 5, so the test split's patients (cohort index < 2 mod 5) meet every scenario.
 */
const YOUNG: readonly QtcScenario[] = [
  { branch: 'increase', latest: [[20 * D, 448]], traps: [{ ageMin: 2 * D, status: 'entered-in-error', ms: 516 }] },
  { branch: 'ecg', latest: [[90 * D + 40, 452]], edge: '90d+40min', traps: [{ ageMin: 10 * D, status: 'entered-in-error', ms: 441 }] },
  {
    branch: 'stop',
    latest: [
      [5 * D, 512],
      [40 * D, 508],
    ],
    traps: [{ ageMin: D, status: 'entered-in-error', ms: 468 }],
  },
  { branch: 'increase', latest: [[45 * D, 462, 's']], spike: true },
  {
    branch: 'ecg',
    latest: [
      [3 * D, 509],
      [60 * D, 471],
    ],
  },
  { branch: 'increase', latest: [[90 * D - 40, 439]], edge: '90d-40min', traps: [{ ageMin: 4 * D, status: 'cancelled' }] },
  {
    branch: 'stop',
    latest: [
      [12 * D, 518, 's'],
      [35 * D, 531],
    ],
    traps: [{ ageMin: 2 * D, status: 'cancelled' }],
  },
  { branch: 'ecg', latest: [[200 * D, 455]], traps: [{ ageMin: 30 * D, status: 'entered-in-error', ms: 433 }] },
  {
    branch: 'increase',
    latest: [
      [7 * D, 500],
      [30 * D, 512],
    ],
    edge: 'QTc=500',
  },
  {
    branch: 'ecg',
    latest: [
      [14 * D, 506, 's'],
      [70 * D, 462],
    ],
    spike: true,
  },
  { branch: 'ecg', latest: [[150 * D, 488, 's']], traps: [{ ageMin: 6 * D, status: 'cancelled' }] },
];
/** Patients older than 60, dealt round-robin: keep 4 / stop 2. */
const OLD: readonly QtcScenario[] = [
  {
    branch: 'keep',
    latest: [[15 * D, 456]],
    traps: [
      { ageMin: D, status: 'entered-in-error', ms: 514 },
      { ageMin: 3 * D, status: 'entered-in-error', ms: 509 },
    ],
  },
  {
    branch: 'stop',
    latest: [
      [6 * D, 515, 's'],
      [50 * D, 507],
    ],
  },
  { branch: 'keep', latest: [[120 * D, 447, 's']] },
  { branch: 'keep', latest: [[30 * D, 470]], spike: true },
  {
    branch: 'stop',
    latest: [
      [2 * D, 526],
      [20 * D, 511],
    ],
    traps: [{ ageMin: D, status: 'entered-in-error', ms: 455 }],
  },
  {
    branch: 'keep',
    latest: [
      [10 * D, 500],
      [40 * D, 508],
    ],
    edge: 'QTc=500',
  },
];

/** The scenario a patient gets (null: not on citalopram): lane 0 only, by age and position in the lane. */
export function citalopramScenarioOf(index: number, birthDate: string): QtcScenario | null {
  if (!inLane(index, 0)) return null;
  const k = index >> 1;
  const list = ageOn20231113(birthDate) > AGE_LIMIT ? OLD : YOUNG;
  return list[k % list.length]!;
}

const ecgCoding = (code: string, display: string) => ({ coding: [{ system: LOINC, code, display }], text: display });
const PROCEDURE_CATEGORY = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'procedure', display: 'Procedure' }] }];

function qtcObservation(mrn: string, ageMin: number, status: string, ms: number | undefined, unit: Unit = 'ms'): Resource {
  const t = NOW_MS - ageMin * MINUTE;
  const r: Resource = {
    resourceType: 'Observation',
    status,
    category: PROCEDURE_CATEGORY,
    code: ecgCoding(QTC_LOINC, QTC_DISPLAY),
    subject: { reference: `Patient/${mrn}` },
    effectiveDateTime: fmtMinute(t),
    issued: fmtInstant(Math.min(t + 20 * MINUTE, NOW_MS)),
  };
  if (ms !== undefined)
    r.valueQuantity = unit === 's' ? { value: ms / 1000, unit: 's', system: UCUM, code: 's' } : { value: ms, unit: 'ms', system: UCUM, code: 'ms' };
  else
    r.dataAbsentReason = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'not-performed', display: 'Not Performed' }] };
  return r;
}

function qtObservation(mrn: string, ageMin: number, ms: number): Resource {
  const t = NOW_MS - ageMin * MINUTE;
  return {
    resourceType: 'Observation',
    status: 'final',
    category: PROCEDURE_CATEGORY,
    code: ecgCoding(QT_LOINC, QT_DISPLAY),
    subject: { reference: `Patient/${mrn}` },
    effectiveDateTime: fmtMinute(t),
    issued: fmtInstant(Math.min(t + 20 * MINUTE, NOW_MS)),
    valueQuantity: { value: ms, unit: 'ms', system: UCUM, code: 'ms' },
  };
}

function citalopramOrder(mrn: string, status: 'active' | 'stopped' | 'cancelled', ageMin: number, strength: 20 | 40): Resource {
  const [code, display] = strength === 20 ? [CITALOPRAM_20_RXNORM, CITALOPRAM_20_DISPLAY] : [CITALOPRAM_40_RXNORM, CITALOPRAM_40_DISPLAY];
  return {
    resourceType: 'MedicationRequest',
    status,
    intent: 'order',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/medicationrequest-category', code: 'community', display: 'Community' }] }],
    medicationCodeableConcept: { coding: [{ system: RXNORM, code, display }], text: display },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: fmtMinute(NOW_MS - ageMin * MINUTE),
    dosageInstruction: [
      {
        text: `${strength} mg oral DAILY`,
        timing: { code: { text: 'DAILY' } },
        route: { coding: [{ system: SNOMED, code: '26643006', display: 'Oral route' }], text: 'Oral' },
        doseAndRate: [{ doseQuantity: { value: strength, unit: 'mg', system: UCUM, code: 'mg' } }],
      },
    ],
  };
}

/** `items` shuffled with each of `decisive` inserted at or past the first page (server order of an unsorted search). */
function allPastFirstPage<T>(items: T[], decisive: readonly T[], rng: Rng): T[] {
  const out = shuffle(items, rng);
  for (const d of decisive) out.splice(rng.int(Math.min(FIRST_PAGE, out.length), out.length), 0, d);
  return out;
}

/** A value moved by a few ms, never across the 500 ms limit (boundary scenarios stay exact). */
const jitter = (ms: number, rng: Rng, exact: boolean): number => (exact ? ms : ms + rng.int(-3, 3));

/** A patient's citalopram records: the orders, a history of ECGs (QTc, and QT of the latest), the scenario's traps. */
function plantCitalopram(p: PlantPatient, rng: Rng): Resource[] {
  const sc = citalopramScenarioOf(p.index, p.birthDate);
  if (!sc) return [];
  const exact = sc.edge !== undefined;
  const shift = exact ? 0 : rng.int(0, 5 * H);
  const latest = sc.latest.map(([age, ms, unit]) => [age + shift, jitter(ms, rng, exact), unit ?? 'ms'] as const);
  const decisive = latest.map(([age, ms, unit]) => qtcObservation(p.mrn, age, 'final', ms, unit));
  // history: ECGs every 4–9 weeks from a few weeks before the oldest decisive result, all below 485 ms
  const history: Resource[] = [];
  let age = latest[latest.length - 1]![0] + rng.int(20, 45) * D + rng.int(0, 600);
  const spikeAt = sc.spike ? rng.int(3, 8) : -1;
  const n = rng.int(26, 30);
  while (history.length < n) {
    const k = history.length;
    const v = k === spikeAt || k === spikeAt + 1 ? rng.int(506, 528) : Math.round(Math.min(484, Math.max(398, rng.normal(442, 16))));
    history.push(qtcObservation(p.mrn, age, 'final', v, rng.chance(0.15) ? 's' : 'ms'));
    age += rng.int(28, 63) * D + rng.int(-300, 300);
  }
  const traps = (sc.traps ?? []).map((t) => qtcObservation(p.mrn, t.ageMin + shift, t.status, t.ms && jitter(t.ms, rng, exact)));
  const out = allPastFirstPage([...history, ...traps], decisive, rng);
  // the uncorrected QT of the latest ECG: longer than its QTc at a heart rate below 60
  const [lAge, lMs] = latest[0]!;
  out.push(qtObservation(p.mrn, lAge, Math.round(lMs * Math.sqrt(60 / rng.int(46, 56)))));
  const started = rng.int(60, 300) * D;
  const orders = [citalopramOrder(p.mrn, 'stopped', started + rng.int(400, 900) * D, 20), citalopramOrder(p.mrn, 'active', started, 20)];
  if (rng.chance(0.35)) orders.push(citalopramOrder(p.mrn, 'cancelled', rng.int(5, 30) * D, 40));
  out.push(...shuffle(orders, rng));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

/** The answer's label and number, or why there are none (`answerList`'s classes). */
function readAnswer(result: TaskOutput['result']): { label: unknown; value: unknown } | { problem: string; cls: 'protocol' | 'lookup' } {
  const a = answerList(result, 2);
  if (!('items' in a)) return a;
  return { label: a.items[0], value: a.items[1] };
}

/** The order after the PUT, its dosage's dose and text aside, against the order before. */
function onlyDoseChanged(before: Res | undefined, after: Res | undefined): string[] {
  const changed = changedKeys(before, after, 'dosageInstruction', 'medicationCodeableConcept');
  const med = after?.medicationCodeableConcept;
  if (!sameJson(before?.medicationCodeableConcept, med) && !hasCode(med, RXNORM, CITALOPRAM_40_RXNORM)) changed.push('medicationCodeableConcept');
  const norm = (r: Res | undefined) => {
    const di = structuredClone((r?.dosageInstruction ?? null) as unknown);
    const first = Array.isArray(di) ? (di[0] as Record<string, unknown> | undefined) : undefined;
    if (first && typeof first === 'object') {
      delete first.text;
      const dr = first.doseAndRate;
      if (Array.isArray(dr) && dr[0] && typeof dr[0] === 'object') delete (dr[0] as Record<string, unknown>).doseQuantity;
    }
    return di;
  };
  if (!sameJson(norm(before), norm(after))) changed.push('dosageInstruction');
  return changed;
}

async function gradeEndState(output: TaskOutput, facts: CitalopramFacts, mrn: string, state: EndState, branch: CitalopramBranch): Promise<Checkpoint[]> {
  const checks: Checkpoint[] = [];
  const want = facts.qtc ? facts.qtc.ms : -1;
  const label = CITALOPRAM_LABELS[branch];
  const a = readAnswer(output.result);
  if ('problem' in a) {
    checks.push(checkpoint('answer_qtc', a.cls, false, want, output.result, a.problem));
    checks.push(checkpoint('answer_decision', a.cls, false, label, output.result, a.problem));
  } else {
    checks.push(checkpoint('answer_qtc', 'lookup', typeof a.value === 'number' && Math.abs(a.value - want) < 0.5, want, a.value));
    checks.push(checkpoint('answer_decision', 'decision', sameLabel(a.label, label), label, a.label));
  }
  const orderId = facts.orderId!;
  const orderKey = `MedicationRequest/${orderId}`;
  const before = await state.readBase('MedicationRequest', orderId);
  const after = await state.read('MedicationRequest', orderId);
  const others = state.touched().filter((k) => k !== orderKey);
  if (branch === 'keep' || branch === 'ecg') {
    checks.push(
      checkpoint('citalopram_unchanged', 'decision', sameJson(without(before, 'meta'), without(after, 'meta')), 'unchanged', changedKeys(before, after)),
    );
  }
  if (branch === 'keep') {
    checks.push(checkpoint('no_writes', 'decision', others.length === 0, [], others));
    return checks;
  }
  if (branch === 'ecg') {
    const created = await state.created('ServiceRequest');
    const isEcg = (r: Resource) => hasCode(r.code, SNOMED, ECG_SNOMED);
    checks.push(
      checkpoint(
        'ecg_ordered',
        'decision',
        created.some(isEcg),
        ECG_SNOMED,
        created.map((r) => codings(r.code).map((c) => c.code)),
      ),
    );
    const sr = created.find(isEcg) ?? created[0];
    checks.push(
      checkpoint(
        'ecg_payload',
        'payload',
        !!sr && sr.status === 'active' && sr.intent === 'order' && subjectIs(sr, mrn),
        { status: 'active', intent: 'order', subject: `Patient/${mrn}` },
        sr && { status: sr.status, intent: sr.intent, subject: sr.subject },
      ),
    );
    const stray = strayWrites(state, { ServiceRequest: 1 }, [orderKey]);
    checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
    return checks;
  }
  if (branch === 'stop') {
    checks.push(checkpoint('citalopram_stopped', 'decision', after?.status === 'stopped', 'stopped', after?.status));
    const changed = changedKeys(before, after, 'status', 'statusReason', 'note');
    checks.push(
      checkpoint(
        'stop_only_status',
        'payload',
        changed.length === 0,
        [],
        changed,
        'fields of the order other than status, statusReason, note and meta that changed',
      ),
    );
  } else {
    const dose = orderDose(after);
    checks.push(
      checkpoint('dose_40mg', 'decision', dose?.value === 40 && isMg(dose), '40 mg', dose && `${String(dose.value)} ${String(dose.unit ?? dose.code)}`),
    );
    const changed = onlyDoseChanged(before, after);
    checks.push(
      checkpoint(
        'increase_only_dose',
        'payload',
        changed.length === 0,
        [],
        changed,
        'fields of the order other than the dose, the dosage text, the 40 mg tablet code and meta that changed',
      ),
    );
  }
  const stray = strayWrites(state, {}, [orderKey]);
  checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
  return checks;
}

const PARAPHRASES = [
  "Can {MRN}'s citalopram go up from 20 mg to 40 mg daily? Check the patient's age and QTc against the FDA citalopram limits, update or stop the order or order an ECG as they say, and answer with the decision and the latest QTc.\n",
  'Citalopram dose review for {MRN}: psychiatry wants 40 mg daily instead of 20 mg. Apply the March 2012 FDA safety communication to the active order and report [decision, latest QTc].\n',
  'Patient {MRN} takes citalopram 20 mg daily and the psychiatrist asks for 40 mg. Act on the existing order according to the FDA age and QTc limits, then give the decision and the most recent QTc in ms.\n',
];

export const citalopram: SuiteFamily<'citalopram'> = {
  id: 'citalopram',
  suite: 'ehrgym-clinical',
  dialect: 'ehrgym',
  name: 'Citalopram dose increase limited by age and QTc',
  kind: 'action',
  rule: {
    name: 'Citalopram: maximum 40 mg/day, 20 mg/day above age 60; discontinue with persistent QTc above 500 ms',
    source:
      'US FDA Drug Safety Communication: Revised recommendations for Celexa (citalopram hydrobromide) related to a potential risk of abnormal heart rhythms with high doses, 28 March 2012 (updating the communication of 24 August 2011); Celexa prescribing information, revised March 2012 (Dosage and Administration; Warnings and Precautions: QT prolongation and torsade de pointes)',
  },
  instructionTemplates: [CITALOPRAM_TEMPLATE],
  context: CITALOPRAM_CONTEXT,
  branches: BRANCHES,
  checkpoints: CITALOPRAM_CHECKPOINTS,
  variants: VARIANTS,
  turns: { min: 3, max: 6 },
  recordKey: 'eval_MRN',
  paraphrases: PARAPHRASES,
  placeholders: mrnPlaceholders,
  planted: 'none',
  planting: { name: 'citalopram', version: 'citalopram-v1', plant: plantCitalopram },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: plainFactoryHints(0),
  audit: {
    // no QTc on record: the rule's answer for a patient of 60 or less
    nothingFound: [CITALOPRAM_LABELS.ecg, -1],
    // blind: the ECG order (updating the citalopram order needs its id, which takes a read)
    alwaysAct: alwaysPost([CITALOPRAM_TEMPLATE, ...PARAPHRASES], (mrn) => [{ resource: 'ServiceRequest', payload: ecgOrder(mrn) }]),
  },

  instruction({ mrn }) {
    if (!mrn) throw new Error('citalopram.instruction: mrn is required');
    return CITALOPRAM_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(world, opts) {
    return generateOver('citalopram', opts, async (mrn) => {
      const f = await readCitalopramFacts(world, mrn);
      if (f.branch === null) return null;
      const facts: Record<string, unknown> = { age: f.age, qtc: f.qtc, previous: f.previous, orderId: f.orderId, results: f.results };
      return { branch: f.branch, patient: mrn, facts, build: (id) => makeTask(id, citalopram.instruction({ mrn }), CITALOPRAM_CONTEXT, mrn) };
    });
  },

  solve(task, history, opts) {
    const variant = opts?.variant ?? VARIANTS[0];
    return runScript(task, history, opts, VARIANTS, variant === 'sorted' ? citalopramScript(sortedQtcs, ORDER_QUERIES.sorted) : citalopramScript(scanQtcs));
  },

  grade(task, output, ctx): Promise<GradeResult> {
    return gradeSuite(task, output, ctx, {
      templates: [CITALOPRAM_TEMPLATE, ...PARAPHRASES],
      read: readCitalopramFacts,
      branch: (f) =>
        f.branch !== null
          ? { branch: f.branch }
          : { why: `age ${String(f.age)}, ${f.results} QTc results, ${f.activeOrders} active citalopram orders (one at 20 mg needed)` },
      reference: (f) => [f.branch ? CITALOPRAM_LABELS[f.branch] : null, f.qtc ? f.qtc.ms : -1],
      check: (output, facts, mrn, state, branch) => gradeEndState(output, facts, mrn, state, branch as CitalopramBranch),
    });
  },
};
