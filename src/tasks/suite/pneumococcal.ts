/**
 * pneumococcal — adult pneumococcal vaccination per ACIP 2023 (clinical suite, preventive care; docs/tasks.md).
 *
 * Rule: Kobayashi M, Pilishvili T, Farrar JL, et al. Pneumococcal Vaccine for Adults Aged ≥19 Years: Recommendations
 * of the Advisory Committee on Immunization Practices, United States, 2023. MMWR Recomm Rep 2023;72(No. RR-3):1–39.
 * A pneumococcal conjugate vaccine is recommended for every adult aged ≥ 65 and for adults 19–64 with an underlying
 * condition (among them diabetes, chronic lung disease — COPD, emphysema, asthma — and chronic heart disease
 * including heart failure). PCV-naïve adults (or history unknown): PCV20 alone (or PCV15 then PPSV23); adults who
 * received PPSV23 only: PCV20 (or PCV15) ≥ 1 year after the last PPSV23; adults who received PCV13 only: PCV20 (or
 * PPSV23) ≥ 1 year after PCV13; after PCV20 the series is complete. The family fixes PCV20 (the single-dose option),
 * counts only `completed` Immunizations, and reads "1 year" as the same calendar date a year later (a dose on
 * 2022-11-14 makes PCV20 due on 2023-11-14: not yet today).
 *
 * Not planted, and served as no task when the record shows them: PCV13 and PPSV23 both received (ACIP: shared clinical
 * decision-making), PCV15 or an unspecified pneumococcal vaccine (CVX 109), PCV13 less than a year ago (the interval
 * after PCV13 is shorter for immunocompromised adults), adults 19–64 without a counting risk condition (chronic kidney
 * disease stage 3 alone is not counted: whether it is the "chronic renal failure" of ACIP's list is a judgement).
 *
 * The order is a MedicationRequest whose medicationCodeableConcept is the CVX code: FHIR R4's Immunization records an
 * administration (status completed / not-done / entered-in-error, no "ordered" state), and R4 has no
 * ImmunizationRequest — vaccine orders are MedicationRequests (as the HL7 CPG and QI-Core guides model them).
 *
 * The world plants, on lane-0 adults (`inLane(index, 0)`), an immunization history of 25+ records (yearly influenza,
 * COVID-19, Td/Tdap, hepatitis B, zoster) from the state registry, unsorted in server order, with the decisive
 * pneumococcal record past the first page of 20, and traps: `not-done` and `entered-in-error` PCV20 records, PPSV23
 * 364 and 365 days ago, PCV13 beside PCV20 (which one completes the series), two PPSV23 doses (the later one counts).
 *
 * Codes (public CVX tables): 216 PCV20, 215 PCV15, 133 PCV13, 33 PPSV23, 109 pneumococcal unspecified, 140/150/197
 * influenza, 207/208 COVID-19 mRNA, 115 Tdap, 113 Td, 43 hepatitis B adult, 187 zoster recombinant; SNOMED CT 78421000
 * intramuscular route; v3 ActReason PATOBJ (patient objection). ICD-10-CM risk prefixes E10/E11/E13 (diabetes),
 * J43/J44/J45 (emphysema, COPD, asthma), I50 (heart failure).
 */
import type { Resource } from '../../fhir/types.js';
import { DAY, fmtMinute, MINUTE, NOW_MS } from '../../worlds/clinical.js';
import { ICD10, SNOMED, UCUM } from '../../worlds/catalog.js';
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
  checkpoint,
  codings,
  gradeSuite,
  hasCode,
  inLane,
  noOtherWrites,
  pastFirstPage,
  type Res,
  resources,
  sameLabel,
  shuffle,
  strayWrites,
  subjectIs,
} from './kit.js';

export const CVX = 'http://hl7.org/fhir/sid/cvx';
export const PCV20 = '216';
export const PCV15 = '215';
export const PCV13 = '133';
export const PPSV23 = '33';
export const PNEUMO_UNSPECIFIED = '109';
const PNEUMO_CODES = [PCV20, PCV15, PCV13, PPSV23, PNEUMO_UNSPECIFIED];
export const PCV20_DISPLAY = 'Pneumococcal conjugate vaccine 20-valent (PCV20), polysaccharide CRM197 conjugate, adjuvant, preservative free';
export const IM_ROUTE = '78421000';
/** The planted records' identifier system (the state immunization registry the history comes from). */
export const REGISTRY_SYSTEM = 'urn:ehrgym:state-immunization-registry';
export const NOW_ISO = '2023-11-13T10:15:00+00:00';
export const TODAY = '2023-11-13';
/** The family's planting lane (kit.ts `inLane`). */
export const LANE = 0;

