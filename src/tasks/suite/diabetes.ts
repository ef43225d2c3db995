/**
 * diabetes — add type 2 diabetes to the problem list when HbA1c results confirm it (clinical suite, documentation;
 * docs/tasks.md).
 *
 * Rule: American Diabetes Association Professional Practice Committee, "2. Diagnosis and Classification of Diabetes:
 * Standards of Care in Diabetes—2024", Diabetes Care 2024;47(Suppl 1):S20–S42 (recommendation 2.1a and the
 * diagnostic criteria: A1C ≥ 6.5 % [48 mmol/mol] in an NGSP-certified laboratory; in the absence of unequivocal
 * hyperglycemia the diagnosis needs two abnormal results, from the same sample or two separate samples). The family
 * uses HbA1c only (no fasting glucose: other families plant glucose on every patient) and counts results from the last
 * 12 months: diabetes is confirmed when results that stand are ≥ 6.5 % on at least two different calendar days. The
 * labs do not tell the type; the ICD-10-CM Official Guidelines (FY2024, I.C.4.a.2) default an undocumented type to
 * E11, so the problem added is E11.9 "Type 2 diabetes mellitus without complications" (SNOMED 44054006).
 *
 * Decision (labs first, then the list): criteria not met → "not-confirmed", write nothing (whatever the list holds:
 * a diabetes problem is never removed on labs); criteria met and an active diabetes problem-list entry →
 * "already-documented", write nothing; criteria met and none → POST one Condition, "added". Once diabetes is
 * confirmed, an active prediabetes entry (R73.03) is superseded — ICD-10-CM R73 has Excludes1 "diabetes mellitus
 * (E08–E13)", the two are never coded together — so it is resolved by PUT (clinicalStatus resolved, nothing else
 * changed): with the added problem, or alone beside a documented diabetes (branch `prediabetes_resolved`, still
 * "already-documented"). The answer's second item
 * is the most recent counting A1C in % (IFCC results converted with the IFCC–NGSP master equation, NGSP =
 * 0.09148 × IFCC + 2.152, as published by the NGSP).
 *
 * The world plants, on lane-1 patients (`inLane(index, 1)`), 24–30 older HbA1c results (so that the newest is past the
 * first page of an unsorted search) and a scenario of recent results with traps: a result in IFCC units (LOINC
 * 59261-8, mmol/mol), an `entered-in-error` abnormal result newer than the rest, a `cancelled` one, an abnormal result
 * 30–90 minutes outside the 12-month window, a borderline 6.4 %; and conditions: an `entered-in-error` type 2
 * diabetes problem-list entry, an active type 2 diabetes *encounter diagnosis* (not the problem list), an active
 * prediabetes problem. The cohort's own HbA1c results and problem lists (many patients already list type 2 diabetes)
 * stay, and every fact is read from the record, so generator and grader agree whatever else is planted.
 *
 * Why a labs-first decision: about 70 % of the cohort already lists type 2 diabetes, so a list-first rule would leave
 * too few patients for "added" and "not-confirmed"; labs first lets "not-confirmed" come from any patient.
 *
 * Codes: LOINC 4548-4 and 59261-8 (HL7 Vulcan RWD value set of HbA1c test codes), ICD-10-CM E11.9, E08–E13, R73.03,
 * SNOMED 44054006, 15777000; SNOMED 73211009 (diabetes mellitus) and 46635009 (type 1) are accepted as existing
 * entries but were not checked against a terminology server.
 */
import type { Resource } from '../../fhir/types.js';
import { fmtInstant, fmtMinute, MINUTE, NOW_MS } from '../../worlds/clinical.js';
import { ICD10, LOINC, SNOMED, UCUM } from '../../worlds/catalog.js';
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
  FIRST_PAGE,
  gradeSuite,
  H,
  hasCode,
  inLane,
  LAB_CATEGORY,
  ms,
  pastFirstPage,
  type Res,
  resources,
  sameLabel,
  shuffle,
  strayWrites,
  subjectIs,
  VALID_RESULT_STATUSES,
} from './kit.js';

export const DIABETES_TEMPLATE =
  'Review patient {MRN}\'s hemoglobin A1c results from the last 12 months. If they confirm diabetes by the ADA criteria (two results of 6.5 % or higher on different days), reconcile the problem list: add type 2 diabetes mellitus if no active diabetes problem is listed, and resolve an active prediabetes problem. Finish with ["added" | "already-documented" | "not-confirmed", the most recent A1c in %, the date of that result as YYYY-MM-DD].\n';

export const NOW_ISO = '2023-11-13T10:15:00+00:00';
/** Results count when effective after this instant (NOW − 365 days) and at or before NOW. */
export const WINDOW_START = '2022-11-13T10:15:00+00:00';
export const WINDOW_START_MS = Date.parse(WINDOW_START);

export const A1C_LOINC = '4548-4';
export const A1C_DISPLAY = 'Hemoglobin A1c/Hemoglobin.total in Blood';
export const A1C_IFCC_LOINC = '59261-8';
export const A1C_IFCC_DISPLAY = 'Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol';
/** Diagnostic thresholds (ADA): 6.5 % NGSP, 48 mmol/mol IFCC. */
export const A1C_THRESHOLD_PCT = 6.5;
export const A1C_THRESHOLD_IFCC = 48;
/** The IFCC–NGSP master equation (NGSP): % = 0.09148 × mmol/mol + 2.152. */
export const ifccToPercent = (mmolPerMol: number): number => 0.09148 * mmolPerMol + 2.152;
/** How far the answer's A1C may be from the reference (percentage points). */
export const A1C_TOLERANCE = 0.1;

