/**
 * aki — stage acute kidney injury from a creatinine series, document it, stop NSAIDs (clinical suite, lab-triggered
 * protocol; docs/tasks.md).
 *
 * Rule: KDIGO Acute Kidney Injury Work Group, "KDIGO Clinical Practice Guideline for Acute Kidney Injury", Kidney Int
 * Suppl 2012;2(1):1–138. Recommendation 2.1.1: AKI is an increase in serum creatinine by ≥ 0.3 mg/dL (≥ 26.5 µmol/L)
 * within 48 hours, or an increase to ≥ 1.5 times baseline known or presumed to have occurred within the prior 7 days
 * (or urine output < 0.5 mL/kg/h for 6 h, not used: the record has no urine output). Recommendation 2.1.2 / Table 2
 * (staging): stage 1 = 1.5–1.9 × baseline or ≥ 0.3 mg/dL increase; stage 2 = 2.0–2.9 ×; stage 3 = ≥ 3.0 × or an
 * increase to ≥ 4.0 mg/dL (≥ 353.6 µmol/L). Figure 4 (stage-based management): discontinue all nephrotoxic agents
 * when possible, at every stage. The task's context states the exact operational reading (which results count, the
 * windows, baseline = the lowest counting result in the 7 days before each result).
 *
 * The world plants, on the patients of planting lane 1 (`inLane(index, 1)`), on top of the cohort's own daily
 * creatinine results: a stat creatinine drawn after the morning labs (low, high, or ≥ 4 mg/dL; in µmol/L, LOINC
 * 14682-9, in half of the patients), an `entered-in-error` spike above every standing value, a `cancelled` result
 * without a value, a high result 30–90 minutes before the 7-day window (a reader that filters by date, not instant,
 * takes it), older outpatient results in µmol/L, one or two active NSAID orders (PRN or scheduled, oral or IV), an
 * older stopped ibuprofen order and an active acetaminophen order (not an NSAID). The planted results follow the
 * cohort's in server order, past the first page of 20. The cohort's creatinine varies a lot from day to day, so the
 * stage is read from the whole record (generator and grader alike): patients whose stage sits on a threshold tie, or
 * changes when µmol/L values are converted without rounding, serve no task.
 *
 * Codes: LOINC 2160-0 and 14682-9 (the catalogue's and the plan's), ICD-10-CM N17.9 and SNOMED CT 14669001 (the
 * catalogue's AKI condition); RxNorm ingredients ibuprofen 5640, naproxen 7258, ketorolac 35827, diclofenac 3355 and
 * celecoxib 140587 were checked against public code lists, not RxNav itself; meloxicam 41493 could not be confirmed
 * (one list gives 103531) and is not planted. The clinical-drug codes ibuprofen 600 MG Oral Tablet 197806 and naproxen
 * 500 MG Oral Tablet 198014 were checked against public code lists only. The grader identifies NSAIDs by these codes or
 * by the ingredient's name, so the family does not depend on any one of them.
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
  changedKeys,
  checkpoint,
  codeIn,
  codings,
  D,
  gradeSuite,
  H,
  hasAnyCode,
  inLane,
  LAB_CATEGORY,
  noOtherWrites,
  resources,
  shuffle,
  strayWrites,
  subjectIs,
  VALID_RESULT_STATUSES,
} from './kit.js';

export const AKI_TEMPLATE =
  'Review the serum creatinine results of patient {MRN} from the last 7 days with the KDIGO 2012 creatinine criteria for acute kidney injury (urine output is not recorded). If the patient has AKI, add acute kidney injury to the problem list and stop every active NSAID order. Finish with [KDIGO stage (0 if no AKI), the highest creatinine of the last 7 days in mg/dL].\n';
export const AKI_CONTEXT =
  "It's 2023-11-13T10:15:00+00:00 now. Serum creatinine is LOINC 2160-0 (mg/dL) or 14682-9 (umol/L; divide by 88.4 for mg/dL, then round to 2 decimals). " +
  'A result counts only with status final, amended or corrected. The last 7 days are effective times after 2023-11-06T10:15:00+00:00 (compare instants). ' +
  "For each counting result C of the last 7 days: its baseline is the lowest counting result in the 7 days (168 h) before C's time, and its 48-hour rise is C minus the lowest counting result in the 48 hours before it (with no result in that span, the criterion does not apply). " +
  "KDIGO stage of C: 3 if C >= 3.0 x baseline, or C >= 4.0 mg/dL with a 48-hour rise >= 0.3 or C >= 1.5 x baseline; else 2 if C >= 2.0 x baseline; else 1 if C >= 1.5 x baseline or the 48-hour rise >= 0.3 mg/dL; else 0. The patient's stage is the highest; stage >= 1 is AKI. " +
  'Document AKI as a new Condition: code ICD-10-CM N17.9 (http://hl7.org/fhir/sid/icd-10-cm) or SNOMED CT 14669001 (http://snomed.info/sct), clinicalStatus active (http://terminology.hl7.org/CodeSystem/condition-clinical), verificationStatus confirmed (http://terminology.hl7.org/CodeSystem/condition-ver-status), category problem-list-item (http://terminology.hl7.org/CodeSystem/condition-category), subject the patient. ' +
  'NSAID ingredients (RxNorm): ibuprofen 5640, naproxen 7258, ketorolac 35827, meloxicam 41493, diclofenac 3355, celecoxib 140587; acetaminophen is not an NSAID. ' +
  'Stop an order by PUT of the MedicationRequest with status stopped and nothing else changed. With no AKI, change nothing. Answer [stage, highest creatinine in mg/dL].';

export const CR_MGDL_LOINC = '2160-0';
export const CR_MGDL_DISPLAY = 'Creatinine [Mass/volume] in Serum or Plasma';
export const CR_UMOL_LOINC = '14682-9';
export const CR_UMOL_DISPLAY = 'Creatinine [Moles/volume] in Serum or Plasma';
/** µmol/L per mg/dL of creatinine (the context's factor). */
export const UMOL_PER_MGDL = 88.4;
export const AKI_ICD10 = 'N17.9';
export const AKI_SNOMED = '14669001';
export const NOW_ISO = '2023-11-13T10:15:00+00:00';
/** The counting window: NOW − 7 d < t ≤ NOW. */
export const WINDOW_MS = 7 * D * MINUTE;
/** The rise window before a result: t − 48 h ≤ t_i < t. */
export const RISE_MS = 48 * H * MINUTE;
/** The planted result before the window is 30 to this many minutes older than NOW − 7 d. */
const STALE_MAX_MIN = 90;
/** The grader's tolerance on the answer's creatinine (mg/dL). */
export const PEAK_TOLERANCE = 0.02;

