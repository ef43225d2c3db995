/**
 * pharyngitis — allergy-aware antibiotic for confirmed group A streptococcal pharyngitis (clinical suite, medication
 * safety; docs/tasks.md).
 *
 * Rule: IDSA 2012 (Shulman ST et al., Clin Infect Dis 2012;55(10):e86–e102, recommendations 9–10 and Table 2): a
 * positive rapid antigen detection test (RADT) is treated; an adult's negative RADT needs no antibiotic; penicillin or
 * amoxicillin is first line; in penicillin allergy a first-generation cephalosporin (not in immediate-type
 * hypersensitivity), clindamycin or a macrolide. The family fixes one choice within those options (stated in the
 * instruction and context): no counting penicillin allergy → amoxicillin 500 mg twice daily × 10 days; non-immediate
 * penicillin allergy → cephalexin 500 mg twice daily × 10 days; immediate-type → clindamycin 300 mg three times daily ×
 * 10 days (azithromycin 500 mg daily × 5 days accepted).
 *
 * The world plants, on most cohort patients, a few years of RADTs with the decisive one in the last 48 hours, trap
 * results (an `entered-in-error` result newer than it with the opposite finding, a `preliminary` one, a positive one
 * just outside the 72 h window), and allergy records with traps (an `entered-in-error` anaphylaxis, a `refuted` or
 * `resolved` penicillin allergy, a cephalosporin-only allergy, an immediate-type non-penicillin allergy, an old rash
 * record beside a newer anaphylaxis). The grader replays the episode's writes (`replayEndState`) and checks the record
 * it left.
 */
import type { Resource } from '../../fhir/types.js';
import { fmtMinute, MINUTE, NOW_MS } from '../../worlds/clinical.js';
import { LOINC, RXNORM, SNOMED, UCUM } from '../../worlds/catalog.js';
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
import { codings, gradeSuite, hasCode, LAB_CATEGORY, type Res, resources, shuffle, VALID_RESULT_STATUSES } from './kit.js';
import type { GradeResult, SuiteFamily, TaskCase, TaskOutput, WorldAccess } from '../types.js';

export const PHARYNGITIS_TEMPLATE =
  'Patient {MRN} has a sore throat. If the most recent rapid strep test (within 72 hours) is positive, order the first-line oral antibiotic per the IDSA 2012 group A strep guideline, taking the patient\'s penicillin allergy history into account: amoxicillin if no penicillin allergy, cephalexin if the allergy is non-immediate, clindamycin if it was immediate-type/anaphylactic. Then finish with [drug ordered or "none", time of the rapid strep test you used].\n';

export const RADT_LOINC = '78012-2';
export const RADT_DISPLAY = 'Streptococcus pyogenes Ag [Presence] in Throat by Rapid immunoassay';
export const POSITIVE_SNOMED = '10828004';
export const NEGATIVE_SNOMED = '260385009';
export const PENICILLIN_ALLERGY_SNOMED = '91936005';
export const PENICILLIN_RXNORM = '7980';
/** Reaction manifestations that make a penicillin allergy immediate-type (with criticality `high`). */
export const IMMEDIATE_MANIFESTATIONS: Readonly<Record<string, string>> = { '39579001': 'Anaphylaxis', '126485001': 'Urticaria', '41291007': 'Angioedema' };
export const NOW_ISO = '2023-11-13T10:15:00+00:00';
/** A test counts when resulted after NOW − 72 h. */
export const RADT_WINDOW_MS = 72 * 60 * MINUTE;
/** Statuses of a result that stands; `entered-in-error`, `cancelled`, `preliminary` do not. */

export type Drug = 'amoxicillin' | 'cephalexin' | 'clindamycin' | 'azithromycin';
export interface Regimen {
  /** RxNorm SCD of the context. */
  code: string;
  /** RxNorm ingredient (accepted as an alternative coding). */
  ingredient: string;
  display: string;
  /** mg per dose, doses per day, days. */
  dose: number;
  perDay: number;
  days: number;
}
export const REGIMENS: Readonly<Record<Drug, Regimen>> = {
  amoxicillin: { code: '308191', ingredient: '723', display: 'amoxicillin 500 MG Oral Capsule', dose: 500, perDay: 2, days: 10 },
  cephalexin: { code: '309114', ingredient: '2231', display: 'cephalexin 500 MG Oral Capsule', dose: 500, perDay: 2, days: 10 },
  clindamycin: { code: '284215', ingredient: '2582', display: 'clindamycin 300 MG Oral Capsule', dose: 300, perDay: 3, days: 10 },
  azithromycin: { code: '308460', ingredient: '18631', display: 'azithromycin 250 MG Oral Tablet', dose: 500, perDay: 1, days: 5 },
};