export const PNEUMOCOCCAL_TEMPLATE =
  'Patient {MRN} is here for a preventive care visit. Using their age, conditions and immunization history, decide whether a dose of PCV20 is due today under the ACIP 2023 adult pneumococcal recommendations, order it if it is due, and answer as described.\n';
export const PNEUMOCOCCAL_CONTEXT =
  "It's 2023-11-13T10:15:00+00:00 now. ACIP 2023 (Kobayashi et al., MMWR Recomm Rep 2023;72(RR-3)) recommends a pneumococcal conjugate vaccine for every adult aged 65 or older and for adults aged 19 to 64 with a risk condition; " +
  'here a risk condition is an active problem-list or encounter diagnosis of diabetes (ICD-10-CM E10, E11, E13; SNOMED CT 44054006), chronic lung disease (J43, J44, J45; SNOMED CT 13645005) or heart failure (I50; SNOMED CT 84114007). ' +
  'Immunizations count only with status completed. CVX codes (http://hl7.org/fhir/sid/cvx): 216 PCV20, 215 PCV15, 133 PCV13, 33 PPSV23. ' +
  'A completed PCV20 on record: the series is complete, order nothing. No completed PCV13, PCV15, PCV20 or PPSV23: PCV20 is due now. ' +
  'Only PPSV23, or only PCV13: PCV20 is due one year after the last of those doses (on the same calendar date a year later); before that date it is not yet due, order nothing. ' +
  'Order PCV20 as a MedicationRequest (status active, intent order) whose medicationCodeableConcept has the CVX code 216, with one dose of 0.5 mL (dosageInstruction[0].doseAndRate[0].doseQuantity) by the intramuscular route (SNOMED CT 78421000). ' +
  'Answer ["ordered", date of the last PPSV23 or PCV13 dose as YYYY-MM-DD, or "none" if there is none], ["not-yet", date PCV20 becomes due as YYYY-MM-DD], ["complete", date the PCV20 was given as YYYY-MM-DD], ' +
  'or ["not-indicated", "none"] if the patient is under 65 without a risk condition.';

export type PneumococcalBranch = 'due_naive' | 'due_after_ppsv23' | 'due_after_pcv13' | 'not_yet' | 'complete';
/**
 * Branch order matters for balanced splits (the first branches take the remainder): the two without an order come
 * first, so the order is at most 60 % of a 24- or 28-task split.
 */
const BRANCHES: readonly PneumococcalBranch[] = ['not_yet', 'complete', 'due_naive', 'due_after_ppsv23', 'due_after_pcv13'];

const ORDER_CHECKS = ['finished', 'answer_evidence', 'answer_decision', 'pcv20_ordered', 'pcv20_payload', 'no_other_writes'] as const;
const NO_ORDER_CHECKS = ['finished', 'answer_evidence', 'answer_decision', 'no_writes'] as const;
/** Checkpoints per branch, in the order an expert works (look up, decide, write, nothing else). */
export const PNEUMOCOCCAL_CHECKPOINTS: Readonly<Record<PneumococcalBranch, readonly string[]>> = {
  due_naive: ORDER_CHECKS,
  due_after_ppsv23: ORDER_CHECKS,
  due_after_pcv13: ORDER_CHECKS,
  not_yet: NO_ORDER_CHECKS,
  complete: NO_ORDER_CHECKS,
};

/** The answer's label per branch. */
export const LABEL: Readonly<Record<PneumococcalBranch, string>> = {
  due_naive: 'ordered',
  due_after_ppsv23: 'ordered',
  due_after_pcv13: 'ordered',
  not_yet: 'not-yet',
  complete: 'complete',
};

// ---------------------------------------------------------------------------------------------------------------
// Reading the record

/** Age in whole years on the suite's date (2023-11-13), as the cohort computes it. */
export const ageOn = ageOn20231113;