/** RxNorm ingredients of the NSAIDs the context names. */
export const NSAID_INGREDIENTS: Readonly<Record<string, string>> = {
  '5640': 'ibuprofen',
  '7258': 'naproxen',
  '35827': 'ketorolac',
  '41493': 'meloxicam',
  '3355': 'diclofenac',
  '140587': 'celecoxib',
};
/** The clinical-drug codes the world plants (ibuprofen 600 mg tablet, naproxen 500 mg tablet). */
const NSAID_DRUG_CODES = ['197806', '198014'];
const NSAID_NAMES = /\b(ibuprofen|naproxen|ketorolac|meloxicam|diclofenac|celecoxib)\b/i;

const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const CONDITION_VERIFICATION = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
const CONDITION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
const MEDREQ_CATEGORY = 'http://terminology.hl7.org/CodeSystem/medicationrequest-category';

export type AkiBranch = 'no_aki' | 'stage1' | 'stage2' | 'stage3';
const BRANCHES: readonly AkiBranch[] = ['no_aki', 'stage1', 'stage2', 'stage3'];
const BRANCH_OF_STAGE: readonly AkiBranch[] = ['no_aki', 'stage1', 'stage2', 'stage3'];

const AKI_CHECKPOINTS_LIST = [
  'finished',
  'answer_peak',
  'answer_stage',
  'aki_problem',
  'aki_problem_payload',
  'nsaids_stopped',
  'nsaid_only_status',
  'no_other_writes',
] as const;
/** Checkpoints per branch, in the order an expert works (look up, decide, write, nothing else). */
export const AKI_CHECKPOINTS: Readonly<Record<AkiBranch, readonly string[]>> = {
  no_aki: ['finished', 'answer_peak', 'answer_stage', 'no_writes'],
  stage1: AKI_CHECKPOINTS_LIST,
  stage2: AKI_CHECKPOINTS_LIST,
  stage3: AKI_CHECKPOINTS_LIST,
};