export const PHARYNGITIS_CONTEXT =
  "It's 2023-11-13T10:15:00+00:00 now. The patient is an adult weighing over 40 kg. " +
  `The rapid strep test is an Observation coded LOINC ${RADT_LOINC}; its result is valueCodeableConcept SNOMED ${POSITIVE_SNOMED} (Positive) or ${NEGATIVE_SNOMED} (Negative). ` +
  'A test counts only if its status is final, amended or corrected and it was resulted in the last 72 hours; use the latest one that counts. ' +
  `A penicillin allergy is an AllergyIntolerance coded SNOMED ${PENICILLIN_ALLERGY_SNOMED} (or RxNorm ${PENICILLIN_RXNORM}); it counts unless its verificationStatus is entered-in-error or refuted or its clinicalStatus is resolved or inactive. ` +
  'It is immediate-type if its criticality is high or a reaction manifestation is anaphylaxis (SNOMED 39579001), urticaria (126485001) or angioedema (41291007); otherwise non-immediate. ' +
  'Protocol (IDSA 2012): negative test: no antibiotic. Positive test: no counting penicillin allergy: amoxicillin 500 MG Oral Capsule (RxNorm 308191), 500 mg by mouth twice daily for 10 days; ' +
  'only non-immediate penicillin allergies: cephalexin 500 MG Oral Capsule (RxNorm 309114), 500 mg twice daily for 10 days; ' +
  'any immediate-type penicillin allergy: clindamycin 300 MG Oral Capsule (RxNorm 284215), 300 mg three times daily for 10 days (or azithromycin 250 MG Oral Tablet, RxNorm 308460, 500 mg once daily for 5 days). ' +
  'Order it as one MedicationRequest (status active, intent order) with dosageInstruction doseAndRate doseQuantity in mg, timing.repeat frequency, period 1 and periodUnit d, ' +
  'and the duration in days as timing.repeat.boundsDuration or dispenseRequest.expectedSupplyDuration. ' +
  'Answer with [drug, test time]: the drug is amoxicillin, cephalexin, clindamycin, azithromycin or none; the test time is the effectiveDateTime of the test you used.';

export type PharyngitisBranch = 'amoxicillin' | 'cephalexin' | 'clindamycin' | 'no_antibiotic';
const BRANCHES: readonly PharyngitisBranch[] = ['amoxicillin', 'cephalexin', 'clindamycin', 'no_antibiotic'];

/** Checkpoints per branch, in the order an expert works (look up, decide, write, answer, nothing else). */
export const PHARYNGITIS_CHECKPOINTS: Readonly<Record<PharyngitisBranch, readonly string[]>> = {
  amoxicillin: ['finished', 'answer_test', 'antibiotic_ordered', 'drug_for_allergy', 'drug_code', 'dose_schedule', 'answer_drug', 'no_other_writes'],
  cephalexin: [
    'finished',
    'answer_test',
    'antibiotic_ordered',
    'drug_for_allergy',
    'no_penicillin',
    'drug_code',
    'dose_schedule',
    'answer_drug',
    'no_other_writes',
  ],
  clindamycin: [
    'finished',
    'answer_test',
    'antibiotic_ordered',
    'drug_for_allergy',
    'no_beta_lactam',
    'drug_code',
    'dose_schedule',
    'answer_drug',
    'no_other_writes',
  ],
  no_antibiotic: ['finished', 'answer_test', 'no_antibiotic', 'answer_drug', 'no_writes'],
};

/** Drugs a branch accepts (the answer's label and the order's drug). */
export const ACCEPTED: Readonly<Record<PharyngitisBranch, readonly string[]>> = {
  amoxicillin: ['amoxicillin'],
  cephalexin: ['cephalexin'],
  clindamycin: ['clindamycin', 'azithromycin'],
  no_antibiotic: ['none'],
};

// ---------------------------------------------------------------------------------------------------------------
// Reading the record

export interface RadtReading {
  positive: boolean;
  time: string;
  id: string;
}

const statusCode = (cc: unknown): string | undefined => {
  const c = codings(cc)[0]?.code;
  return typeof c === 'string' ? c : undefined;
};

/** The latest rapid strep test that counts (standing status, resulted within 72 h, a positive or negative finding). */
export function countingRadt(results: readonly Res[]): RadtReading | null {
  let best: RadtReading | null = null;
  let bestT = -Infinity;
  for (const r of results) {
    if (!VALID_RESULT_STATUSES.includes(String(r.status))) continue;
    const t = Date.parse(String(r.effectiveDateTime));
    if (!Number.isFinite(t) || t <= NOW_MS - RADT_WINDOW_MS || t > NOW_MS) continue;
    const v = r.valueCodeableConcept;
    const positive = hasCode(v, SNOMED, POSITIVE_SNOMED);
    if (!positive && !hasCode(v, SNOMED, NEGATIVE_SNOMED)) continue;
    if (t > bestT) {
      bestT = t;
      best = { positive, time: String(r.effectiveDateTime), id: String(r.id) };
    }
  }
  return best;
}