export const T2DM_ICD10 = 'E11.9';
export const T2DM_ICD10_DISPLAY = 'Type 2 diabetes mellitus without complications';
export const T2DM_SNOMED = '44054006';
export const T2DM_SNOMED_DISPLAY = 'Diabetes mellitus type 2 (disorder)';
/** ICD-10-CM diabetes mellitus categories (E08 due to an underlying condition … E13 other specified). */
export const DIABETES_ICD10_CATEGORIES: readonly string[] = ['E08', 'E09', 'E10', 'E11', 'E13'];
/** SNOMED diabetes mellitus, type 2, type 1. */
export const DIABETES_SNOMED: readonly string[] = ['73211009', '44054006', '46635009'];
export const PREDIABETES_ICD10 = 'R73.03';
export const PREDIABETES_SNOMED = '15777000';

export const CONDITION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
export const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
export const CONDITION_VERIFICATION = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';

export const DIABETES_CONTEXT =
  `It's ${NOW_ISO} now. HbA1c results are Observations coded LOINC ${A1C_LOINC} (NGSP, in %) or LOINC ${A1C_IFCC_LOINC} (IFCC, in mmol/mol; convert with % = 0.09148 × mmol/mol + 2.152). ` +
  `A result counts only if its status is final, amended or corrected and its effectiveDateTime is in the last 12 months (after ${WINDOW_START}). ` +
  'ADA Standards of Care: diabetes is confirmed when counting results of 6.5 % or higher (48 mmol/mol or higher) were taken on at least two different calendar days; otherwise it is not confirmed (answer not-confirmed and write nothing, whatever the problem list holds). ' +
  `The problem list is the patient's Conditions with category problem-list-item (${CONDITION_CATEGORY}); encounter diagnoses are not on it. ` +
  'Diabetes is already documented when a problem-list Condition is coded diabetes mellitus (ICD-10-CM E08, E09, E10, E11 or E13, or SNOMED 73211009, 44054006 or 46635009) with clinicalStatus active, recurrence or relapse and a verificationStatus other than entered-in-error or refuted; prediabetes (R73.03) is not diabetes. ' +
  `If diabetes is confirmed and not documented, POST one Condition: category problem-list-item, code ICD-10-CM ${T2DM_ICD10} "${T2DM_ICD10_DISPLAY}" (system ${ICD10}; SNOMED ${T2DM_SNOMED} may be added; labs do not tell the type and ICD-10-CM defaults an undocumented type to E11), ` +
  `clinicalStatus active (${CONDITION_CLINICAL}), verificationStatus confirmed (${CONDITION_VERIFICATION}), subject the patient; onsetDateTime and recordedDate, if given, not after now. ` +
  `When diabetes is confirmed, an active prediabetes entry (ICD-10-CM ${PREDIABETES_ICD10} or SNOMED ${PREDIABETES_SNOMED}) on the problem list is superseded (ICD-10-CM R73 excludes diabetes E08–E13): update it with PUT to clinicalStatus resolved (abatementDateTime may be set to now), changing nothing else in it. Change no other record. ` +
  "Answer with [outcome, A1c, date]: the outcome is added, already-documented or not-confirmed; the A1c is the most recent counting result in % (a number, IFCC converted) and the date is that result's effective date (YYYY-MM-DD).";

export type DiabetesBranch = 'already_documented' | 'prediabetes_resolved' | 'not_confirmed' | 'added';
/** The first branch gets a balanced split's extra task: the one the cohort fills most easily. */
const BRANCHES: readonly DiabetesBranch[] = ['already_documented', 'prediabetes_resolved', 'not_confirmed', 'added'];
/** The answer's outcome per branch (resolving prediabetes beside a documented diabetes is still "already-documented"). */
export const OUTCOME: Readonly<Record<DiabetesBranch, string>> = {
  already_documented: 'already-documented',
  prediabetes_resolved: 'already-documented',
  not_confirmed: 'not-confirmed',
  added: 'added',
};

/** Checkpoints per branch, in the order an expert works (look up, decide, write, nothing else). */
export const DIABETES_CHECKPOINTS: Readonly<Record<DiabetesBranch, readonly string[]>> = {
  already_documented: ['finished', 'answer_a1c', 'criteria', 'existing_problem', 'no_writes'],
  prediabetes_resolved: ['finished', 'answer_a1c', 'criteria', 'existing_problem', 'prediabetes_reconciled', 'no_other_writes'],
  not_confirmed: ['finished', 'answer_a1c', 'criteria', 'no_writes'],
  added: ['finished', 'answer_a1c', 'criteria', 'existing_problem', 'problem_added', 'problem_payload', 'prediabetes_reconciled', 'no_other_writes'],
};

// ---------------------------------------------------------------------------------------------------------------
// Reading the record

export interface A1cReading {
  /** In % (IFCC converted, not rounded). */
  percent: number;
  /** As reported, and its unit ('%' or 'mmol/mol'). */
  value: number;
  unit: '%' | 'mmol/mol';
  time: string;
  id: string;
  abnormal: boolean;
}