// ---------------------------------------------------------------------------------------------------------------
// Reading the record

/** One creatinine result in mg/dL (`hundredths`: the value × 100 as an integer, for exact threshold tests). */
export interface CrReading {
  id: string;
  time: string;
  t: number;
  /** mg/dL, rounded to 2 decimals as the context says. */
  value: number;
  hundredths: number;
  /** mg/dL without rounding (differs from `value` only for µmol/L results). */
  exact: number;
  unit: 'mg/dL' | 'umol/L';
}

/** How a reader treats results (the rule's by default; tests plug in trap readings). */
export interface CrRule {
  /** Statuses that count (default `VALID_RESULT_STATUSES`). */
  statuses?: readonly string[] | 'any';
  /** Convert µmol/L results (default true); false reads the bare number as mg/dL. */
  convert?: boolean;
}

const isUmol = (r: Record<string, unknown>): boolean => {
  const q = r.valueQuantity as { unit?: unknown; code?: unknown } | undefined;
  const u = `${String(q?.code ?? '')} ${String(q?.unit ?? '')}`.toLowerCase();
  return hasAnyCode(r.code, LOINC, [CR_UMOL_LOINC]) || /[uµμ]mol\/l/.test(u);
};

/** The creatinine results among resources that count by `rule`, in mg/dL. */
export function creatinineReadings(items: readonly Record<string, unknown>[], rule: CrRule = {}): CrReading[] {
  const statuses = rule.statuses ?? VALID_RESULT_STATUSES;
  const out: CrReading[] = [];
  for (const r of items) {
    if (r.resourceType !== undefined && r.resourceType !== 'Observation') continue;
    if (!hasAnyCode(r.code, LOINC, [CR_MGDL_LOINC, CR_UMOL_LOINC])) continue;
    if (statuses !== 'any' && !statuses.includes(String(r.status))) continue;
    const v = (r.valueQuantity as { value?: unknown } | undefined)?.value;
    const t = Date.parse(String(r.effectiveDateTime));
    if (typeof v !== 'number' || !Number.isFinite(v) || !Number.isFinite(t)) continue;
    const umol = isUmol(r) && rule.convert !== false;
    const exact = umol ? v / UMOL_PER_MGDL : v;
    const hundredths = Math.round(exact * 100);
    out.push({ id: String(r.id), time: String(r.effectiveDateTime), t, value: hundredths / 100, hundredths, exact, unit: umol ? 'umol/L' : 'mg/dL' });
  }
  return out;
}

/** What the KDIGO reading of a series gives: the stage, the highest result of the window, and whether any test tied. */
export interface KdigoResult {
  stage: 0 | 1 | 2 | 3;
  /** The highest counting result of the last 7 days (null: none). */
  peak: CrReading | null;
  /** The result that reached the stage first in time, and its baseline (null at stage 0). */
  decisive: { reading: CrReading; baseline: number } | null;
  /** Some result sits exactly on a threshold (a ratio of 1.5, 2 or 3, a rise of 0.3, a value of 4.0). */
  tie: boolean;
  /** Results in the window. */
  inWindow: number;
}

/** Stage of one result by the context's rule, on integer hundredths (exact), or on unrounded values. */
function stageOf(c: number, base: number | null, low48: number | null, scale: number): 0 | 1 | 2 | 3 {
  const rise = low48 !== null && c - low48 >= 30 * scale - 1e-9;
  const r15 = base !== null && 2 * c >= 3 * base - 1e-9;
  const r2 = base !== null && c >= 2 * base - 1e-9;
  const r3 = base !== null && c >= 3 * base - 1e-9;
  if (r3 || (c >= 400 * scale - 1e-9 && (rise || r15))) return 3;
  if (r2) return 2;
  if (r15 || rise) return 1;
  return 0;
}