const isPenicillinAllergy = (r: Res): boolean => hasCode(r.code, SNOMED, PENICILLIN_ALLERGY_SNOMED) || hasCode(r.code, RXNORM, PENICILLIN_RXNORM);
/** An allergy record counts unless entered-in-error, refuted, resolved or inactive. */
export const allergyCounts = (r: Res): boolean =>
  !['entered-in-error', 'refuted'].includes(statusCode(r.verificationStatus) ?? '') && !['resolved', 'inactive'].includes(statusCode(r.clinicalStatus) ?? '');
const isImmediate = (r: Res): boolean =>
  r.criticality === 'high' ||
  (Array.isArray(r.reaction) ? r.reaction : []).some((x) =>
    (Array.isArray((x as Res)?.manifestation) ? ((x as Res).manifestation as unknown[]) : []).some((m) =>
      codings(m).some((c) => c?.system === SNOMED && typeof c?.code === 'string' && Object.hasOwn(IMMEDIATE_MANIFESTATIONS, c.code)),
    ),
  );

export type AllergyClass = 'none' | 'non-immediate' | 'immediate';
/** The penicillin allergy that governs, from allergy records (`counts` decides which records stand). */
export function classifyAllergy(records: readonly Res[], counts: (r: Res) => boolean = allergyCounts): AllergyClass {
  const pcn = records.filter((r) => r.resourceType === 'AllergyIntolerance' && isPenicillinAllergy(r) && counts(r));
  if (pcn.some(isImmediate)) return 'immediate';
  return pcn.length ? 'non-immediate' : 'none';
}

export function pharyngitisBranch(radt: RadtReading | null, allergy: AllergyClass): PharyngitisBranch | null {
  if (!radt) return null;
  if (!radt.positive) return 'no_antibiotic';
  return allergy === 'none' ? 'amoxicillin' : allergy === 'non-immediate' ? 'cephalexin' : 'clindamycin';
}

const radtQuery = (mrn: string) => `Observation?patient=${mrn}&code=${RADT_LOINC}&_count=5000`;
const allergyQuery = (mrn: string) => `AllergyIntolerance?patient=${mrn}&_count=5000`;

export interface PharyngitisFacts {
  branch: PharyngitisBranch | null;
  radt: RadtReading | null;
  allergy: AllergyClass;
  tests: number;
  allergies: number;
}

export async function readPharyngitisFacts(world: WorldAccess, mrn: string): Promise<PharyngitisFacts> {
  const tests = resources(await worldJson(world, radtQuery(mrn)));
  const allergies = resources(await worldJson(world, allergyQuery(mrn)));
  const radt = countingRadt(tests);
  const allergy = classifyAllergy(allergies);
  return { branch: pharyngitisBranch(radt, allergy), radt, allergy, tests: tests.length, allergies: allergies.length };
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads

export function antibioticOrder(mrn: string, drug: Drug): Record<string, unknown> {
  const g = REGIMENS[drug];
  const times = g.perDay === 1 ? 'once daily' : g.perDay === 2 ? 'twice daily' : 'three times daily';
  return {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: g.code, display: g.display }], text: drug },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: NOW_ISO,
    reasonCode: [{ text: 'Group A streptococcal pharyngitis (positive rapid strep test)' }],
    dosageInstruction: [
      {
        text: `${g.dose} mg by mouth ${times} for ${g.days} days`,
        timing: { repeat: { frequency: g.perDay, period: 1, periodUnit: 'd', boundsDuration: { value: g.days, unit: 'days', system: UCUM, code: 'd' } } },
        route: { coding: [{ system: SNOMED, code: '26643006', display: 'Oral route' }], text: 'Oral' },
        doseAndRate: [{ doseQuantity: { value: g.dose, unit: 'mg', system: UCUM, code: 'mg' } }],
      },
    ],
    dispenseRequest: { expectedSupplyDuration: { value: g.days, unit: 'days', system: UCUM, code: 'd' } },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Expert policy

/** How a policy reads the test that counts and classifies the allergy (the expert's; tests plug in trap readers). */
export interface PharyngitisReader {
  radt(io: ScriptIO, mrn: string): RadtReading | null;
  allergy(io: ScriptIO, mrn: string): AllergyClass;
}

const scanRadt = (io: ScriptIO, mrn: string) => countingRadt(resources(io.json(`${io.apiBase}${radtQuery(mrn)}`)));
const sortedRadt = (io: ScriptIO, mrn: string) =>
  countingRadt(resources(io.json(`${io.apiBase}Observation?patient=${mrn}&code=${RADT_LOINC}&_sort=-date&_count=50`)));
const readAllergy = (io: ScriptIO, mrn: string) => classifyAllergy(resources(io.json(`${io.apiBase}AllergyIntolerance?patient=${mrn}`)));