/** A HbA1c result as a reading (null: not an HbA1c result with a numeric value). Status is not looked at. */
export function a1cReading(r: Res): A1cReading | null {
  const v = (r.valueQuantity as { value?: unknown } | undefined)?.value;
  const t = ms(r.effectiveDateTime);
  if (typeof v !== 'number' || !Number.isFinite(v) || !Number.isFinite(t)) return null;
  const base = { value: v, time: String(r.effectiveDateTime), id: String(r.id) };
  if (hasCode(r.code, LOINC, A1C_IFCC_LOINC)) return { ...base, unit: 'mmol/mol', percent: ifccToPercent(v), abnormal: v >= A1C_THRESHOLD_IFCC };
  if (hasCode(r.code, LOINC, A1C_LOINC)) return { ...base, unit: '%', percent: v, abnormal: v >= A1C_THRESHOLD_PCT };
  return null;
}

export interface A1cSummary {
  /** The most recent counting result (null: none in the window). */
  latest: A1cReading | null;
  /** Calendar days (UTC, YYYY-MM-DD) of counting abnormal results, ascending. */
  abnormalDays: string[];
  confirmed: boolean;
  counting: number;
}

/**
 * The family's reading of HbA1c results: those that stand (`VALID_RESULT_STATUSES`) in the window
 * (`WINDOW_START < t <= NOW`; `inclusiveStart` counts one exactly at the start too, to detect a record that sits on
 * the boundary), the latest of them (the first of equal times in server order), and the days with an abnormal one.
 */
export function summarizeA1c(
  results: readonly Res[],
  counts: (r: Res) => boolean = (r) => VALID_RESULT_STATUSES.includes(String(r.status)),
  inclusiveStart = false,
): A1cSummary {
  let latest: A1cReading | null = null;
  let latestT = -Infinity;
  const days = new Set<string>();
  let counting = 0;
  for (const r of results) {
    if (!counts(r)) continue;
    const a = a1cReading(r);
    if (!a) continue;
    const t = Date.parse(a.time);
    if (t > NOW_MS || t < WINDOW_START_MS || (t === WINDOW_START_MS && !inclusiveStart)) continue;
    counting++;
    if (a.abnormal) days.add(new Date(t).toISOString().slice(0, 10));
    if (t > latestT) {
      latestT = t;
      latest = a;
    }
  }
  const abnormalDays = [...days].sort();
  return { latest, abnormalDays, confirmed: abnormalDays.length >= 2, counting };
}

const isDiabetesCode = (cc: unknown): boolean =>
  codings(cc).some(
    (c) =>
      (c.system === ICD10 && typeof c.code === 'string' && DIABETES_ICD10_CATEGORIES.includes(c.code.slice(0, 3))) ||
      (c.system === SNOMED && DIABETES_SNOMED.includes(String(c.code))),
  );
const onProblemList = (r: Res): boolean => (Array.isArray(r.category) ? r.category : []).some((c) => hasCode(c, CONDITION_CATEGORY, 'problem-list-item'));

/** A Condition that documents diabetes on the problem list (active, not entered-in-error or refuted). */
export function documentsDiabetes(r: Res): boolean {
  return (
    r.resourceType === 'Condition' &&
    onProblemList(r) &&
    isDiabetesCode(r.code) &&
    CURRENT.includes(codeIn(r.clinicalStatus, CONDITION_CLINICAL) ?? '') &&
    !['entered-in-error', 'refuted'].includes(codeIn(r.verificationStatus, CONDITION_VERIFICATION) ?? '')
  );
}

const CURRENT = ['active', 'recurrence', 'relapse'];
/** An active prediabetes entry on the problem list (ICD-10-CM R73.03 or SNOMED 15777000, not entered-in-error or refuted). */
export function activePrediabetes(r: Res): boolean {
  return (
    r.resourceType === 'Condition' &&
    onProblemList(r) &&
    (hasCode(r.code, ICD10, PREDIABETES_ICD10) || hasCode(r.code, SNOMED, PREDIABETES_SNOMED)) &&
    CURRENT.includes(codeIn(r.clinicalStatus, CONDITION_CLINICAL) ?? '') &&
    !['entered-in-error', 'refuted'].includes(codeIn(r.verificationStatus, CONDITION_VERIFICATION) ?? '')
  );
}

/**
 * The branch (labs first): not confirmed → nothing; confirmed and not documented → add (and resolve an active
 * prediabetes entry); confirmed, documented, an active prediabetes entry beside it → resolve it; else nothing.
 */
export function diabetesBranch(confirmed: boolean, documented: boolean, prediabetes: boolean): DiabetesBranch {
  if (!confirmed) return 'not_confirmed';
  if (!documented) return 'added';
  return prediabetes ? 'prediabetes_resolved' : 'already_documented';
}

const a1cQuery = (mrn: string) => `Observation?patient=${mrn}&code=${A1C_LOINC},${A1C_IFCC_LOINC}&_count=5000`;
const problemQuery = (mrn: string) => `Condition?patient=${mrn}&category=problem-list-item&_count=5000`;

/** What a task's reference is, read from the world (generator and grader share it). */
export interface DiabetesFacts {
  /** Null: the patient serves no task (no counting result, or a result on the window's start decides). */
  branch: DiabetesBranch | null;
  why?: string;
  latest: A1cReading | null;
  abnormalDays: string[];
  /** The ids of the problem-list entries that document diabetes. */
  documentedBy: string[];
  /** The ids of the active prediabetes problem-list entries. */
  prediabetesIds: string[];
  results: number;
}