/** The KDIGO creatinine reading of a series at NOW (`exact`: on unrounded mg/dL, to find conversion-sensitive cases). */
export function kdigo(readings: readonly CrReading[], opts: { exact?: boolean; windowStart?: number } = {}): KdigoResult {
  const start = opts.windowStart ?? NOW_MS - WINDOW_MS;
  const val = (r: CrReading) => (opts.exact ? r.exact * 100 : r.hundredths);
  const sorted = [...readings].sort((a, b) => a.t - b.t);
  let stage: 0 | 1 | 2 | 3 = 0;
  let peak: CrReading | null = null;
  let decisive: KdigoResult['decisive'] = null;
  let tie = false;
  let inWindow = 0;
  for (const r of sorted) {
    if (!(r.t > start && r.t <= NOW_MS)) continue;
    inWindow++;
    if (!peak || r.hundredths > peak.hundredths) peak = r;
    let base: number | null = null;
    let low48: number | null = null;
    for (const p of sorted) {
      if (p.t >= r.t) break;
      if (p.t >= r.t - WINDOW_MS) base = base === null ? val(p) : Math.min(base, val(p));
      if (p.t >= r.t - RISE_MS) low48 = low48 === null ? val(p) : Math.min(low48, val(p));
    }
    const c = val(r);
    if (!opts.exact && base !== null && (2 * c === 3 * base || c === 2 * base || c === 3 * base)) tie = true;
    if (!opts.exact && low48 !== null && c - low48 === 30) tie = true;
    if (!opts.exact && c === 400) tie = true;
    const s = stageOf(c, base, low48, 1);
    if (s > stage) {
      stage = s;
      decisive = { reading: r, baseline: (base ?? c) / 100 };
    }
  }
  return { stage, peak, decisive, tie, inWindow };
}

const isNsaid = (r: Record<string, unknown>): boolean => {
  const cc = r.medicationCodeableConcept as { text?: unknown } | undefined;
  if (hasAnyCode(cc, RXNORM, [...Object.keys(NSAID_INGREDIENTS), ...NSAID_DRUG_CODES])) return true;
  const words = [cc?.text, ...codings(cc).map((c) => c.display)].filter((x): x is string => typeof x === 'string').join(' ');
  return NSAID_NAMES.test(words);
};

/** The active NSAID orders among MedicationRequests. */
export function activeNsaids(items: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return items.filter((r) => r.status === 'active' && isNsaid(r));
}

const creatinineQuery = (mrn: string) => `Observation?patient=${mrn}&code=${CR_MGDL_LOINC},${CR_UMOL_LOINC}&_count=5000`;
const medicationQuery = (mrn: string) => `MedicationRequest?patient=${mrn}&_count=5000`;

/** What a task's reference is, read from the world (generator and grader share it). */
export interface AkiFacts {
  branch: AkiBranch | null;
  stage: number;
  /** The answer's creatinine (mg/dL). */
  peak: number | null;
  peakId: string | null;
  decisive: { id: string; time: string; value: number; baseline: number } | null;
  /** The active NSAID orders (ids), which AKI stops. */
  nsaids: string[];
  /** Why the patient serves no task (null when it does). */
  why: string | null;
}