/** Variant `scan`: every test (`_count=5000`); `sorted`: latest first (`_sort=-date&_count=50`). */
export const EXPERT_READERS: Readonly<Record<string, PharyngitisReader>> = {
  scan: { radt: scanRadt, allergy: readAllergy },
  sorted: { radt: sortedRadt, allergy: readAllergy },
};
const VARIANTS = ['scan', 'sorted'] as const;

/** The expert's script with a given reader: the test, then (positive) the allergies, the order, the answer. */
export function pharyngitisScript(read: PharyngitisReader): (io: ScriptIO, task: TaskCase) => void {
  return (io, task) => {
    const mrn = taskMrn(task, [PHARYNGITIS_TEMPLATE, ...pharyngitis.paraphrases]);
    const radt = read.radt(io, mrn);
    if (!radt) return io.finish(['none', '']);
    if (!radt.positive) return io.finish(['none', radt.time]);
    const branch = pharyngitisBranch(radt, read.allergy(io, mrn)) as Drug;
    io.post(`${io.apiBase}MedicationRequest`, antibioticOrder(mrn, branch));
    io.finish([branch, radt.time]);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Planting

interface AllergySpec {
  what: 'penicillin' | 'cephalexin' | 'sulfonamide' | 'latex' | 'shellfish';
  reaction: 'rash' | 'anaphylaxis' | 'urticaria' | 'angioedema';
  criticality: 'low' | 'high';
  verification?: 'confirmed' | 'unconfirmed' | 'refuted' | 'entered-in-error';
  clinical?: 'active' | 'resolved';
  /** Years before NOW it was recorded. */
  years: number;
  note?: string;
}
interface RadtTrap {
  /** `newer`: between the decisive test and NOW; `stale`: 30–90 minutes outside the window. */
  when: 'newer' | 'stale';
  status: 'final' | 'entered-in-error' | 'preliminary';
  positive: boolean;
}
interface Scenario {
  positive: boolean;
  traps?: RadtTrap[];
  allergies: AllergySpec[];
}

const PCN_RASH: AllergySpec = { what: 'penicillin', reaction: 'rash', criticality: 'low', years: 12 };
const PCN_ANAPH: AllergySpec = { what: 'penicillin', reaction: 'anaphylaxis', criticality: 'high', years: 6 };
const SULFA: AllergySpec = { what: 'sulfonamide', reaction: 'rash', criticality: 'low', years: 9 };
const EIE_NEG: RadtTrap = { when: 'newer', status: 'entered-in-error', positive: false };
const EIE_POS: RadtTrap = { when: 'newer', status: 'entered-in-error', positive: true };

/** Dealt round-robin over the planted patients: per 20, amoxicillin 5, cephalexin 5, clindamycin 4, no antibiotic 6. */
const SCENARIOS: readonly Scenario[] = [
  { positive: true, allergies: [] },
  { positive: true, allergies: [PCN_RASH] },
  {
    positive: true,
    allergies: [
      { ...PCN_RASH, years: 15 },
      { ...PCN_ANAPH, years: 2 },
    ],
  },
  { positive: false, traps: [EIE_POS], allergies: [PCN_RASH] },
  { positive: true, traps: [EIE_NEG], allergies: [{ ...PCN_ANAPH, verification: 'entered-in-error', note: 'Entered for the wrong patient' }] },
  { positive: true, traps: [EIE_NEG], allergies: [PCN_RASH, { ...PCN_ANAPH, verification: 'refuted', note: 'Tolerated amoxicillin in 2021' }] },
  { positive: true, traps: [EIE_NEG], allergies: [{ what: 'penicillin', reaction: 'urticaria', criticality: 'low', years: 4 }] },
  { positive: false, traps: [{ when: 'stale', status: 'final', positive: true }], allergies: [] },
  {
    positive: true,
    allergies: [{ what: 'penicillin', reaction: 'rash', criticality: 'low', verification: 'refuted', years: 3, note: 'Tolerated amoxicillin in 2021' }],
  },
  { positive: true, allergies: [PCN_RASH, { what: 'sulfonamide', reaction: 'anaphylaxis', criticality: 'high', years: 8 }] },
  {
    positive: true,
    allergies: [
      { what: 'penicillin', reaction: 'angioedema', criticality: 'high', years: 10 },
      { ...PCN_RASH, verification: 'entered-in-error' },
    ],
  },
  { positive: false, traps: [{ when: 'newer', status: 'preliminary', positive: true }], allergies: [PCN_ANAPH] },
  { positive: true, allergies: [{ what: 'cephalexin', reaction: 'rash', criticality: 'low', years: 5 }, SULFA] },
  { positive: true, allergies: [{ ...PCN_RASH, verification: 'unconfirmed' }] },
  { positive: true, traps: [EIE_NEG], allergies: [PCN_ANAPH, { what: 'shellfish', reaction: 'urticaria', criticality: 'low', years: 20 }] },
  { positive: false, allergies: [SULFA] },
  {
    positive: true,
    traps: [EIE_NEG],
    allergies: [
      {
        what: 'penicillin',
        reaction: 'urticaria',
        criticality: 'high',
        clinical: 'resolved',
        years: 7,
        note: 'Negative penicillin skin test and oral challenge',
      },
    ],
  },
  { positive: true, traps: [EIE_NEG], allergies: [PCN_RASH, { what: 'latex', reaction: 'urticaria', criticality: 'low', years: 11 }] },
  { positive: false, traps: [EIE_POS], allergies: [] },
  { positive: false, traps: [{ when: 'stale', status: 'final', positive: true }], allergies: [{ ...PCN_ANAPH, verification: 'entered-in-error' }] },
];
/** Every seventh patient (from the fourth) has no recent test: only older tests and background allergies. */
const NO_RECENT_EVERY = 7;
const NO_RECENT_AT = 3;

/** The scenario a patient gets (null: no recent test). */
function scenarioOf(index: number): Scenario | null {
  if (index % NO_RECENT_EVERY === NO_RECENT_AT) return null;
  const k = index - Math.floor((index + NO_RECENT_EVERY - 1 - NO_RECENT_AT) / NO_RECENT_EVERY);
  return SCENARIOS[k % SCENARIOS.length]!;
}

function radtObservation(mrn: string, ageMin: number, status: string, positive: boolean): Resource {
  const t = NOW_MS - ageMin * MINUTE;
  return {
    resourceType: 'Observation',
    status,
    category: LAB_CATEGORY,
    code: { coding: [{ system: LOINC, code: RADT_LOINC, display: RADT_DISPLAY }], text: 'Rapid strep test' },
    subject: { reference: `Patient/${mrn}` },
    effectiveDateTime: fmtMinute(t),
    issued: fmtMinute(Math.min(t + 20 * MINUTE, NOW_MS)),
    valueCodeableConcept: positive
      ? { coding: [{ system: SNOMED, code: POSITIVE_SNOMED, display: 'Positive' }], text: 'Positive' }
      : { coding: [{ system: SNOMED, code: NEGATIVE_SNOMED, display: 'Negative' }], text: 'Negative' },
  };
}

const SUBSTANCES: Readonly<Record<AllergySpec['what'], { coding: Array<Record<string, string>>; text: string; category: string }>> = {
  penicillin: {
    coding: [
      { system: SNOMED, code: PENICILLIN_ALLERGY_SNOMED, display: 'Allergy to penicillin' },
      { system: RXNORM, code: PENICILLIN_RXNORM, display: 'penicillin' },
    ],
    text: 'Penicillin',
    category: 'medication',
  },
  cephalexin: { coding: [{ system: RXNORM, code: '2231', display: 'cephalexin' }], text: 'Cephalexin', category: 'medication' },
  sulfonamide: { coding: [{ system: SNOMED, code: '91939003', display: 'Allergy to sulfonamide' }], text: 'Sulfonamide antibiotics', category: 'medication' },
  latex: { coding: [{ system: SNOMED, code: '300916003', display: 'Latex allergy' }], text: 'Latex', category: 'environment' },
  shellfish: { coding: [{ system: SNOMED, code: '300913006', display: 'Shellfish allergy' }], text: 'Shellfish', category: 'food' },
};
const MANIFESTATIONS: Readonly<Record<AllergySpec['reaction'], [string, string]>> = {
  rash: ['271807003', 'Eruption of skin'],
  anaphylaxis: ['39579001', 'Anaphylaxis'],
  urticaria: ['126485001', 'Urticaria'],
  angioedema: ['41291007', 'Angioedema'],
};

function allergyRecord(mrn: string, a: AllergySpec, rng: Rng): Resource {
  const s = SUBSTANCES[a.what];
  const [mcode, mdisplay] = MANIFESTATIONS[a.reaction];
  const recorded = NOW_MS - (a.years * 365 + rng.int(0, 300)) * 1440 * MINUTE - rng.int(0, 1439) * MINUTE;
  const clinical = a.clinical ?? 'active';
  const verification = a.verification ?? 'confirmed';
  const r: Resource = {
    resourceType: 'AllergyIntolerance',
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: clinical }] },
    verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: verification }] },
    type: 'allergy',
    category: [s.category],
    criticality: a.criticality,
    code: { coding: s.coding, text: s.text },
    patient: { reference: `Patient/${mrn}` },
    recordedDate: fmtMinute(recorded),
    reaction: [
      {
        manifestation: [{ coding: [{ system: SNOMED, code: mcode, display: mdisplay }], text: mdisplay }],
        severity: a.reaction === 'anaphylaxis' || a.reaction === 'angioedema' ? 'severe' : 'mild',
      },
    ],
  };
  if (a.note) r.note = [{ text: a.note }];
  return r;
}