export async function readDiabetesFacts(world: WorldAccess, mrn: string): Promise<DiabetesFacts> {
  const results = resources(await worldJson(world, a1cQuery(mrn)));
  const s = summarizeA1c(results);
  const problems = resources(await worldJson(world, problemQuery(mrn)));
  const documentedBy = problems.filter(documentsDiabetes).map((r) => String(r.id));
  const prediabetesIds = problems.filter(activePrediabetes).map((r) => String(r.id));
  const base = { latest: s.latest, abnormalDays: s.abnormalDays, documentedBy, prediabetesIds, results: results.length };
  if (!s.latest) return { ...base, branch: null, why: `${results.length} HbA1c results, none counting in the last 12 months` };
  // a clean task has the paging trap: the newest counting result past the first page of the unsorted search
  const at = results.findIndex((r) => String(r.id) === s.latest!.id);
  if (at < FIRST_PAGE) return { ...base, branch: null, why: `the newest counting result is on the first page (position ${at + 1})` };
  if (summarizeA1c(results, undefined, true).confirmed !== s.confirmed) return { ...base, branch: null, why: 'a result on the window start decides' };
  return { ...base, branch: diabetesBranch(s.confirmed, documentedBy.length > 0, prediabetesIds.length > 0) };
}

/** The answer's A1C: the latest counting result in %, one decimal. */
export const answerA1c = (r: A1cReading): number => Math.round(r.percent * 10) / 10;
/** The answer's date: the latest counting result's effective date (its UTC day, YYYY-MM-DD). */
export const answerDate = (r: A1cReading): string => new Date(Date.parse(r.time)).toISOString().slice(0, 10);

// ---------------------------------------------------------------------------------------------------------------
// Payload

export function t2dmProblem(mrn: string): Record<string, unknown> {
  return {
    resourceType: 'Condition',
    clinicalStatus: { coding: [{ system: CONDITION_CLINICAL, code: 'active', display: 'Active' }] },
    verificationStatus: { coding: [{ system: CONDITION_VERIFICATION, code: 'confirmed', display: 'Confirmed' }] },
    category: [{ coding: [{ system: CONDITION_CATEGORY, code: 'problem-list-item', display: 'Problem List Item' }] }],
    code: {
      coding: [
        { system: ICD10, code: T2DM_ICD10, display: T2DM_ICD10_DISPLAY },
        { system: SNOMED, code: T2DM_SNOMED, display: T2DM_SNOMED_DISPLAY },
      ],
      text: 'Type 2 diabetes mellitus',
    },
    subject: { reference: `Patient/${mrn}` },
    recordedDate: NOW_ISO,
  };
}

/** A prediabetes entry resolved (the same entry, clinicalStatus resolved, abated now). */
export function resolvedPrediabetes(entry: Res): Record<string, unknown> {
  return { ...entry, clinicalStatus: { coding: [{ system: CONDITION_CLINICAL, code: 'resolved', display: 'Resolved' }] }, abatementDateTime: NOW_ISO };
}
/** What resolving a prediabetes entry may change besides `meta`. */
export const RESOLVE_KEYS: readonly string[] = ['clinicalStatus', 'abatementDateTime', 'abatementString', 'abatementPeriod', 'abatementAge', 'note'];

// ---------------------------------------------------------------------------------------------------------------
// Expert policy

/** How a policy reads the labs and the problem list (the expert's; tests plug in trap readers). */
export interface DiabetesReader {
  a1c(io: ScriptIO, mrn: string): A1cSummary;
  /** The problem list's entries (those the policy looks at). */
  problems(io: ScriptIO, mrn: string): Res[];
}

/** Variant `scan`: every HbA1c result of both codes, every problem-list entry. */
const scanReader: DiabetesReader = {
  a1c: (io, mrn) => summarizeA1c(resources(io.json(`${io.apiBase}${a1cQuery(mrn)}`))),
  problems: (io, mrn) => resources(io.json(`${io.apiBase}${problemQuery(mrn)}`)),
};
/** Variant `sorted`: final results of the window only, newest first; active problem-list entries only. */
const sortedReader: DiabetesReader = {
  a1c: (io, mrn) =>
    summarizeA1c(
      resources(io.json(`${io.apiBase}Observation?patient=${mrn}&code=${A1C_LOINC},${A1C_IFCC_LOINC}&date=gt2022-11-13T10:15:00Z&_sort=-date&_count=200`)),
    ),
  problems: (io, mrn) => resources(io.json(`${io.apiBase}Condition?patient=${mrn}&category=problem-list-item&clinical-status=active&_count=200`)),
};
export const EXPERT_READERS: Readonly<Record<string, DiabetesReader>> = { scan: scanReader, sorted: sortedReader };
const VARIANTS = ['scan', 'sorted'] as const;