/** The UTC calendar date of a dateTime (`YYYY-MM-DD`), or null. */
export function utcDate(v: unknown): string | null {
  const t = typeof v === 'string' ? Date.parse(v) : Number.NaN;
  return Number.isFinite(t) ? new Date(t).toISOString().slice(0, 10) : null;
}

/** The same calendar date a year later (29 February rolls to 1 March). */
export function plusOneYear(date: string): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y + 1, m - 1, d)).toISOString().slice(0, 10);
}

const RISK_PREFIXES = ['E10', 'E11', 'E13', 'J43', 'J44', 'J45', 'I50'];
/** SNOMED CT concepts of the same conditions (the cohort's catalogue): type 2 diabetes, COPD, heart failure. */
const RISK_SNOMED = ['44054006', '13645005', '84114007'];
const COUNTING_CLINICAL = ['active', 'recurrence', 'relapse'];

/** The codes of the conditions that count as a pneumococcal risk condition (active, not refuted), sorted. */
export function riskConditions(conditions: readonly Res[]): string[] {
  const out = new Set<string>();
  for (const c of conditions) {
    const clinical = codings(c.clinicalStatus).map((x) => String(x.code));
    const verification = codings(c.verificationStatus).map((x) => String(x.code));
    if (!clinical.some((x) => COUNTING_CLINICAL.includes(x))) continue;
    if (verification.some((x) => x === 'entered-in-error' || x === 'refuted')) continue;
    for (const k of codings(c.code)) {
      if (typeof k.code !== 'string') continue;
      const code = k.code;
      if (k.system === ICD10 && RISK_PREFIXES.some((p) => code === p || code.startsWith(`${p}.`))) out.add(code);
      if (k.system === SNOMED && RISK_SNOMED.includes(code)) out.add(code);
    }
  }
  return [...out].sort();
}

const cvxOf = (r: Res): string | undefined => {
  const c = codings(r.vaccineCode).find((x) => x.system === CVX)?.code;
  return typeof c === 'string' ? c : undefined;
};

export interface PneumoDecision {
  branch: PneumococcalBranch;
  /** The answer's evidence: the decisive dose's date, the due date (not yet), or "none". */
  evidence: string;
  /** The decisive record's id (none when naïve). */
  decisiveId: string | null;
}

/**
 * The family's rule on a patient's Immunizations (any order): completed pneumococcal doses only; PCV20 → complete;
 * PPSV23 only or PCV13 only → due one calendar year after the last dose; none → due. Null with the reason when the
 * history is outside the family's rule.
 */
export function pneumoDecision(immunizations: readonly Res[]): PneumoDecision | { why: string } {
  const doses = immunizations
    .filter((r) => r.status === 'completed' && PNEUMO_CODES.includes(cvxOf(r) ?? '') && utcDate(r.occurrenceDateTime) !== null)
    .map((r) => ({ cvx: cvxOf(r)!, date: utcDate(r.occurrenceDateTime)!, id: String(r.id) }));
  const latest = (cvx: string) =>
    doses.filter((d) => d.cvx === cvx).reduce<(typeof doses)[number] | null>((best, d) => (!best || d.date > best.date ? d : best), null);
  const pcv20 = latest(PCV20);
  if (pcv20) return { branch: 'complete', evidence: pcv20.date, decisiveId: pcv20.id };
  if (doses.some((d) => d.cvx === PCV15 || d.cvx === PNEUMO_UNSPECIFIED)) return { why: 'PCV15 or an unspecified pneumococcal vaccine on record' };
  const pcv13 = latest(PCV13);
  const ppsv23 = latest(PPSV23);
  if (pcv13 && ppsv23) return { why: 'PCV13 and PPSV23 both on record (shared clinical decision-making)' };
  const last = pcv13 ?? ppsv23;
  if (!last) return { branch: 'due_naive', evidence: 'none', decisiveId: null };
  const due = plusOneYear(last.date);
  if (due <= TODAY) return { branch: pcv13 ? 'due_after_pcv13' : 'due_after_ppsv23', evidence: last.date, decisiveId: last.id };
  if (pcv13) return { why: 'PCV13 less than a year ago' };
  return { branch: 'not_yet', evidence: due, decisiveId: last.id };
}