export async function readAkiFacts(world: WorldAccess, mrn: string): Promise<AkiFacts> {
  const obs = resources(await worldJson(world, creatinineQuery(mrn)));
  const meds = resources(await worldJson(world, medicationQuery(mrn)));
  const readings = creatinineReadings(obs);
  const k = kdigo(readings);
  const nsaids = activeNsaids(meds).map((r) => String(r.id));
  // the family's scenario (lane 1): an entered-in-error result, a counting result in the 90 minutes before the window,
  // a µmol/L result and an active NSAID; other patients' creatinine serves other families
  const beforeWindow = readings.some((r) => r.t <= NOW_MS - WINDOW_MS && r.t >= NOW_MS - WINDOW_MS - STALE_MAX_MIN * MINUTE);
  const planted = obs.some((r) => r.status === 'entered-in-error') && beforeWindow && readings.some((r) => r.unit === 'umol/L') && nsaids.length > 0;
  const why = !planted
    ? 'no planted AKI scenario (an entered-in-error creatinine, one just before the window, a µmol/L result and an active NSAID)'
    : k.inWindow === 0
      ? 'no creatinine in the last 7 days'
      : k.tie
        ? 'a creatinine sits exactly on a KDIGO threshold'
        : kdigo(readings, { exact: true }).stage !== k.stage
          ? 'the stage changes when µmol/L results are converted without rounding'
          : null;
  return {
    branch: why === null ? BRANCH_OF_STAGE[k.stage]! : null,
    stage: k.stage,
    peak: k.peak ? k.peak.value : null,
    peakId: k.peak ? k.peak.id : null,
    decisive: k.decisive ? { id: k.decisive.reading.id, time: k.decisive.reading.time, value: k.decisive.reading.value, baseline: k.decisive.baseline } : null,
    nsaids,
    why,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads and the expert policy

export function akiCondition(mrn: string, stage: number): Record<string, unknown> {
  return {
    resourceType: 'Condition',
    clinicalStatus: { coding: [{ system: CONDITION_CLINICAL, code: 'active', display: 'Active' }] },
    verificationStatus: { coding: [{ system: CONDITION_VERIFICATION, code: 'confirmed', display: 'Confirmed' }] },
    category: [{ coding: [{ system: CONDITION_CATEGORY, code: 'problem-list-item', display: 'Problem List Item' }] }],
    code: {
      coding: [
        { system: ICD10, code: AKI_ICD10, display: 'Acute kidney failure, unspecified' },
        { system: SNOMED, code: AKI_SNOMED, display: 'Acute renal failure syndrome (disorder)' },
      ],
      text: 'Acute kidney injury',
    },
    subject: { reference: `Patient/${mrn}` },
    recordedDate: NOW_ISO,
    stage: [{ summary: { text: `KDIGO stage ${stage}` } }],
  };
}

/** How a policy reads the creatinine results (the expert's; tests plug in trap readers). */
export type CrReader = (io: ScriptIO, mrn: string) => CrReading[];

/** Variant `scan`: every creatinine result (`_count=5000`), filtered here. */
export const scanCreatinine: CrReader = (io, mrn) => creatinineReadings(resources(io.json(`${io.apiBase}${creatinineQuery(mrn)}`)));
/** Variant `sorted`: the results of the last 14 days (the 7-day window and its baselines), in date order. */
export const sortedCreatinine: CrReader = (io, mrn) =>
  creatinineReadings(
    resources(
      io.json(
        `${io.apiBase}Observation?patient=${mrn}&code=${CR_MGDL_LOINC},${CR_UMOL_LOINC}&date=ge${fmtMinute(NOW_MS - 2 * WINDOW_MS).replace('+', '%2B')}&_sort=date&_count=1000`,
      ),
    ),
  );

const VARIANTS = ['scan', 'sorted'] as const;

/** The expert's script with a given creatinine reader: stage by KDIGO, document, stop NSAIDs, answer. */
export function akiScript(read: CrReader, windowStart?: number): (io: ScriptIO, task: TaskCase) => void {
  return (io, task) => {
    const mrn = taskMrn(task, [AKI_TEMPLATE, ...aki.paraphrases]);
    const k = kdigo(read(io, mrn), { windowStart });
    const peak = k.peak ? k.peak.value : 0;
    if (k.stage === 0) io.finish([0, peak]);
    const meds = resources(io.json(`${io.apiBase}MedicationRequest?patient=${mrn}&status=active&_count=5000`));
    io.post(`${io.apiBase}Condition`, akiCondition(mrn, k.stage));
    for (const m of activeNsaids(meds)) io.put(`${io.apiBase}MedicationRequest/${String(m.id)}`, { ...m, status: 'stopped' });
    io.finish([k.stage, peak]);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Planting

/** The stat creatinine drawn after the morning labs: low (cannot raise the stage), high, or ≥ 4 mg/dL. */
type StatKind = 'low' | 'high' | 'severe';
/** Dealt round-robin over the lane's patients. */
const STAT_KINDS: readonly StatKind[] = ['low', 'low', 'low', 'severe', 'low', 'low', 'high', 'low'];

interface NsaidDef {
  code: string;
  display: string;
  text: string;
  route: 'Oral' | 'Intravenous';
  timing: string;
  dose: number;
}
const NSAIDS: readonly NsaidDef[] = [
  { code: '197806', display: 'Ibuprofen 600 MG Oral Tablet', text: '600 mg oral Q6H PRN pain', route: 'Oral', timing: 'Q6H PRN', dose: 600 },
  { code: '198014', display: 'Naproxen 500 MG Oral Tablet', text: '500 mg oral BID', route: 'Oral', timing: 'BID', dose: 500 },
  { code: '35827', display: 'ketorolac', text: '15 mg intravenous Q6H (at most 5 days)', route: 'Intravenous', timing: 'Q6H', dose: 15 },
];
const ROUTES = {
  Oral: { system: SNOMED, code: '26643006', display: 'Oral route' },
  Intravenous: { system: SNOMED, code: '47625008', display: 'Intravenous route' },
};

const round2 = (x: number): number => Math.round(x * 100) / 100;

function creatinine(mrn: string, ageMin: number, status: string, mgdl: number | undefined, umol: boolean): Resource {
  const t = NOW_MS - ageMin * MINUTE;
  const r: Resource = {
    resourceType: 'Observation',
    status,
    category: LAB_CATEGORY,
    code: umol
      ? { coding: [{ system: LOINC, code: CR_UMOL_LOINC, display: CR_UMOL_DISPLAY }], text: 'Creatinine (SI)' }
      : { coding: [{ system: LOINC, code: CR_MGDL_LOINC, display: CR_MGDL_DISPLAY }], text: 'Creatinine' },
    subject: { reference: `Patient/${mrn}` },
    effectiveDateTime: fmtMinute(t),
    issued: fmtInstant(Math.min(t + 70 * MINUTE, NOW_MS)),
  };
  if (mgdl === undefined) {
    r.dataAbsentReason = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'not-performed', display: 'Not Performed' }] };
  } else if (umol) {
    r.valueQuantity = { value: Math.round(mgdl * UMOL_PER_MGDL), unit: 'umol/L', system: UCUM, code: 'umol/L' };
  } else {
    r.valueQuantity = { value: round2(mgdl), unit: 'mg/dL', system: UCUM, code: 'mg/dL' };
  }
  return r;
}

function medication(
  mrn: string,
  status: string,
  ageMin: number,
  coding: { code: string; display: string },
  text: string,
  route: NsaidDef['route'],
  timing: string,
  dose: number,
): Resource {
  return {
    resourceType: 'MedicationRequest',
    status,
    intent: 'order',
    category: [{ coding: [{ system: MEDREQ_CATEGORY, code: 'inpatient', display: 'Inpatient' }] }],
    medicationCodeableConcept: { coding: [{ system: RXNORM, ...coding }], text: coding.display },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: fmtMinute(NOW_MS - ageMin * MINUTE),
    dosageInstruction: [
      {
        text,
        timing: { code: { text: timing } },
        route: { coding: [ROUTES[route]], text: route },
        doseAndRate: [{ doseQuantity: { value: dose, unit: 'mg', system: UCUM, code: 'mg' } }],
      },
    ],
  };
}

/** A lane-1 patient's AKI records: creatinine results and traps, then the medication orders, in server order. */
function plantAki(p: PlantPatient, rng: Rng): Resource[] {
  if (!inLane(p.index, 1)) return [];
  const kind = STAT_KINDS[Math.floor(p.index / 2) % STAT_KINDS.length]!;
  const statUmol = rng.chance(0.6);
  // the stat result after the morning labs: low values cannot raise the stage (the cohort's floor is 0.40 mg/dL)
  const stat = kind === 'low' ? rng.float(0.45, 0.58) : kind === 'high' ? rng.float(1.7, 2.6) : rng.float(4.6, 6.4);
  const results: Resource[] = [creatinine(p.mrn, rng.int(40, 150), 'final', stat, statUmol)];
  // an entered-in-error spike above every standing value, a cancelled result, a high result just before the window
  results.push(creatinine(p.mrn, rng.int(3 * H, 30 * H), 'entered-in-error', Math.max(stat, 4.5) + rng.float(0.8, 2.2), false));
  results.push(creatinine(p.mrn, rng.int(2 * H, 10 * H), 'cancelled', undefined, false));
  results.push(creatinine(p.mrn, 7 * D + rng.int(30, STALE_MAX_MIN), 'final', rng.float(2.7, 3.6), false));
  // outpatient results in µmol/L, months back
  const outpatient = rng.int(2, 4);
  for (let i = 0; i < outpatient; i++) results.push(creatinine(p.mrn, rng.int(40, 400) * D + rng.int(0, 600), 'final', rng.float(0.8, 1.25), true));
  const out = shuffle(results, rng);
  // orders: one or two active NSAIDs, an older stopped ibuprofen, an active acetaminophen
  const picks = shuffle([...NSAIDS], rng).slice(0, rng.chance(0.3) ? 2 : 1);
  const orders: Resource[] = picks.map((n) =>
    medication(p.mrn, 'active', rng.int(20 * H, 4 * D), { code: n.code, display: n.display }, n.text, n.route, n.timing, n.dose),
  );
  orders.push(
    medication(
      p.mrn,
      'stopped',
      rng.int(40, 200) * D,
      { code: '197806', display: 'Ibuprofen 600 MG Oral Tablet' },
      '600 mg oral Q6H PRN pain',
      'Oral',
      'Q6H PRN',
      600,
    ),
  );
  orders.push(
    medication(
      p.mrn,
      'active',
      rng.int(20 * H, 4 * D),
      { code: '313782', display: 'Acetaminophen 325 MG Oral Tablet' },
      '650 mg oral Q6H PRN pain or fever',
      'Oral',
      'Q6H PRN',
      650,
    ),
  );
  out.push(...shuffle(orders, rng));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

const isAkiCondition = (r: Resource): boolean => hasAnyCode(r.code, ICD10, [AKI_ICD10]) || hasAnyCode(r.code, SNOMED, [AKI_SNOMED]);

/** The answer `[stage, creatinine]`, or why it is not one (`answerList`'s classes). */
function answerOf(result: TaskOutput['result']): { stage: unknown; peak: unknown } | { problem: string; cls: 'protocol' | 'lookup' } {
  const a = answerList(result, 2);
  if (!('items' in a)) return a;
  return { stage: a.items[0], peak: a.items[1] };
}

async function gradeEndState(output: TaskOutput, facts: AkiFacts, mrn: string, state: EndState, branch: string): Promise<Checkpoint[]> {
  const checks: Checkpoint[] = [];
  const a = answerOf(output.result);
  if ('problem' in a) {
    checks.push(checkpoint('answer_peak', a.cls, false, [facts.stage, facts.peak], output.result, a.problem));
    checks.push(checkpoint('answer_stage', 'decision', false, facts.stage, output.result, a.problem));
  } else {
    const peakOk = typeof a.peak === 'number' && facts.peak !== null && Math.abs(a.peak - facts.peak) <= PEAK_TOLERANCE + 1e-9;
    checks.push(checkpoint('answer_peak', 'lookup', peakOk, facts.peak, a.peak));
    checks.push(checkpoint('answer_stage', 'decision', a.stage === facts.stage, facts.stage, a.stage));
  }
  if (branch === 'no_aki') {
    const touched = state.touched();
    checks.push(checkpoint('no_writes', 'decision', touched.length === 0, [], touched, 'no AKI: nothing is documented and no order changes'));
    return checks;
  }
  const conditions = await state.created('Condition');
  const aki = conditions.find(isAkiCondition);
  checks.push(
    checkpoint(
      'aki_problem',
      'decision',
      !!aki,
      `Condition ${AKI_ICD10} or SNOMED ${AKI_SNOMED}`,
      conditions.map((r) => codings(r.code).map((c) => c.code)),
    ),
  );
  const cond = aki ?? conditions[0];
  const clinical = cond && codeIn(cond.clinicalStatus, CONDITION_CLINICAL);
  const verification = cond && codeIn(cond.verificationStatus, CONDITION_VERIFICATION);
  const categories = Array.isArray(cond?.category) ? (cond.category as unknown[]).map((c) => codeIn(c, CONDITION_CATEGORY)) : [];
  checks.push(
    checkpoint(
      'aki_problem_payload',
      'payload',
      !!cond && subjectIs(cond, mrn) && clinical === 'active' && verification === 'confirmed' && categories.includes('problem-list-item'),
      { subject: `Patient/${mrn}`, clinicalStatus: 'active', verificationStatus: 'confirmed', category: 'problem-list-item' },
      cond && { subject: cond.subject, clinicalStatus: clinical, verificationStatus: verification, category: categories },
    ),
  );
  const statuses: Record<string, unknown> = {};
  const changed: Record<string, string[]> = {};
  for (const id of facts.nsaids) {
    const before = await state.readBase('MedicationRequest', id);
    const after = await state.read('MedicationRequest', id);
    statuses[id] = after?.status;
    const keys = changedKeys(before, after, 'status');
    if (keys.length) changed[id] = keys;
  }
  checks.push(
    checkpoint(
      'nsaids_stopped',
      'decision',
      facts.nsaids.every((id) => statuses[id] === 'stopped'),
      Object.fromEntries(facts.nsaids.map((id) => [id, 'stopped'])),
      statuses,
    ),
  );
  checks.push(
    checkpoint(
      'nsaid_only_status',
      'payload',
      Object.keys(changed).length === 0,
      {},
      changed,
      'fields of the NSAID orders other than status and meta that changed',
    ),
  );
  const stray = strayWrites(
    state,
    { Condition: 1 },
    facts.nsaids.map((id) => `MedicationRequest/${id}`),
  );
  checks.push(noOtherWrites(stray));
  return checks;
}

const PARAPHRASES = [
  'Does {MRN} meet the KDIGO 2012 creatinine criteria for acute kidney injury over the last 7 days? If so, put AKI on the problem list and discontinue every active NSAID (nephrotoxin stewardship). Reply with [stage, highest creatinine of the 7 days in mg/dL].\n',
  'AKI screen for patient {MRN}: apply the KDIGO creatinine criteria (no urine output data) to the last 7 days of results, document AKI on the problem list and stop the active NSAID orders if present, and answer [KDIGO stage or 0, peak creatinine mg/dL].\n',
  "Please check {MRN}'s creatinine trend of the past week against KDIGO 2012. When it shows acute kidney injury, record it as a problem and stop the patient's NSAIDs; otherwise change nothing. Answer with [stage, highest creatinine in mg/dL].\n",
];

export const aki: SuiteFamily<'aki'> = {
  id: 'aki',
  suite: 'ehrgym-clinical',
  dialect: 'ehrgym',
  name: 'KDIGO acute kidney injury staging with NSAID stewardship',
  kind: 'action',
  rule: {
    name: 'AKI = serum creatinine rise ≥ 0.3 mg/dL within 48 h or ≥ 1.5 × baseline within 7 days; stage 1 (1.5–1.9 × or ≥ 0.3 mg/dL), 2 (2.0–2.9 ×), 3 (≥ 3.0 × or ≥ 4.0 mg/dL); discontinue nephrotoxic agents at every stage',
    source:
      'KDIGO Acute Kidney Injury Work Group. KDIGO Clinical Practice Guideline for Acute Kidney Injury. Kidney Int Suppl 2012;2(1):1–138 (recommendations 2.1.1 and 2.1.2, Table 2, Figure 4)',
  },
  instructionTemplates: [AKI_TEMPLATE],
  context: AKI_CONTEXT,
  branches: BRANCHES,
  checkpoints: AKI_CHECKPOINTS,
  variants: VARIANTS,
  turns: { min: 2, max: 7 },
  recordKey: 'eval_MRN',
  paraphrases: PARAPHRASES,
  placeholders: mrnPlaceholders,
  planted: 'none',
  planting: { name: 'aki', version: 'aki-v1', plant: plantAki },
  detector: mrnDetector({ retrievedValue: true, latestValue: false }),
  factory: plainFactoryHints(0),
  audit: {
    // nothing found: no AKI, no creatinine
    nothingFound: [0, 0],
    // blind: an AKI problem for the patient (stopping the NSAIDs needs their ids, which takes a read)
    alwaysAct: alwaysPost([AKI_TEMPLATE, ...PARAPHRASES], (mrn) => [{ resource: 'Condition', payload: akiCondition(mrn, 1) }]),
  },

  instruction({ mrn }) {
    if (!mrn) throw new Error('aki.instruction: mrn is required');
    return AKI_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(world, opts) {
    return generateOver('aki', opts, async (mrn) => {
      const f = await readAkiFacts(world, mrn);
      if (f.branch === null) return null;
      const facts: Record<string, unknown> = { stage: f.stage, peak: f.peak, peakId: f.peakId, decisive: f.decisive, nsaids: f.nsaids };
      return { branch: f.branch, patient: mrn, facts, build: (id) => makeTask(id, aki.instruction({ mrn }), AKI_CONTEXT, mrn) };
    });
  },

  solve(task, history, opts) {
    const variant = opts?.variant ?? VARIANTS[0];
    return runScript(task, history, opts, VARIANTS, akiScript(variant === 'sorted' ? sortedCreatinine : scanCreatinine));
  },

  grade(task, output, ctx): Promise<GradeResult> {
    return gradeSuite(task, output, ctx, {
      templates: [AKI_TEMPLATE, ...PARAPHRASES],
      read: readAkiFacts,
      branch: (f) => (f.branch !== null ? { branch: f.branch } : { why: f.why ?? 'no task' }),
      reference: (f) => [f.stage, f.peak],
      check: (output, facts, mrn, state, branch) => gradeEndState(output, facts, mrn, state, branch),
    });
  },
};