/** The expert's script with a given reader: the labs, then (confirmed) the problem list, the write, the answer. */
export function diabetesScript(read: DiabetesReader): (io: ScriptIO, task: TaskCase) => void {
  return (io, task) => {
    const mrn = taskMrn(task, [DIABETES_TEMPLATE, ...diabetes.paraphrases]);
    const s = read.a1c(io, mrn);
    const a1c = s.latest ? answerA1c(s.latest) : -1;
    const day = s.latest ? answerDate(s.latest) : null;
    if (!s.confirmed) io.finish([OUTCOME.not_confirmed, a1c, day]);
    const problems = read.problems(io, mrn);
    const documented = problems.some(documentsDiabetes);
    if (!documented) io.post(`${io.apiBase}Condition`, t2dmProblem(mrn));
    for (const p of problems.filter(activePrediabetes)) io.put(`${io.apiBase}Condition/${String(p.id)}`, resolvedPrediabetes(p));
    io.finish([documented ? OUTCOME.already_documented : OUTCOME.added, a1c, day]);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Planting

/** The lane this family plants on (kit.ts `inLane`). */
export const DIABETES_LANE = 1 as const;

type Band = 'high' | 'normal' | 'borderline';
/** One planted result: age (minutes before NOW, a range), value band, unit, status. */
interface PlantedResult {
  age: [number, number];
  band: Band;
  ifcc?: boolean;
  status?: 'entered-in-error' | 'cancelled';
}
type PlantedCondition = 'eie-t2dm-problem' | 't2dm-encounter-dx' | 'prediabetes-problem';
interface Scenario {
  /** What the scenario confirms on a patient whose cohort record adds nothing in the window. */
  intent: 'confirmed' | 'not-confirmed';
  trap: string;
  results: PlantedResult[];
  conditions?: PlantedCondition[];
}

const RECENT: [number, number] = [2 * D, 18 * D];
/** Dealt round-robin over the lane's patients. */
const SCENARIOS: readonly Scenario[] = [
  {
    intent: 'confirmed',
    trap: 'prediabetes still listed',
    results: [
      { age: [90 * D, 240 * D], band: 'high' },
      { age: RECENT, band: 'high' },
    ],
    conditions: ['prediabetes-problem'],
  },
  {
    intent: 'not-confirmed',
    trap: 'entered-in-error abnormal result, newest',
    results: [
      { age: [60 * D, 200 * D], band: 'normal' },
      { age: [5 * D, 18 * D], band: 'high' },
      { age: [12 * H, 3 * D], band: 'high', status: 'entered-in-error' },
    ],
  },
  {
    intent: 'confirmed',
    trap: 'latest in IFCC units',
    results: [
      { age: [60 * D, 200 * D], band: 'high' },
      { age: RECENT, band: 'high', ifcc: true },
    ],
    conditions: ['prediabetes-problem'],
  },
  {
    intent: 'confirmed',
    trap: 'entered-in-error diabetes problem',
    results: [
      { age: [200 * D, 300 * D], band: 'normal' },
      { age: [40 * D, 120 * D], band: 'high' },
      { age: RECENT, band: 'high' },
    ],
    conditions: ['eie-t2dm-problem'],
  },
  {
    intent: 'not-confirmed',
    trap: 'abnormal result 30–90 minutes outside the window',
    results: [
      { age: [365 * D + 30, 365 * D + 90], band: 'high' },
      { age: [100 * D, 250 * D], band: 'borderline' },
      { age: RECENT, band: 'high' },
    ],
    conditions: ['prediabetes-problem'],
  },
  {
    intent: 'confirmed',
    trap: 'diabetes only as an encounter diagnosis',
    results: [
      { age: [100 * D, 250 * D], band: 'high', ifcc: true },
      { age: RECENT, band: 'high' },
    ],
    conditions: ['t2dm-encounter-dx'],
  },
  {
    intent: 'confirmed',
    trap: 'cancelled result newest',
    results: [
      { age: [150 * D, 300 * D], band: 'high' },
      { age: [5 * D, 18 * D], band: 'high' },
      { age: [12 * H, 3 * D], band: 'high', status: 'cancelled' },
    ],
    conditions: ['eie-t2dm-problem', 'prediabetes-problem'],
  },
  {
    intent: 'not-confirmed',
    trap: 'latest normal in IFCC units, borderline 6.4 % before it',
    results: [
      { age: [100 * D, 250 * D], band: 'borderline' },
      { age: RECENT, band: 'normal', ifcc: true },
    ],
  },
  {
    intent: 'confirmed',
    trap: 'both abnormal results in IFCC units',
    results: [
      { age: [30 * D, 150 * D], band: 'high', ifcc: true },
      { age: RECENT, band: 'high', ifcc: true },
    ],
  },
];

/**
 * Where the round-robin starts. About 70 % of the cohort already lists type 2 diabetes (so "added" can only come from
 * the rest); the offset is the one that gives the clinical world's test patients at least 8 tasks in every branch.
 */
const SCENARIO_OFFSET = 6;

/** The scenario a lane patient gets (null: not in the lane). */
export function diabetesScenarioOf(index: number): Scenario | null {
  if (!inLane(index, DIABETES_LANE)) return null;
  return SCENARIOS[(Math.floor(index / 2) + SCENARIO_OFFSET) % SCENARIOS.length]!;
}

const round1 = (v: number) => Math.round(v * 10) / 10;
function bandValue(band: Band, ifcc: boolean, rng: Rng): number {
  if (ifcc) return band === 'high' ? rng.int(50, 84) : rng.int(34, 45);
  if (band === 'borderline') return 6.4;
  return band === 'high' ? round1(rng.float(6.6, 9.9)) : round1(rng.float(5.0, 6.3));
}

function a1cObservation(mrn: string, ageMin: number, value: number, ifcc: boolean, status = 'final'): Resource {
  const t = Math.floor((NOW_MS - ageMin * MINUTE) / MINUTE) * MINUTE;
  const coding = ifcc
    ? [{ system: LOINC, code: A1C_IFCC_LOINC, display: A1C_IFCC_DISPLAY }]
    : [
        { system: LOINC, code: 'A1C', display: 'A1C' },
        { system: LOINC, code: A1C_LOINC, display: A1C_DISPLAY },
      ];
  const r: Resource = {
    resourceType: 'Observation',
    status,
    category: LAB_CATEGORY,
    code: { coding, text: ifcc ? 'HbA1c (IFCC)' : 'A1C' },
    subject: { reference: `Patient/${mrn}` },
    effectiveDateTime: fmtMinute(t),
    issued: fmtInstant(Math.min(t + 140 * MINUTE, NOW_MS)),
  };
  if (status === 'cancelled') {
    r.dataAbsentReason = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'not-performed', display: 'Not Performed' }] };
  } else {
    r.valueQuantity = ifcc ? { value, unit: 'mmol/mol', system: UCUM, code: 'mmol/mol' } : { value, unit: '%', system: UCUM, code: '%' };
  }
  return r;
}