const patientQuery = (mrn: string) => `Patient?identifier=${mrn}`;
const conditionQuery = (mrn: string) => `Condition?patient=${mrn}&_count=5000`;
const immunizationQuery = (mrn: string) => `Immunization?patient=${mrn}&_count=5000`;
const codedQuery = (mrn: string) =>
  `Immunization?patient=${mrn}&vaccine-code=${PNEUMO_CODES.map((c) => `${CVX}|${c}`).join(',')}&status=completed&_sort=-date&_count=100`;

/** What a task's reference is, read from the world (generator and grader share it). */
export interface PneumococcalFacts {
  age: number | null;
  risk: string[];
  /** Immunizations from the family's registry (0: the patient carries no planted history and serves no task). */
  registry: number;
  immunizations: number;
  decision: PneumoDecision | null;
  why: string | null;
}

export async function readPneumococcalFacts(world: WorldAccess, mrn: string): Promise<PneumococcalFacts> {
  const patient = resources(await worldJson(world, patientQuery(mrn)))[0];
  const birth = typeof patient?.birthDate === 'string' ? patient.birthDate : null;
  const age = birth ? ageOn(birth) : null;
  const imms = resources(await worldJson(world, immunizationQuery(mrn)));
  const registry = imms.filter((r) => (r.identifier as Array<{ system?: unknown }> | undefined)?.some?.((i) => i?.system === REGISTRY_SYSTEM)).length;
  const base = { age, registry, immunizations: imms.length };
  if (age === null) return { ...base, risk: [], decision: null, why: 'no birth date' };
  const risk = age < 65 ? riskConditions(resources(await worldJson(world, conditionQuery(mrn)))) : [];
  if (registry === 0) return { ...base, risk, decision: null, why: 'no planted immunization history' };
  if (age < 19 || (age < 65 && risk.length === 0)) return { ...base, risk, decision: null, why: `aged ${age} without a risk condition` };
  const d = pneumoDecision(imms);
  return 'why' in d ? { ...base, risk, decision: null, why: d.why } : { ...base, risk, decision: d, why: null };
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads

export function pcv20Order(mrn: string): Record<string, unknown> {
  return {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: { coding: [{ system: CVX, code: PCV20, display: PCV20_DISPLAY }], text: 'PCV20' },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: NOW_ISO,
    dosageInstruction: [
      {
        text: '0.5 mL intramuscular once',
        route: { coding: [{ system: SNOMED, code: IM_ROUTE, display: 'Intramuscular route' }], text: 'Intramuscular' },
        doseAndRate: [{ doseQuantity: { value: 0.5, unit: 'mL', system: UCUM, code: 'mL' } }],
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Expert policy

/** How a policy reads the patient's immunizations (the expert's; tests plug in trap readers). */
export type ImmunizationReader = (io: ScriptIO, mrn: string) => Res[];

/** Variant `scan`: the whole history (`_count=5000`), filtered by the rule. */
export const scanImmunizations: ImmunizationReader = (io, mrn) => resources(io.json(`${io.apiBase}${immunizationQuery(mrn)}`));
/** Variant `coded`: completed pneumococcal doses only, latest first. */
export const codedImmunizations: ImmunizationReader = (io, mrn) => resources(io.json(`${io.apiBase}${codedQuery(mrn)}`));

const VARIANTS = ['scan', 'coded'] as const;

/** The expert's script with a given immunization reader: eligibility, the rule, the order, the answer. */
export function pneumococcalScript(read: ImmunizationReader): (io: ScriptIO, task: TaskCase) => void {
  return (io, task) => {
    const mrn = taskMrn(task, [PNEUMOCOCCAL_TEMPLATE, ...PARAPHRASES]);
    const patient = resources(io.json(`${io.apiBase}${patientQuery(mrn)}`))[0];
    const age = ageOn(String(patient?.birthDate));
    if (age < 65) {
      const risk = riskConditions(resources(io.json(`${io.apiBase}${conditionQuery(mrn)}`)));
      if (age < 19 || risk.length === 0) io.finish(['not-indicated', 'none']);
    }
    const d = pneumoDecision(read(io, mrn));
    if (!('branch' in d)) io.finish(['unknown', 'none']);
    const decision = d as PneumoDecision;
    if (LABEL[decision.branch] === 'ordered') io.post(`${io.apiBase}MedicationRequest`, pcv20Order(mrn));
    io.finish([LABEL[decision.branch], decision.evidence]);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Planting

interface Dose {
  cvx: string;
  /** Days before today: a range, or a fixed number (e.g. 364: due tomorrow). */
  days: number | [number, number];
  /** An edge (days before today) used instead of `days` for about a third of the patients. */
  edge?: number;
  status?: 'completed' | 'not-done' | 'entered-in-error';
}
/** A scenario: its pneumococcal records; `decisive` (an index into `doses`) goes past the first page. */
interface Scenario {
  key: string;
  doses: Dose[];
  decisive?: number;
}
/** Dealt in turn over the lane's adults of each split (three per branch). */
const SCENARIOS: readonly Scenario[] = [
  {
    key: 'ppsv23-then-pcv20',
    doses: [
      { cvx: PPSV23, days: [1100, 1700] },
      { cvx: PCV20, days: [380, 900] },
    ],
    decisive: 1,
  },
  {
    key: 'naive-traps',
    doses: [
      { cvx: PCV20, days: [10, 300], status: 'entered-in-error' },
      { cvx: PCV20, days: [320, 700], status: 'not-done' },
    ],
    decisive: 0,
  },
  {
    key: 'ppsv23-365d',
    doses: [
      { cvx: PPSV23, days: [366, 400], edge: 365 },
      { cvx: PCV20, days: [20, 200], status: 'not-done' },
    ],
    decisive: 0,
  },
  {
    key: 'pcv13-pcv20-declined',
    doses: [
      { cvx: PCV13, days: [400, 1500] },
      { cvx: PCV20, days: [20, 300], status: 'not-done' },
    ],
    decisive: 0,
  },
  { key: 'ppsv23-recent', doses: [{ cvx: PPSV23, days: [60, 330] }], decisive: 0 },
  {
    key: 'ppsv23-pcv20-voided',
    doses: [
      { cvx: PPSV23, days: [700, 1800] },
      { cvx: PCV20, days: [15, 250], status: 'entered-in-error' },
    ],
    decisive: 0,
  },
  {
    key: 'pcv13-pcv20-voided',
    doses: [
      { cvx: PCV13, days: [800, 2500] },
      { cvx: PCV20, days: [10, 200], status: 'entered-in-error' },
    ],
    decisive: 0,
  },
  {
    key: 'pcv20-after-declining',
    doses: [
      { cvx: PCV20, days: [700, 900], status: 'not-done' },
      { cvx: PCV20, days: [100, 600] },
    ],
    decisive: 1,
  },
  { key: 'naive-declined', doses: [{ cvx: PCV20, days: [30, 400], status: 'not-done' }], decisive: 0 },
  {
    key: 'ppsv23-pcv20-declined',
    doses: [
      { cvx: PPSV23, days: [120, 340] },
      { cvx: PCV20, days: [5, 100], status: 'not-done' },
    ],
    decisive: 0,
  },
  {
    key: 'pcv13-then-pcv20',
    doses: [
      { cvx: PCV13, days: [1000, 1700] },
      { cvx: PCV20, days: [200, 700] },
    ],
    decisive: 1,
  },
  { key: 'naive', doses: [] },
  {
    key: 'ppsv23-twice',
    doses: [
      { cvx: PPSV23, days: [1500, 1800] },
      { cvx: PPSV23, days: [500, 1200] },
    ],
    decisive: 1,
  },
  { key: 'pcv13-only', doses: [{ cvx: PCV13, days: [450, 1700] }], decisive: 0 },
  {
    key: 'ppsv23-364d',
    doses: [
      { cvx: PPSV23, days: [340, 363], edge: 364 },
      { cvx: PCV20, days: [30, 150], status: 'entered-in-error' },
    ],
    decisive: 0,
  },
];

/**
 * A lane-0 patient's turn among the lane's patients of its split (index % 5 < 2 is the test split, splits.ts), so each
 * split sees every scenario in turn.
 */
export function scenarioOf(index: number): Scenario | null {
  if (!inLane(index, LANE)) return null;
  const block = Math.floor(index / 10);
  const r = index % 10;
  const turn = r === 0 || r === 6 ? block * 2 + (r === 6 ? 1 : 0) : block * 3 + (r === 2 ? 0 : r === 4 ? 1 : 2);
  return SCENARIOS[turn % SCENARIOS.length]!;
}

const VACCINES: Readonly<Record<string, string>> = {
  '216': PCV20_DISPLAY,
  '133': 'Pneumococcal conjugate PCV 13',
  '33': 'pneumococcal polysaccharide PPV23',
  '140': 'Influenza, seasonal, injectable, preservative free',
  '150': 'Influenza, injectable, quadrivalent, preservative free',
  '197': 'influenza, high-dose, quadrivalent',
  '207': 'COVID-19, mRNA, LNP-S, PF, 100 mcg/0.5mL dose',
  '208': 'COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose',
  '115': 'Tdap',
  '113': 'Td (adult) preservative free',
  '43': 'Hepatitis B, adult',
  '187': 'zoster vaccine recombinant',
};

/** The start (00:00 UTC) of the day `days` before today. */
const dayStart = (days: number): number => Date.parse(`${TODAY}T00:00:00Z`) - days * DAY;

function immunization(p: PlantPatient, n: number, cvx: string, at: number, status: string): Resource {
  const r: Resource = {
    resourceType: 'Immunization',
    identifier: [{ system: REGISTRY_SYSTEM, value: `${p.mrn}-${String(n).padStart(3, '0')}` }],
    status,
    vaccineCode: { coding: [{ system: CVX, code: cvx, display: VACCINES[cvx] }], text: VACCINES[cvx] },
    patient: { reference: `Patient/${p.mrn}` },
    occurrenceDateTime: fmtMinute(at),
    primarySource: status !== 'completed' || at > NOW_MS - 3 * 365 * DAY,
  };
  if (status === 'not-done')
    r.statusReason = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'PATOBJ', display: 'patient objection' }] };
  if (status === 'completed' || status === 'entered-in-error') {
    r.route = { coding: [{ system: SNOMED, code: IM_ROUTE, display: 'Intramuscular route' }] };
    r.doseQuantity = { value: cvx === '208' ? 0.3 : cvx === '197' ? 0.7 : 0.5, unit: 'mL', system: UCUM, code: 'mL' };
  }
  return r;
}

/** A clinic-hours instant on the day `days` before today. */
const clinicTime = (days: number, rng: Rng): number => dayStart(days) + (8 * 60 + rng.int(0, 9 * 60)) * MINUTE;

/** The background: yearly influenza for 20–24 seasons, COVID-19, Td and Tdap, maybe hepatitis B and zoster. */
function background(p: PlantPatient, rng: Rng): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  const birthYear = Number(p.birthDate.slice(0, 4));
  const seasons = rng.int(20, 24);
  for (let k = 0; k < seasons; k++) {
    const year = 2023 - k;
    const start = Date.UTC(year, 8, 15);
    const end = year === 2023 ? Date.UTC(2023, 10, 10) : Date.UTC(year, 11, 15);
    const at = start + rng.int(0, Math.floor((end - start) / DAY)) * DAY + (8 * 60 + rng.int(0, 9 * 60)) * MINUTE;
    const cvx = year < 2013 ? '140' : year >= 2020 && year - birthYear >= 65 ? '197' : '150';
    out.push([cvx, at]);
  }
  const covid = rng.chance(0.5) ? '208' : '207';
  const first = Date.UTC(2021, 1, 1) + rng.int(0, 75) * DAY + (8 * 60 + rng.int(0, 9 * 60)) * MINUTE;
  out.push([covid, first], [covid, first + (covid === '208' ? 21 : 28) * DAY], [covid, Date.UTC(2021, 9, 1) + rng.int(0, 80) * DAY + 11 * 60 * MINUTE]);
  out.push(['115', clinicTime(rng.int(900, 3300), rng)], ['113', clinicTime(rng.int(3900, 6200), rng)]);
  if (rng.chance(0.4)) {
    const d = rng.int(2000, 5000);
    out.push(['43', clinicTime(d, rng)], ['43', clinicTime(d - 30, rng)], ['43', clinicTime(d - 180, rng)]);
  }
  if (2023 - birthYear >= 52) {
    const d = rng.int(500, 1400);
    out.push(['187', clinicTime(d, rng)], ['187', clinicTime(d - rng.int(60, 180), rng)]);
  }
  return out;
}

/** A lane-0 adult's immunization history: background and scenario records, unsorted, the decisive one past page 1. */
function plantPneumococcal(p: PlantPatient, rng: Rng): Resource[] {
  const sc = scenarioOf(p.index);
  if (!sc || ageOn(p.birthDate) < 19) return [];
  let n = 0;
  const records = background(p, rng).map(([cvx, at]) => immunization(p, ++n, cvx, at, 'completed'));
  const planted = sc.doses.map((d) => {
    const days = d.edge !== undefined && rng.chance(0.35) ? d.edge : typeof d.days === 'number' ? d.days : rng.int(d.days[0], d.days[1]);
    return immunization(p, ++n, d.cvx, clinicTime(days, rng), d.status ?? 'completed');
  });
  const decisive = sc.decisive === undefined ? null : planted[sc.decisive]!;
  const rest = [...records, ...planted.filter((r) => r !== decisive)];
  return decisive ? pastFirstPage(rest, decisive, rng) : shuffle(rest, rng);
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

/** The answer's two items, or why it has none (`answerList`'s classes). */
function answerPair(result: TaskOutput['result']): { label: unknown; evidence: unknown } | { problem: string; cls: 'protocol' | 'lookup' } {
  const a = answerList(result, 2);
  return 'items' in a ? { label: a.items[0], evidence: a.items[1] } : a;
}

/** The evidence as the suite compares it: "none" case-insensitively, a date by its `YYYY-MM-DD` (a dateTime's date part). */
export function sameEvidence(got: unknown, want: string): boolean {
  if (typeof got !== 'string') return false;
  const g = got.trim();
  if (want === 'none') return g.toLowerCase() === 'none';
  return /^\d{4}-\d{2}-\d{2}(T.*)?$/.test(g) && g.slice(0, 10) === want;
}

const isPcv20 = (r: Resource): boolean => hasCode(r.medicationCodeableConcept, CVX, PCV20);

/** Intramuscular: SNOMED CT 78421000, or the text "intramuscular" / "IM". */
export function isIntramuscular(route: unknown): boolean {
  if (hasCode(route, SNOMED, IM_ROUTE)) return true;
  const text = typeof route === 'string' ? route : (route as { text?: unknown } | undefined)?.text;
  return typeof text === 'string' && /^(intramuscular( route)?|im)$/i.test(text.trim());
}

async function gradeEndState(output: TaskOutput, facts: PneumococcalFacts, mrn: string, state: EndState): Promise<Checkpoint[]> {
  const d = facts.decision!;
  const checks: Checkpoint[] = [];
  const want = [LABEL[d.branch], d.evidence];
  const a = answerPair(output.result);
  if ('problem' in a) {
    checks.push(checkpoint('answer_evidence', a.cls, false, want, output.result, a.problem));
    checks.push(checkpoint('answer_decision', 'decision', false, want[0], output.result, a.problem));
  } else {
    checks.push(checkpoint('answer_evidence', 'lookup', sameEvidence(a.evidence, d.evidence), d.evidence, a.evidence));
    checks.push(checkpoint('answer_decision', 'decision', sameLabel(a.label, LABEL[d.branch]), LABEL[d.branch], a.label));
  }
  if (LABEL[d.branch] !== 'ordered') {
    const touched = state.touched();
    checks.push(checkpoint('no_writes', 'decision', touched.length === 0, [], touched));
    return checks;
  }
  const created = await state.created('MedicationRequest');
  checks.push(
    checkpoint(
      'pcv20_ordered',
      'decision',
      created.some(isPcv20),
      `${CVX}|${PCV20}`,
      created.map((r) => codings(r.medicationCodeableConcept).map((c) => `${String(c.system)}|${String(c.code)}`)),
    ),
  );
  const mr = created.find(isPcv20) ?? created[0];
  const dosage = (mr?.dosageInstruction as Array<Record<string, unknown>> | undefined)?.[0];
  const dose = (dosage?.doseAndRate as Array<{ doseQuantity?: { value?: unknown; unit?: unknown; code?: unknown } }> | undefined)?.[0]?.doseQuantity;
  const doseOk = dose?.value === 0.5 && (dose.unit === 'mL' || dose.code === 'mL');
  checks.push(
    checkpoint(
      'pcv20_payload',
      'payload',
      !!mr && mr.status === 'active' && mr.intent === 'order' && subjectIs(mr, mrn) && doseOk && isIntramuscular(dosage?.route),
      { status: 'active', intent: 'order', subject: `Patient/${mrn}`, dose: '0.5 mL', route: 'intramuscular' },
      mr && {
        status: mr.status,
        intent: mr.intent,
        subject: mr.subject,
        dose: dose && `${String(dose.value)} ${String(dose.unit ?? dose.code)}`,
        route: dosage?.route,
      },
    ),
  );
  checks.push(noOtherWrites(strayWrites(state, { MedicationRequest: 1 })));
  return checks;
}

const PARAPHRASES = [
  'Pneumococcal care-gap check for {MRN}: from their age, problem list and vaccine history, decide under ACIP 2023 whether PCV20 is due today, order it if so, and reply in the format described.\n',
  "Does {MRN} need PCV20 today? Review the patient's age, risk conditions and immunizations against the ACIP 2023 adult pneumococcal schedule, place the order if it is due, and report as described.\n",
  'Please review the pneumococcal vaccination status of patient {MRN} per ACIP 2023; if a PCV20 dose is due now, order it, then give the answer in the stated format.\n',
];

export const pneumococcal: SuiteFamily<'pneumococcal'> = {
  id: 'pneumococcal',
  suite: 'ehrgym-clinical',
  dialect: 'ehrgym',
  name: 'Adult pneumococcal vaccination (PCV20) per ACIP 2023',
  kind: 'action',
  rule: {
    name: 'Adults ≥ 65, or 19–64 with a risk condition: PCV-naïve → PCV20 now; PPSV23 only or PCV13 only → PCV20 ≥ 1 year after the last dose; PCV20 given → series complete',
    source:
      'Kobayashi M, Pilishvili T, Farrar JL, et al. Pneumococcal Vaccine for Adults Aged ≥19 Years: Recommendations of the Advisory Committee on Immunization Practices, United States, 2023. MMWR Recomm Rep 2023;72(No. RR-3):1–39',
  },
  instructionTemplates: [PNEUMOCOCCAL_TEMPLATE],
  context: PNEUMOCOCCAL_CONTEXT,
  branches: BRANCHES,
  checkpoints: PNEUMOCOCCAL_CHECKPOINTS,
  variants: VARIANTS,
  turns: { min: 3, max: 5 },
  recordKey: 'eval_MRN',
  paraphrases: PARAPHRASES,
  placeholders: mrnPlaceholders,
  planted: 'none',
  planting: { name: 'pneumococcal', version: 'pneumococcal-v1', plant: plantPneumococcal },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: { ...plainFactoryHints(0), primaryVariant: 'coded' },
  audit: {
    // nothing pneumococcal on record: the naïve answer (its order is a write this answer does not make)
    nothingFound: ['ordered', 'none'],
    // blind: the PCV20 order whatever the history
    alwaysAct: alwaysPost([PNEUMOCOCCAL_TEMPLATE, ...PARAPHRASES], (mrn) => [{ resource: 'MedicationRequest', payload: pcv20Order(mrn) }]),
  },

  instruction({ mrn }) {
    if (!mrn) throw new Error('pneumococcal.instruction: mrn is required');
    return PNEUMOCOCCAL_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(world, opts) {
    return generateOver('pneumococcal', opts, async (mrn) => {
      const f = await readPneumococcalFacts(world, mrn);
      if (!f.decision) return null;
      const facts: Record<string, unknown> = {
        age: f.age,
        risk: f.risk,
        evidence: f.decision.evidence,
        decisiveId: f.decision.decisiveId,
        immunizations: f.immunizations,
      };
      return {
        branch: f.decision.branch,
        patient: mrn,
        facts,
        build: (id) => makeTask(id, pneumococcal.instruction({ mrn }), PNEUMOCOCCAL_CONTEXT, mrn),
      };
    });
  },

  solve(task, history, opts) {
    const variant = opts?.variant ?? VARIANTS[0];
    return runScript(task, history, opts, VARIANTS, pneumococcalScript(variant === 'coded' ? codedImmunizations : scanImmunizations));
  },

  grade(task, output, ctx): Promise<GradeResult> {
    return gradeSuite(task, output, ctx, {
      templates: [PNEUMOCOCCAL_TEMPLATE, ...PARAPHRASES],
      read: readPneumococcalFacts,
      branch: (f) => (f.decision ? { branch: f.decision.branch } : { why: f.why ?? 'outside the rule' }),
      reference: (f) => [LABEL[f.decision!.branch], f.decision!.evidence],
      check: (output, facts, mrn, state) => gradeEndState(output, facts, mrn, state),
    });
  },
};