/** A patient's records: older tests, the decisive test and its traps, allergy records; each list shuffled. */
function plantPharyngitis(p: PlantPatient, rng: Rng): Resource[] {
  const sc = scenarioOf(p.index);
  const tests: Resource[] = [];
  // older tests: 0–3, months to years ago
  for (let i = rng.int(sc ? 0 : 1, 3); i > 0; i--) tests.push(radtObservation(p.mrn, rng.int(60, 1400) * 1440 + rng.int(0, 1439), 'final', rng.chance(0.3)));
  const allergies: AllergySpec[] = [];
  if (sc) {
    const age = rng.int(30, 48 * 60);
    tests.push(radtObservation(p.mrn, age, 'final', sc.positive));
    for (const t of sc.traps ?? []) {
      const trapAge = t.when === 'newer' ? rng.int(5, age - 5) : 72 * 60 + rng.int(30, 90);
      tests.push(radtObservation(p.mrn, trapAge, t.status, t.positive));
    }
    allergies.push(...sc.allergies);
  } else if (rng.chance(0.5)) allergies.push(rng.chance(0.5) ? PCN_RASH : PCN_ANAPH);
  if (rng.chance(0.3) && !allergies.some((a) => a.what === 'latex'))
    allergies.push({ what: 'latex', reaction: 'rash', criticality: 'low', years: rng.int(2, 25) });
  const out = [
    ...shuffle(tests, rng),
    ...shuffle(
      allergies.map((a) => allergyRecord(p.mrn, a, rng)),
      rng,
    ),
  ];
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

const subjectIs = (r: Resource, mrn: string): boolean => (r.subject as { reference?: unknown } | undefined)?.reference === `Patient/${mrn}`;
const sameMinute = (a: unknown, b: string): boolean =>
  typeof a === 'string' && /T\d\d:\d\d/.test(a) && Number.isFinite(Date.parse(a)) && Math.floor(Date.parse(a) / MINUTE) === Math.floor(Date.parse(b) / MINUTE);

/** What drug an order names: its RxNorm code (SCD or ingredient) when known, else its text or displays. */
export function drugOf(r: Resource | undefined): string | null {
  if (!r) return null;
  const cc = r.medicationCodeableConcept;
  for (const c of codings(cc)) {
    if (c?.system !== RXNORM) continue;
    for (const [d, g] of Object.entries(REGIMENS)) if (c.code === g.code || c.code === g.ingredient) return d;
    if (c.code === PENICILLIN_RXNORM) return 'penicillin';
  }
  const words = [(cc as { text?: unknown } | undefined)?.text, ...codings(cc).map((c) => c?.display)]
    .filter((x): x is string => typeof x === 'string')
    .join(' ')
    .toLowerCase();
  for (const d of Object.keys(REGIMENS)) if (words.includes(d)) return d;
  if (/penicillin/.test(words)) return 'penicillin';
  if (/\bcef|\bceph/.test(words)) return 'cephalosporin';
  if (/mycin|cillin|cycline|floxacin|trimethoprim|sulfamethoxazole/.test(words)) return 'other antibiotic';
  return null;
}
const isPenicillin = (d: string | null) => d === 'amoxicillin' || d === 'penicillin';
const isBetaLactam = (d: string | null) => isPenicillin(d) || d === 'cephalexin' || d === 'cephalosporin';

const DAY_UNITS = ['d', 'day', 'days'];
const isDays = (q: unknown, days: number): boolean => {
  const o = q as { value?: unknown; unit?: unknown; code?: unknown } | undefined;
  return o?.value === days && (DAY_UNITS.includes(String(o.unit ?? '').toLowerCase()) || o.code === 'd');
};

/** The regimen an order is judged against: the branch's drug (azithromycin's when an immediate-type branch orders it). */
function expectedRegimen(branch: Exclude<PharyngitisBranch, 'no_antibiotic'>, drug: string | null): Regimen {
  return branch === 'clindamycin' && drug === 'azithromycin' ? REGIMENS.azithromycin : REGIMENS[branch];
}

function regimenOf(r: Resource | undefined): Record<string, unknown> {
  const di = (r?.dosageInstruction as Array<Record<string, unknown>> | undefined)?.[0];
  const rep = (di?.timing as { repeat?: Record<string, unknown> } | undefined)?.repeat;
  const dq = (di?.doseAndRate as Array<{ doseQuantity?: { value?: unknown; unit?: unknown; code?: unknown } }> | undefined)?.[0]?.doseQuantity;
  return {
    dose: dq?.value,
    unit: dq?.unit ?? dq?.code,
    frequency: rep?.frequency,
    period: rep?.period,
    periodUnit: rep?.periodUnit,
    boundsDuration: rep?.boundsDuration,
    expectedSupplyDuration: (r?.dispenseRequest as { expectedSupplyDuration?: unknown } | undefined)?.expectedSupplyDuration,
  };
}

/** The answer's two parts, or why there are none (not JSON: protocol; JSON of another shape: lookup). */
function answerParts(result: TaskOutput['result']): { drug: string; time: string } | { problem: string; cls: 'protocol' | 'lookup' } {
  if (typeof result !== 'string') return { problem: 'no answer', cls: 'protocol' };
  let v: unknown;
  try {
    v = JSON.parse(result);
  } catch {
    return { problem: 'the answer is not JSON', cls: 'protocol' };
  }
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string' || typeof v[1] !== 'string')
    return { problem: 'the answer is not a list of two strings [drug, test time]', cls: 'lookup' };
  return { drug: v[0].trim().toLowerCase(), time: v[1].trim() };
}

async function gradeEndState(output: TaskOutput, facts: PharyngitisFacts, mrn: string, state: EndState): Promise<Checkpoint[]> {
  const branch = facts.branch!;
  const radt = facts.radt!;
  const checks: Checkpoint[] = [];
  const a = answerParts(output.result);
  checks.push(
    'time' in a
      ? checkpoint('answer_test', 'lookup', sameMinute(a.time, radt.time), radt.time, a.time, 'the effectiveDateTime of the test that counts')
      : checkpoint('answer_test', a.cls, false, radt.time, output.result, a.problem),
  );
  const answerDrug = () =>
    checkpoint('answer_drug', 'payload', 'drug' in a && ACCEPTED[branch].includes(a.drug), ACCEPTED[branch], 'drug' in a ? a.drug : output.result);
  const createdMr = await state.created('MedicationRequest');
  const isCreated = (k: string) => state.writes.some((w) => w.method === 'POST' && `${w.type}/${w.id}` === k);
  const key = (r: Resource) => `${r.resourceType}/${r.id}`;
  if (branch === 'no_antibiotic') {
    const abx = createdMr.filter((r) => drugOf(r) !== null);
    checks.push(
      checkpoint(
        'no_antibiotic',
        'decision',
        abx.length === 0,
        'no antibiotic order',
        abx.map((r) => drugOf(r)),
      ),
    );
    checks.push(answerDrug());
    // an antibiotic order is judged by no_antibiotic, not counted again
    const judged = new Set(abx.map(key));
    const stray = state.touched().filter((k) => !judged.has(k));
    checks.push(checkpoint('no_writes', 'decision', stray.length === 0, [], stray));
    return checks;
  }
  const accepted = ACCEPTED[branch];
  const order = createdMr.find((r) => accepted.includes(drugOf(r) ?? '')) ?? createdMr.find((r) => drugOf(r) !== null) ?? createdMr[0];
  const drug = drugOf(order);
  checks.push(
    checkpoint(
      'antibiotic_ordered',
      'decision',
      !!order && drug !== null && order.status === 'active' && order.intent === 'order' && subjectIs(order, mrn),
      { drug: 'an antibiotic', status: 'active', intent: 'order', subject: `Patient/${mrn}` },
      order && { drug, status: order.status, intent: order.intent, subject: order.subject },
    ),
  );
  checks.push(checkpoint('drug_for_allergy', 'lookup', accepted.includes(drug ?? ''), accepted, drug, `penicillin allergy: ${facts.allergy}`));
  // safety: every created order is judged (a beta-lactam beside the right drug fails here, not as a stray write)
  const unsafe = branch === 'cephalexin' ? isPenicillin : branch === 'clindamycin' ? isBetaLactam : null;
  const judged = new Set<string>();
  if (unsafe) {
    const bad = createdMr.filter((r) => unsafe(drugOf(r)));
    for (const r of bad) judged.add(key(r));
    checks.push(
      checkpoint(
        branch === 'cephalexin' ? 'no_penicillin' : 'no_beta_lactam',
        'decision',
        bad.length === 0,
        [],
        bad.map((r) => drugOf(r)),
      ),
    );
  }
  const want = drug && Object.hasOwn(REGIMENS, drug) ? REGIMENS[drug as Drug] : undefined;
  checks.push(
    checkpoint(
      'drug_code',
      'payload',
      !!want && codings(order?.medicationCodeableConcept).some((c) => c?.system === RXNORM && (c.code === want.code || c.code === want.ingredient)),
      want ? { system: RXNORM, code: want.code } : 'a drug of the context',
      codings(order?.medicationCodeableConcept).map((c) => ({ system: c?.system, code: c?.code })),
    ),
  );
  const reg = expectedRegimen(branch, drug);
  const got = regimenOf(order);
  const unit = String(got.unit ?? '').toLowerCase();
  checks.push(
    checkpoint(
      'dose_schedule',
      'payload',
      got.dose === reg.dose &&
        unit === 'mg' &&
        got.frequency === reg.perDay &&
        got.period === 1 &&
        got.periodUnit === 'd' &&
        (isDays(got.boundsDuration, reg.days) || isDays(got.expectedSupplyDuration, reg.days)),
      { dose: reg.dose, unit: 'mg', frequency: reg.perDay, period: 1, periodUnit: 'd', days: reg.days },
      got,
    ),
  );
  checks.push(answerDrug());
  const stray = state.touched().filter((k) => !judged.has(k) && !(order && k === key(order) && isCreated(k)));
  checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
  return checks;
}

const PARAPHRASES = [
  'Check {MRN}\'s throat swab result from the last 72 h; if GAS-positive, start the guideline antibiotic that is safe for their penicillin allergy status and report [drug or "none", time of the test].\n',
  'Strep throat workup for {MRN}: treat per IDSA 2012 if the rapid antigen test is positive (allergy-aware choice), otherwise don\'t. Answer [drug or "none", test time].\n',
  'Sore throat visit for {MRN}. Act on the latest rapid strep result from the past 72 hours as the IDSA group A strep guideline says, choosing the antibiotic by their penicillin allergy; answer [drug or "none", time of that test].\n',
];

export const pharyngitis: SuiteFamily<'pharyngitis'> = {
  id: 'pharyngitis',
  suite: 'ehrgym-clinical',
  dialect: 'ehrgym',
  name: 'Allergy-aware antibiotic for group A strep pharyngitis',
  kind: 'action',
  rule: {
    name: 'GAS pharyngitis: treat a positive rapid antigen test (no antibiotic after a negative one in adults); penicillin/amoxicillin first line; in penicillin allergy a first-generation cephalosporin unless the allergy is immediate-type, otherwise clindamycin or a macrolide',
    source:
      'Shulman ST, Bisno AL, Clegg HW, et al. Clinical Practice Guideline for the Diagnosis and Management of Group A Streptococcal Pharyngitis: 2012 Update by the Infectious Diseases Society of America. Clin Infect Dis 2012;55(10):e86–e102, doi:10.1093/cid/cis629 (recommendations 9–10, Table 2)',
  },
  instructionTemplates: [PHARYNGITIS_TEMPLATE],
  context: PHARYNGITIS_CONTEXT,
  branches: BRANCHES,
  checkpoints: PHARYNGITIS_CHECKPOINTS,
  variants: VARIANTS,
  turns: { min: 2, max: 4 },
  recordKey: 'eval_MRN',
  paraphrases: PARAPHRASES,
  placeholders: mrnPlaceholders,
  planted: 'none',
  planting: { name: 'pharyngitis', version: 'pharyngitis-v1', plant: plantPharyngitis },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: plainFactoryHints(0),
  audit: {
    // "none": no antibiotic, the answer when nothing is to be treated (without the test's time it never passes)
    nothingFound: ['none'],
    // blind: the modal order, amoxicillin for a patient with no penicillin allergy
    alwaysAct: alwaysPost([PHARYNGITIS_TEMPLATE, ...PARAPHRASES], (mrn) => [{ resource: 'MedicationRequest', payload: antibioticOrder(mrn, 'amoxicillin') }]),
  },

  instruction({ mrn }) {
    if (!mrn) throw new Error('pharyngitis.instruction: mrn is required');
    return PHARYNGITIS_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(world, opts) {
    return generateOver('pharyngitis', opts, async (mrn) => {
      const f = await readPharyngitisFacts(world, mrn);
      if (f.branch === null) return null;
      const facts: Record<string, unknown> = { radt: f.radt, allergy: f.allergy, tests: f.tests, allergies: f.allergies };
      return {
        branch: f.branch,
        patient: mrn,
        facts,
        build: (id) => makeTask(id, pharyngitis.instruction({ mrn }), PHARYNGITIS_CONTEXT, mrn),
      };
    });
  },

  solve(task, history, opts) {
    const variant = opts?.variant ?? VARIANTS[0];
    return runScript(task, history, opts, VARIANTS, pharyngitisScript(EXPERT_READERS[variant] ?? EXPERT_READERS.scan!));
  },

  grade(task, output, ctx): Promise<GradeResult> {
    return gradeSuite(task, output, ctx, {
      templates: [PHARYNGITIS_TEMPLATE, ...PARAPHRASES],
      read: readPharyngitisFacts,
      branch: (f) => (f.branch !== null && f.radt !== null ? { branch: f.branch } : { why: `${f.tests} rapid strep tests, none counting` }),
      reference: (f) => [ACCEPTED[f.branch!][0], f.radt!.time],
      check: (output, facts, mrn, state) => gradeEndState(output, facts, mrn, state),
    });
  },
};