function condition(mrn: string, kind: PlantedCondition, rng: Rng): Resource {
  const t = fmtMinute(Math.floor((NOW_MS - rng.int(30 * D, 900 * D)) / MINUTE) * MINUTE);
  const category = (code: string, display: string) => [{ coding: [{ system: CONDITION_CATEGORY, code, display }] }];
  const t2dm = {
    coding: [
      { system: ICD10, code: T2DM_ICD10, display: T2DM_ICD10_DISPLAY },
      { system: SNOMED, code: T2DM_SNOMED, display: T2DM_SNOMED_DISPLAY },
    ],
    text: 'Type 2 diabetes mellitus',
  };
  const confirmed = { coding: [{ system: CONDITION_VERIFICATION, code: 'confirmed' }] };
  const active = { coding: [{ system: CONDITION_CLINICAL, code: 'active' }] };
  switch (kind) {
    case 'eie-t2dm-problem':
      // entered in error (e.g. on the wrong chart): no clinicalStatus (FHIR con-5)
      return {
        resourceType: 'Condition',
        verificationStatus: { coding: [{ system: CONDITION_VERIFICATION, code: 'entered-in-error' }] },
        category: category('problem-list-item', 'Problem List Item'),
        code: t2dm,
        subject: { reference: `Patient/${mrn}` },
        onsetDateTime: t,
        recordedDate: t,
      };
    case 't2dm-encounter-dx':
      return {
        resourceType: 'Condition',
        clinicalStatus: active,
        verificationStatus: confirmed,
        category: category('encounter-diagnosis', 'Encounter Diagnosis'),
        code: t2dm,
        subject: { reference: `Patient/${mrn}` },
        onsetDateTime: t,
        recordedDate: t,
      };
    case 'prediabetes-problem':
      return {
        resourceType: 'Condition',
        clinicalStatus: active,
        verificationStatus: confirmed,
        category: category('problem-list-item', 'Problem List Item'),
        code: {
          coding: [
            { system: ICD10, code: PREDIABETES_ICD10, display: 'Prediabetes' },
            { system: SNOMED, code: PREDIABETES_SNOMED, display: 'Prediabetes' },
          ],
          text: 'Prediabetes',
        },
        subject: { reference: `Patient/${mrn}` },
        onsetDateTime: t,
        recordedDate: t,
      };
  }
}

/** A lane patient's records: years of older results, the scenario's recent ones (newest past the first page), conditions. */
function plantDiabetes(p: PlantPatient, rng: Rng): Resource[] {
  const sc = diabetesScenarioOf(p.index);
  if (!sc) return [];
  const history: Resource[] = [];
  // quarterly-ish checks from 13 months back, outside the window; a few abnormal ones (older than a year: do not count)
  let age = 380 * D + rng.int(0, 40) * D + rng.int(0, 600);
  const n = rng.int(24, 30);
  for (let i = 0; i < n; i++) {
    const ifcc = rng.chance(0.1);
    history.push(a1cObservation(p.mrn, age, bandValue(rng.chance(0.12) ? 'high' : 'normal', ifcc, rng), ifcc));
    age += rng.int(60, 120) * D + rng.int(-300, 300);
  }
  const recent = sc.results.map((x) => {
    const ageMin = rng.int(x.age[0], x.age[1]);
    return { ageMin, stands: !x.status, r: a1cObservation(p.mrn, ageMin, bandValue(x.band, !!x.ifcc, rng), !!x.ifcc, x.status) };
  });
  // the newest result that stands goes past the first page; the others (and traps) anywhere
  const newest = recent.filter((x) => x.stands).reduce((a, b) => (b.ageMin < a.ageMin ? b : a));
  const others = [...history, ...recent.filter((x) => x !== newest).map((x) => x.r)];
  const out = pastFirstPage(others, newest.r, rng);
  out.push(
    ...shuffle(
      (sc.conditions ?? []).map((c) => condition(p.mrn, c, rng)),
      rng,
    ),
  );
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

/** The answer's three parts, or why there are none (`answerList`'s classes). */
function answerParts(result: TaskOutput['result']): { outcome: unknown; a1c: number; date: unknown } | { problem: string; cls: 'protocol' | 'lookup' } {
  const a = answerList(result, 3);
  if (!('items' in a)) return a;
  const [outcome, a1c, date] = a.items;
  if (typeof a1c !== 'number') return { problem: 'the second item is not a number (the A1c in %)', cls: 'lookup' };
  return { outcome, a1c, date };
}

const isCreated = (state: EndState, k: string) => state.writes.some((w) => w.method === 'POST' && `${w.type}/${w.id}` === k);

async function gradeEndState(output: TaskOutput, facts: DiabetesFacts, mrn: string, state: EndState, branch: DiabetesBranch): Promise<Checkpoint[]> {
  const checks: Checkpoint[] = [];
  const want = answerA1c(facts.latest!);
  const a = answerParts(output.result);
  checks.push(
    'a1c' in a
      ? checkpoint(
          'answer_a1c',
          'lookup',
          Math.abs(a.a1c - want) <= A1C_TOLERANCE + 1e-9 && a.date === answerDate(facts.latest!),
          [want, answerDate(facts.latest!)],
          [a.a1c, a.date],
          `latest counting result ${facts.latest!.value} ${facts.latest!.unit} at ${facts.latest!.time}`,
        )
      : checkpoint('answer_a1c', a.cls, false, want, output.result, a.problem),
  );
  const outcome = 'a1c' in a ? a.outcome : undefined;
  const said = (b: DiabetesBranch) => sameLabel(outcome, OUTCOME[b]);
  if (branch === 'not_confirmed') {
    checks.push(
      checkpoint(
        'criteria',
        'decision',
        said('not_confirmed'),
        OUTCOME.not_confirmed,
        outcome,
        `abnormal days in the window: ${facts.abnormalDays.join(', ') || 'none'}`,
      ),
    );
  } else {
    checks.push(
      checkpoint(
        'criteria',
        'decision',
        said('added') || said('already_documented'),
        [OUTCOME.added, OUTCOME.already_documented],
        outcome,
        `abnormal days in the window: ${facts.abnormalDays.join(', ')}`,
      ),
    );
    // whether a diabetes problem is already listed is a fact of the record: missing or inventing one is a lookup error
    const other: DiabetesBranch = branch === 'added' ? 'already_documented' : 'added';
    const expected = OUTCOME[branch];
    checks.push(
      checkpoint(
        'existing_problem',
        'lookup',
        typeof outcome === 'string' && !said(other),
        expected,
        outcome,
        `documenting entries: ${facts.documentedBy.join(', ') || 'none'}`,
      ),
    );
  }
  if (branch === 'already_documented' || branch === 'not_confirmed') {
    const touched = state.touched();
    checks.push(checkpoint('no_writes', 'decision', touched.length === 0, [], touched));
    return checks;
  }
  const created = await state.created('Condition');
  const prediabetesKeys = facts.prediabetesIds.map((id) => `Condition/${id}`);
  /** Every active prediabetes entry resolved (changing nothing else), and none created. */
  const reconcile = async (): Promise<Checkpoint> => {
    const open: string[] = [];
    const changed: string[] = [];
    for (const id of facts.prediabetesIds) {
      const before = await state.readBase('Condition', id);
      const after = await state.read('Condition', id);
      if (!['resolved', 'inactive'].includes(codeIn(after?.clinicalStatus, CONDITION_CLINICAL) ?? '')) open.push(`Condition/${id}`);
      const keys = changedKeys(before, after, ...RESOLVE_KEYS);
      if (keys.length > 0 || ms(after?.abatementDateTime) > NOW_MS) changed.push(`Condition/${id}: ${keys.join(', ') || 'abatementDateTime in the future'}`);
    }
    for (const r of created) if (activePrediabetes(r)) open.push(`Condition/${String(r.id)} (created)`);
    if (open.length > 0)
      return checkpoint('prediabetes_reconciled', 'decision', false, 'no active prediabetes entry beside diabetes', open, 'ICD-10-CM R73 Excludes1 E08–E13');
    return checkpoint('prediabetes_reconciled', 'payload', changed.length === 0, 'only clinicalStatus and abatement changed', changed);
  };
  const createdPrediabetes = new Set(created.filter(activePrediabetes).map((r) => `Condition/${String(r.id)}`));
  if (branch === 'prediabetes_resolved') {
    checks.push(await reconcile());
    const stray = strayWrites(state, {}, prediabetesKeys).filter((k) => !createdPrediabetes.has(k));
    checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
    return checks;
  }
  const mine = created.filter((r) => isDiabetesCode(r.code));
  checks.push(
    checkpoint(
      'problem_added',
      'decision',
      mine.length > 0,
      'a Condition coded diabetes mellitus',
      created.map((r) => codings(r.code).map((c) => c.code)),
    ),
  );
  // the judged entry: the diabetes one, else what was created (its missing code is problem_added's failure)
  const c = mine[0] ?? created[0];
  const category = (Array.isArray(c?.category) ? c.category : []).flatMap((x) => codings(x).map((y) => y.code));
  const notFuture = (v: unknown) => v === undefined || (ms(v) <= NOW_MS && Number.isFinite(ms(v)));
  checks.push(
    checkpoint(
      'problem_payload',
      'payload',
      !!c &&
        subjectIs(c, mrn) &&
        (!isDiabetesCode(c.code) || hasCode(c.code, ICD10, T2DM_ICD10) || hasCode(c.code, SNOMED, T2DM_SNOMED)) &&
        onProblemList(c) &&
        codeIn(c.clinicalStatus, CONDITION_CLINICAL) === 'active' &&
        codeIn(c.verificationStatus, CONDITION_VERIFICATION) === 'confirmed' &&
        notFuture(c.onsetDateTime) &&
        notFuture(c.recordedDate),
      {
        code: `${T2DM_ICD10} or SNOMED ${T2DM_SNOMED}`,
        category: 'problem-list-item',
        clinicalStatus: 'active',
        verificationStatus: 'confirmed',
        subject: `Patient/${mrn}`,
      },
      c && {
        code: codings(c.code).map((x) => `${String(x.system)}|${String(x.code)}`),
        category,
        clinicalStatus: codeIn(c.clinicalStatus, CONDITION_CLINICAL),
        verificationStatus: codeIn(c.verificationStatus, CONDITION_VERIFICATION),
        subject: c.subject,
        onsetDateTime: c.onsetDateTime,
        recordedDate: c.recordedDate,
      },
    ),
  );
  checks.push(await reconcile());
  const judged = c ? `Condition/${String(c.id)}` : undefined;
  const stray = strayWrites(state, {}, prediabetesKeys).filter((k) => !createdPrediabetes.has(k) && !(k === judged && isCreated(state, k)));
  checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
  return checks;
}

const PARAPHRASES = [
  'Problem-list reconciliation for {MRN}: do the HbA1c results of the last 12 months meet the ADA criteria for diabetes (two results of 6.5 % or more on different days)? If so, add type 2 diabetes unless an active diabetes problem is listed, and resolve any active prediabetes problem. Answer ["added" | "already-documented" | "not-confirmed", latest A1c %, its date].\n',
  'Close the documentation gap for {MRN}: add type 2 diabetes mellitus to the problem list only if the last year of A1c results confirms diabetes by ADA criteria and no active diabetes problem exists; once diabetes is confirmed, an active prediabetes problem is resolved. Report [outcome, most recent A1c in %, its date as YYYY-MM-DD].\n',
  'Check whether {MRN} meets the ADA laboratory criteria for diabetes on HbA1c (two values ≥ 6.5 % on separate days within 12 months) and make sure the problem list shows it, adding type 2 diabetes if it is missing and resolving a prediabetes entry it supersedes. Finish with ["added" | "already-documented" | "not-confirmed", the latest A1c %, the date of that result].\n',
];

export const diabetes: SuiteFamily<'diabetes'> = {
  id: 'diabetes',
  suite: 'ehrgym-clinical',
  dialect: 'ehrgym',
  name: 'Type 2 diabetes on the problem list when HbA1c confirms it',
  kind: 'action',
  rule: {
    name: 'Diagnosis of diabetes: HbA1c ≥ 6.5 % (48 mmol/mol); without unequivocal hyperglycemia two abnormal results are needed (confirmed here by two results on different days within 12 months); an undocumented type is coded E11',
    source:
      'American Diabetes Association Professional Practice Committee. 2. Diagnosis and Classification of Diabetes: Standards of Care in Diabetes—2024. Diabetes Care 2024;47(Suppl 1):S20–S42, doi:10.2337/dc24-S002 (recommendation 2.1a, diagnostic criteria); ICD-10-CM Official Guidelines for Coding and Reporting FY2024, section I.C.4.a.2',
  },
  instructionTemplates: [DIABETES_TEMPLATE],
  context: DIABETES_CONTEXT,
  branches: BRANCHES,
  checkpoints: DIABETES_CHECKPOINTS,
  variants: VARIANTS,
  turns: { min: 2, max: 4 },
  recordKey: 'eval_MRN',
  paraphrases: PARAPHRASES,
  placeholders: mrnPlaceholders,
  planted: 'none',
  planting: { name: 'diabetes', version: 'diabetes-v1', plant: plantDiabetes },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: plainFactoryHints(0),
  audit: {
    // the answer when nothing confirms diabetes, without the A1c it never passes
    nothingFound: [OUTCOME.not_confirmed],
    // blind: add type 2 diabetes to every problem list
    alwaysAct: alwaysPost([DIABETES_TEMPLATE, ...PARAPHRASES], (mrn) => [{ resource: 'Condition', payload: t2dmProblem(mrn) }]),
  },

  instruction({ mrn }) {
    if (!mrn) throw new Error('diabetes.instruction: mrn is required');
    return DIABETES_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(world, opts) {
    return generateOver('diabetes', opts, async (mrn) => {
      const f = await readDiabetesFacts(world, mrn);
      if (f.branch === null) return null;
      const facts: Record<string, unknown> = {
        latest: f.latest,
        a1c: answerA1c(f.latest!),
        abnormalDays: f.abnormalDays,
        documentedBy: f.documentedBy,
        results: f.results,
      };
      return { branch: f.branch, patient: mrn, facts, build: (id) => makeTask(id, diabetes.instruction({ mrn }), DIABETES_CONTEXT, mrn) };
    });
  },

  solve(task, history, opts) {
    const variant = opts?.variant ?? VARIANTS[0];
    return runScript(task, history, opts, VARIANTS, diabetesScript(EXPERT_READERS[variant] ?? scanReader));
  },

  grade(task, output, ctx): Promise<GradeResult> {
    return gradeSuite(task, output, ctx, {
      templates: [DIABETES_TEMPLATE, ...PARAPHRASES],
      read: readDiabetesFacts,
      branch: (f) => (f.branch !== null ? { branch: f.branch } : { why: f.why ?? 'no task' }),
      reference: (f) => [OUTCOME[f.branch!], answerA1c(f.latest!), answerDate(f.latest!)],
      check: (output, facts, mrn, state, branch) => gradeEndState(output, facts, mrn, state, branch as DiabetesBranch),
    });
  },
};
