/**
 * dupguard — no second regular drug of the same class in an older patient (clinical suite, medication safety;
 * docs/tasks.md).
 *
 * Rule: STOPP/START criteria for potentially inappropriate prescribing in older people, version 3 (O'Mahony D,
 * Cherubini A, Guiteras AR, et al. Eur Geriatr Med 2023;14(4):625–632, doi:10.1007/s41999-023-00777-y), STOPP
 * section A criterion 3: any duplicate drug class prescription for daily regular use, as distinct from PRN use (e.g.
 * two concurrent NSAIDs, loop diuretics, ACE inhibitors), in people aged 65 or over. The task asks for an order of a
 * drug of one of three classes (ACE inhibitors, statins, loop diuretics); if the patient already has a
 * same-class MedicationRequest in daily regular use (status active or on-hold, intent other than proposal/plan, not
 * PRN) the order is not placed and that record is reported; otherwise the order is placed and the most recent
 * same-class record that does not count (stopped, completed, cancelled, entered-in-error, PRN) is reported.
 *
 * NSAIDs are not ordered: chronic NSAID use in older people is itself potentially inappropriate (AGS 2023 Beers
 * Criteria: avoid chronic use unless alternatives fail and a gastroprotective agent is taken), and most cohort
 * patients take warfarin. Where the order would meet a potassium criterion the patient serves no task of that class:
 * an ACE inhibitor with the latest potassium above 5.0 mmol/L (STOPP v2 B11, ACE inhibitors in hyperkalaemia), a loop
 * diuretic with the latest potassium below 3.5 mmol/L (a duplicate is reported whatever the potassium).
 *
 * The world plants, on lane-0 cohort patients aged 65 or over, same-class histories for each of the three classes on
 * top of the cohort's own orders (lisinopril, simvastatin, atorvastatin, furosemide …, which count as same-class
 * records too): every planted record sits far past the first page of the patient's unsorted MedicationRequest list
 * (130–450 orders), and each class carries traps — a newer stopped/cancelled/entered-in-error record above an older
 * active one, an entered-in-error order of the very drug requested, an active PRN furosemide and an active thiazide
 * (hydrochlorothiazide, a different class) beside a loop-diuretic history. A patient serves one task per class, so
 * the frozen split's 28 tasks come from 15 of the 17 eligible test patients (lane 0, aged 65 or over).
 *
 * Version 2's A3 (Age Ageing 2015;44:213–218: "any duplicate drug class prescription e.g. two concurrent NSAIDs, SSRIs,
 * loop diuretics, ACE inhibitors, anticoagulants") was checked against public sources; version 3's PRN clause is
 * quoted from docs/clinical-suite-plan.md (§A4, the paper's Appendix 1) and matches STOPP's own "regular (as distinct from
 * PRN)" wording elsewhere.
 *
 * RxNorm codes (SCD, `http://www.nlm.nih.gov/research/umls/rxnorm`): 858817 enalapril maleate 10 MG Oral Tablet,
 * 261962 ramipril 10 MG Oral Capsule, 859747 rosuvastatin calcium 10 MG Oral Tablet, 198371 torsemide 20 MG Oral
 * Tablet — each checked against openFDA NDC records of that single strength; 314076 lisinopril 10 MG, 314231
 * simvastatin 10 MG, 259255 atorvastatin 80 MG, 310429 furosemide 20 MG, 310798 hydrochlorothiazide 25 MG — the
 * catalog's. LOINC 2823-3 (potassium) — the catalog's.
 */
import type { Resource } from '../../fhir/types.js';
import { fmtMinute, MINUTE, NOW_MS } from '../../worlds/clinical.js';
import { RXNORM, SNOMED } from '../../worlds/catalog.js';
import type { Rng } from '../../worlds/prng.js';
import type { PlantPatient } from '../../worlds/synthetic.js';
import { makeTask, matchTemplate, mrnDetector, plainFactoryHints, runScript, type ScriptIO, SolverError, shuffled, worldJson } from '../common.js';
import type { EndState } from '../endstate.js';
import type { GeneratedTask, GradeResult, SuiteFamily, TaskCase, TaskOutput, WorldAccess } from '../types.js';
import {
  answerList,
  type Checkpoint,
  checkpoint,
  codings,
  D,
  gradeSuite,
  hasAnyCode,
  hasCode,
  inLane,
  isOral,
  noOtherWrites,
  type Res,
  resources,
  sameLabel,
  shuffle,
  strayWrites,
  subjectIs,
  VALID_RESULT_STATUSES,
} from './kit.js';

/** The planting lane (kit.ts `inLane`). */
export const LANE = 0;
/** STOPP applies from this age (years at NOW). */
export const MIN_AGE = 65;

export type ClassId = 'ace' | 'statin' | 'loop';
export const CLASS_IDS: readonly ClassId[] = ['ace', 'statin', 'loop'];

export interface Drug {
  code: string;
  display: string;
  dose: number;
  /** `dosageInstruction[0].timing.code.text` of a regular order. */
  timing: string;
}
export interface DrugClass {
  id: ClassId;
  name: string;
  /** Every member's RxNorm code (the ordered drug included). */
  members: readonly Drug[];
  /** The drug the task orders, its dose and timing. */
  order: Drug;
  /** How the instruction names the order (`{DRUG}`). */
  phrase: string;
}

const drug = (code: string, display: string, dose: number, timing: string): Drug => ({ code, display, dose, timing });
const LISINOPRIL = drug('314076', 'lisinopril 10 MG Oral Tablet', 10, 'DAILY');
const ENALAPRIL = drug('858817', 'enalapril maleate 10 MG Oral Tablet', 10, 'DAILY');
const RAMIPRIL = drug('261962', 'ramipril 10 MG Oral Capsule', 10, 'DAILY');
const SIMVASTATIN = drug('314231', 'Simvastatin 10 MG Oral Tablet', 10, 'NIGHTLY');
const ATORVASTATIN = drug('259255', 'Atorvastatin 80 MG Oral Tablet', 80, 'NIGHTLY');
const ROSUVASTATIN = drug('859747', 'rosuvastatin calcium 10 MG Oral Tablet', 10, 'DAILY');
const FUROSEMIDE = drug('310429', 'Furosemide 20 MG Oral Tablet', 20, 'DAILY');
const TORSEMIDE = drug('198371', 'torsemide 20 MG Oral Tablet', 20, 'DAILY');
/** A thiazide: a different class from the loop diuretics (the look-alike decoy). */
const HCTZ = drug('310798', 'Hydrochlorothiazide 25 MG Oral Tablet', 25, 'DAILY');

export const CLASSES: Readonly<Record<ClassId, DrugClass>> = {
  ace: { id: 'ace', name: 'ACE inhibitors', members: [LISINOPRIL, ENALAPRIL, RAMIPRIL], order: ENALAPRIL, phrase: 'enalapril 10 mg by mouth once daily' },
  statin: {
    id: 'statin',
    name: 'statins',
    members: [SIMVASTATIN, ATORVASTATIN, ROSUVASTATIN],
    order: ROSUVASTATIN,
    phrase: 'rosuvastatin 10 mg by mouth once daily',
  },
  loop: { id: 'loop', name: 'loop diuretics', members: [FUROSEMIDE, TORSEMIDE], order: TORSEMIDE, phrase: 'torsemide 20 mg by mouth once daily' },
};
const classCodes = (c: DrugClass): string[] => c.members.map((m) => m.code);
/** The timing code of an order and the `timing.repeat` frequency per day it stands for. */
const TIMING_REPEAT: Readonly<Record<string, number>> = { DAILY: 1 };
/** Potassium (mmol/L): no ACE inhibitor task above the upper bound, no loop-diuretic task below the lower. */
export const K_LOINC = '2823-3';
export const K_MAX_FOR_ACE = 5.0;
export const K_MIN_FOR_LOOP = 3.5;

export const DUPGUARD_TEMPLATE =
  'Order {DRUG} for patient {MRN}, who is 65 or older. Before ordering, check the medication list for a drug of the same class in daily regular use (STOPP v3 criterion A3): if there is one, do not order and answer ["duplicate", that MedicationRequest\'s id]; otherwise place the order and answer ["ordered", the id of the most recently authored same-class MedicationRequest that does not count].\n';

export const DUPGUARD_CONTEXT =
  "It's 2023-11-13T10:15:00+00:00 now. STOPP/START v3 criterion A3 (people aged 65 or over): no duplicate drug class prescription for daily regular use, as distinct from PRN use. " +
  'Drug classes by RxNorm code of MedicationRequest.medicationCodeableConcept: ' +
  CLASS_IDS.map((id) => `${CLASSES[id].name}: ${CLASSES[id].members.map((m) => `${m.code} (${m.display})`).join(', ')}`).join('; ') +
  '. Other drugs (e.g. hydrochlorothiazide, a thiazide) belong to none of these classes. ' +
  'A same-class MedicationRequest (the same drug included) is in daily regular use when its status is active or on-hold, its intent is not proposal or plan, and dosageInstruction[0].asNeededBoolean is not true; ' +
  'PRN orders and stopped, completed, cancelled, entered-in-error or draft orders do not count. ' +
  'To order, POST a MedicationRequest with status active, intent order, subject Patient/<MRN>, authoredOn now, the drug\'s RxNorm code, and dosageInstruction[0] with route oral, doseAndRate[0].doseQuantity {value, unit "mg"} and timing.code.text DAILY (once daily). ' +
  'Orders: ' +
  CLASS_IDS.map((id) => `${CLASSES[id].phrase} = RxNorm ${CLASSES[id].order.code}, ${CLASSES[id].order.dose} mg, ${CLASSES[id].order.timing}`).join('; ') +
  '. When no same-class MedicationRequest that does not count exists, the second item of an "ordered" answer is "none".';

const PARAPHRASES = [
  'Avoid therapeutic duplication: patient {MRN} (65 or older) needs {DRUG}. If they already take a drug of the same class regularly (STOPP v3 A3), do not add it and answer ["duplicate", the existing order\'s id]; otherwise order it and answer ["ordered", the id of the latest same-class order that does not count].\n',
  'Reconcile the medications of {MRN}, aged 65+, before ordering {DRUG}: a second regular drug of the same class must not be started (STOPP v3 A3). Place the order only if no same-class drug is in daily regular use; answer ["duplicate", existing MedicationRequest id] or ["ordered", id of the most recent same-class MedicationRequest that does not count].\n',
  'A prescriber asks for {DRUG} for {MRN} (an older adult, 65+). Apply STOPP v3 criterion A3 on duplicate drug classes: with a same-class drug already in regular use, order nothing and reply ["duplicate", its order id]; without one, order it and reply ["ordered", the id of the newest same-class order that does not count].\n',
];
const TEMPLATES = [DUPGUARD_TEMPLATE, ...PARAPHRASES];

export type DupBranch = 'duplicate' | 'no_duplicate';
const BRANCHES: readonly DupBranch[] = ['duplicate', 'no_duplicate'];
const LABELS: Record<DupBranch, string> = { duplicate: 'duplicate', no_duplicate: 'ordered' };

/** Checkpoints per branch, in the order an expert works (look up, decide, write, nothing else). */
export const DUPGUARD_CHECKPOINTS: Readonly<Record<DupBranch, readonly string[]>> = {
  duplicate: ['finished', 'answer_record', 'decision', 'no_order', 'no_other_writes'],
  no_duplicate: ['finished', 'answer_record', 'decision', 'order_placed', 'order_payload', 'no_other_writes'],
};

/** The instruction ordering a class's drug for a patient (the test template by default). */
export function dupInstruction(mrn: string, cls: ClassId, template: string = DUPGUARD_TEMPLATE): string {
  if (!CLASSES[cls]) throw new Error(`dupguard.instruction: drug must be one of ${CLASS_IDS.join(', ')}`);
  return template.replace('{DRUG}', CLASSES[cls].phrase).replace('{MRN}', mrn);
}

// ---------------------------------------------------------------------------------------------------------------
// The task's subject and reading the record

export interface DupSubject {
  mrn: string;
  cls: ClassId;
}

/** The patient and the ordered drug's class named by an instruction (any of the family's templates). */
export function dupSubject(task: TaskCase): DupSubject {
  for (const t of TEMPLATES) {
    const m = matchTemplate(t, task.instruction);
    const cls = CLASS_IDS.find((id) => CLASSES[id].phrase === m?.DRUG);
    if (m?.MRN && cls) return { mrn: m.MRN, cls };
  }
  throw new SolverError(`${task.id}: cannot find the patient and the ordered drug in the instruction`);
}

/** A same-class order in daily regular use (STOPP A3's "duplicate"): active or on-hold, not a proposal or plan, not PRN. */
export function inRegularUse(r: Res): boolean {
  if (r.status !== 'active' && r.status !== 'on-hold') return false;
  if (r.intent === 'proposal' || r.intent === 'plan') return false;
  const dosage = Array.isArray(r.dosageInstruction) ? (r.dosageInstruction[0] as Res | undefined) : undefined;
  return dosage?.asNeededBoolean !== true;
}

export interface ClassReading {
  /** Ids of the same-class orders in daily regular use (any is a correct "duplicate" answer). */
  counting: string[];
  /** Ids of the most recently authored same-class orders that do not count (ties at the latest instant). */
  latestOther: string[];
  latestOtherAt: string | null;
  sameClass: number;
}

/** Classify a patient's MedicationRequests for one class. */
export function readClass(mrs: readonly Res[], cls: ClassId): ClassReading {
  const codes = classCodes(CLASSES[cls]);
  const same = mrs.filter((r) => hasAnyCode(r.medicationCodeableConcept, RXNORM, codes));
  const counting = same.filter(inRegularUse).map((r) => String(r.id));
  let best = -Infinity;
  let latestOther: string[] = [];
  let latestOtherAt: string | null = null;
  for (const r of same) {
    if (inRegularUse(r)) continue;
    const t = Date.parse(String(r.authoredOn));
    if (!Number.isFinite(t)) continue;
    if (t > best) {
      best = t;
      latestOther = [String(r.id)];
      latestOtherAt = String(r.authoredOn);
    } else if (t === best) latestOther.push(String(r.id));
  }
  return { counting, latestOther, latestOtherAt, sameClass: same.length };
}

/** The marker of this family's planted records (the generator serves only patients it planted). */
export const PLANTED_REQUESTER = 'Geriatric medicine clinic';

const medQuery = (mrn: string) => `MedicationRequest?patient=${mrn}&_count=5000`;

/** A patient's age in whole years at NOW (NaN without a birthDate). */
export function ageAtNow(birthDate: unknown): number {
  if (typeof birthDate !== 'string' || !/^\d{4}-\d\d-\d\d/.test(birthDate)) return Number.NaN;
  const [y, m, d] = birthDate.slice(0, 10).split('-').map(Number) as [number, number, number];
  const now = new Date(NOW_MS);
  const before = now.getUTCMonth() + 1 < m || (now.getUTCMonth() + 1 === m && now.getUTCDate() < d);
  return now.getUTCFullYear() - y - (before ? 1 : 0);
}

/** What a task's reference is, read from the world (generator and grader share it). */
export interface DupFacts extends ClassReading {
  cls: ClassId;
  branch: DupBranch | null;
  age: number;
  planted: boolean;
  orders: number;
  /** The latest standing potassium (mmol/L), null without one. */
  potassium: number | null;
  /** Why the class serves no task although the rule would apply (a potassium contraindication). */
  excluded: string | null;
}

/** The latest standing potassium result (`VALID_RESULT_STATUSES`, numeric value, latest `effectiveDateTime`). */
export function latestPotassium(observations: readonly Res[]): number | null {
  let best = -Infinity;
  let value: number | null = null;
  for (const r of observations) {
    if (!VALID_RESULT_STATUSES.includes(String(r.status))) continue;
    const v = (r.valueQuantity as { value?: unknown } | undefined)?.value;
    const t = Date.parse(String(r.effectiveDateTime));
    if (typeof v !== 'number' || !Number.isFinite(t) || t <= best) continue;
    best = t;
    value = v;
  }
  return value;
}

/** A potassium contraindication to ordering the class's drug, or null. */
export function potassiumExclusion(cls: ClassId, k: number | null): string | null {
  if (k === null) return null;
  if (cls === 'ace' && k > K_MAX_FOR_ACE) return `potassium ${k} mmol/L above ${K_MAX_FOR_ACE}`;
  if (cls === 'loop' && k < K_MIN_FOR_LOOP) return `potassium ${k} mmol/L below ${K_MIN_FOR_LOOP}`;
  return null;
}

/** Read one patient's facts for every class (GETs of the patient, the medication list and the potassium results). */
export async function readPatientFacts(world: WorldAccess, mrn: string): Promise<Record<ClassId, DupFacts>> {
  const patient = await worldJson(world, `Patient?_id=${mrn}`);
  const age = ageAtNow(resources(patient)[0]?.birthDate);
  const mrs = resources(await worldJson(world, medQuery(mrn)));
  const planted = mrs.some((r) => (r.requester as { display?: unknown } | undefined)?.display === PLANTED_REQUESTER);
  const potassium = latestPotassium(resources(await worldJson(world, `Observation?patient=${mrn}&code=${K_LOINC}&_count=5000`)));
  const out = {} as Record<ClassId, DupFacts>;
  for (const cls of CLASS_IDS) {
    const c = readClass(mrs, cls);
    // a potassium contraindication only matters where the drug would be ordered
    const excluded = c.counting.length > 0 ? null : potassiumExclusion(cls, potassium);
    const branch: DupBranch | null =
      !(age >= MIN_AGE) || !planted || excluded ? null : c.counting.length > 0 ? 'duplicate' : c.latestOther.length > 0 ? 'no_duplicate' : null;
    out[cls] = { ...c, cls, branch, age, planted, orders: mrs.length, potassium, excluded };
  }
  return out;
}

export async function readDupFacts(world: WorldAccess, s: DupSubject): Promise<DupFacts> {
  return (await readPatientFacts(world, s.mrn))[s.cls];
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads and the expert policy

const ORAL = { coding: [{ system: SNOMED, code: '26643006', display: 'Oral route' }], text: 'Oral' };

export function orderPayload(mrn: string, cls: ClassId): Record<string, unknown> {
  const o = CLASSES[cls].order;
  return {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: o.code, display: o.display }], text: o.display },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: '2023-11-13T10:15:00+00:00',
    dosageInstruction: [
      {
        text: `${o.dose} mg oral ${o.timing}`,
        timing: { code: { text: o.timing } },
        route: ORAL,
        doseAndRate: [{ doseQuantity: { value: o.dose, unit: 'mg' } }],
      },
    ],
  };
}

/** How a policy reads the patient's orders of a class (the expert's; tests plug in trap readers). */
export type MedReader = (io: ScriptIO, mrn: string, cls: ClassId) => Res[];
/** Variant `scan`: the whole medication list in one page (`_count=5000`). */
export const scanMeds: MedReader = (io, mrn) => resources(io.json(`${io.apiBase}${medQuery(mrn)}`));
/** Variant `by-code`: only the class's codes (a comma-separated token list). */
export const byCodeMeds: MedReader = (io, mrn, cls) =>
  resources(io.json(`${io.apiBase}MedicationRequest?patient=${mrn}&code=${classCodes(CLASSES[cls]).join(',')}&_count=500`));

const VARIANTS = ['scan', 'by-code'] as const;

/** The expert's script with a given reader: classify, order or not, answer. */
export function dupScript(read: MedReader): (io: ScriptIO, task: TaskCase) => void {
  return (io, task) => {
    const { mrn, cls } = dupSubject(task);
    const c = readClass(read(io, mrn, cls), cls);
    if (c.counting.length > 0) io.finish([LABELS.duplicate, c.counting[0]]);
    io.post(`${io.apiBase}MedicationRequest`, orderPayload(mrn, cls));
    io.finish([LABELS.no_duplicate, c.latestOther[0] ?? 'none']);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Planting

/** One planted record: which member, its status, age in days. `order` is the requested drug, `other` another member. */
interface PlantRec {
  member: 'order' | 'other';
  status: 'active' | 'stopped' | 'completed' | 'cancelled' | 'entered-in-error';
  ageDays: number;
}
interface Scenario {
  branch: DupBranch;
  recs: PlantRec[];
}
/**
 * Dealt per patient and class (`k = index / 2 + class`): four of seven plant no counting order, as the cohort's own
 * active orders turn some of them into duplicates.
 */
const SCENARIOS: readonly Scenario[] = [
  // an older active member; a newer stopped order of the requested drug (a "latest record decides" reader misses it)
  {
    branch: 'duplicate',
    recs: [
      { member: 'other', status: 'active', ageDays: 240 },
      { member: 'order', status: 'stopped', ageDays: 30 },
    ],
  },
  // only stopped and completed history
  {
    branch: 'no_duplicate',
    recs: [
      { member: 'other', status: 'stopped', ageDays: 45 },
      { member: 'other', status: 'completed', ageDays: 400 },
    ],
  },
  // the requested drug is already active; a newer entered-in-error record of another member
  {
    branch: 'duplicate',
    recs: [
      { member: 'order', status: 'active', ageDays: 180 },
      { member: 'other', status: 'entered-in-error', ageDays: 5 },
    ],
  },
  // an entered-in-error order of the requested drug three days ago (a status-blind reader calls it a duplicate)
  {
    branch: 'no_duplicate',
    recs: [
      { member: 'order', status: 'entered-in-error', ageDays: 3 },
      { member: 'other', status: 'completed', ageDays: 120 },
    ],
  },
  // an active member under a newer cancelled order and an old completed one
  {
    branch: 'duplicate',
    recs: [
      { member: 'other', status: 'active', ageDays: 90 },
      { member: 'order', status: 'cancelled', ageDays: 10 },
      { member: 'other', status: 'completed', ageDays: 500 },
    ],
  },
  // a stopped member two weeks ago above an old completed order of the requested drug
  {
    branch: 'no_duplicate',
    recs: [
      { member: 'other', status: 'stopped', ageDays: 14 },
      { member: 'order', status: 'completed', ageDays: 300 },
    ],
  },
  // a newer cancelled order of another member above a stopped order of the requested drug
  {
    branch: 'no_duplicate',
    recs: [
      { member: 'other', status: 'cancelled', ageDays: 20 },
      { member: 'order', status: 'stopped', ageDays: 60 },
    ],
  },
];

/** The planted scenario of a patient's class (null: nothing planted for this patient). */
export function scenarioOf(p: Pick<PlantPatient, 'index' | 'birthDate'>, cls: ClassId): Scenario | null {
  if (!inLane(p.index, LANE) || !(ageAtNow(p.birthDate) >= MIN_AGE)) return null;
  const k = Math.floor(p.index / 2) + CLASS_IDS.indexOf(cls);
  return SCENARIOS[k % SCENARIOS.length]!;
}

function medRecord(mrn: string, d: Drug, status: string, authored: number, prn: boolean): Resource {
  const timing = prn ? `${d.timing} PRN` : d.timing;
  const dosage: Record<string, unknown> = {
    text: `${d.dose} mg oral ${timing}`,
    timing: { code: { text: timing } },
    route: ORAL,
    doseAndRate: [{ doseQuantity: { value: d.dose, unit: 'mg' } }],
  };
  if (prn) {
    dosage.asNeededBoolean = true;
    dosage.additionalInstruction = [{ text: 'if weight gain over 1 kg in a day' }];
  }
  return {
    resourceType: 'MedicationRequest',
    status,
    intent: 'order',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/medicationrequest-category', code: 'community', display: 'Community' }] }],
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: d.code, display: d.display }], text: d.display },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: fmtMinute(authored),
    requester: { display: PLANTED_REQUESTER },
    dosageInstruction: [dosage],
  };
}

/** A patient's planted orders for the four classes, in shuffled server order (all after the cohort's own). */
function plantDupguard(p: PlantPatient, rng: Rng): Resource[] {
  const out: Resource[] = [];
  for (const cls of CLASS_IDS) {
    const sc = scenarioOf(p, cls);
    if (!sc) return [];
    const c = CLASSES[cls];
    const others = c.members.filter((m) => m.code !== c.order.code);
    for (const r of sc.recs) {
      const d = r.member === 'order' ? c.order : others[rng.int(0, others.length - 1)]!;
      const authored = NOW_MS - r.ageDays * D * MINUTE - rng.int(0, 9) * D * MINUTE - rng.int(0, 600) * MINUTE;
      out.push(medRecord(p.mrn, d, r.status, authored, false));
    }
    // beside a loop-diuretic history without a counting order: an active PRN furosemide (for weight gain; PRN use does
    // not count) and the look-alike, an active thiazide (another class)
    if (cls === 'loop' && sc.branch === 'no_duplicate') {
      out.push(medRecord(p.mrn, FUROSEMIDE, 'active', NOW_MS - (25 + rng.int(0, 30)) * D * MINUTE - rng.int(0, 600) * MINUTE, true));
      out.push(medRecord(p.mrn, HCTZ, 'active', NOW_MS - (100 + rng.int(0, 60)) * D * MINUTE, false));
    }
  }
  return shuffle(out, rng);
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

/** `timing.code.text` (or a code of it) equal to `want`, or a `timing.repeat` of that many times a day. */
function timingIs(timing: unknown, want: string): boolean {
  const t = timing as { code?: { text?: unknown }; repeat?: { frequency?: unknown; period?: unknown; periodUnit?: unknown } } | undefined;
  const texts = [t?.code?.text, ...codings(t?.code).map((c) => c.code)].filter((x): x is string => typeof x === 'string');
  if (texts.some((x) => x.trim().toUpperCase() === want)) return true;
  const r = t?.repeat;
  return !!r && r.frequency === TIMING_REPEAT[want] && r.period === 1 && r.periodUnit === 'd';
}

async function gradeEndState(output: TaskOutput, facts: DupFacts, s: DupSubject, state: EndState, branch: string): Promise<Checkpoint[]> {
  const checks: Checkpoint[] = [];
  const b = branch as DupBranch;
  const want = b === 'duplicate' ? facts.counting : facts.latestOther;
  const a = answerList(output.result, 2);
  if ('items' in a) {
    const [label, id] = a.items;
    checks.push(checkpoint('answer_record', 'lookup', (typeof id === 'string' || typeof id === 'number') && want.includes(String(id)), want, id));
    checks.push(checkpoint('decision', 'decision', sameLabel(label, LABELS[b]), LABELS[b], label));
  } else {
    checks.push(checkpoint('answer_record', a.cls, false, want, output.result, a.problem));
    checks.push(checkpoint('decision', a.cls, false, LABELS[b], output.result, a.problem));
  }
  const c = CLASSES[s.cls];
  const created = await state.created('MedicationRequest');
  const sameClass = created.filter((r) => hasAnyCode(r.medicationCodeableConcept, RXNORM, classCodes(c)));
  if (b === 'duplicate') {
    checks.push(
      checkpoint(
        'no_order',
        'decision',
        sameClass.length === 0,
        [],
        sameClass.map((r) => r.id),
      ),
    );
    // a same-class order is judged by no_order, not counted again as a stray write
    const judged = new Set(sameClass.map((r) => `MedicationRequest/${r.id}`));
    checks.push(noOtherWrites(strayWrites(state).filter((k) => !judged.has(k))));
    return checks;
  }
  const isOrder = (r: Resource) => hasCode(r.medicationCodeableConcept, RXNORM, c.order.code);
  checks.push(
    checkpoint(
      'order_placed',
      'decision',
      created.some(isOrder),
      c.order.code,
      created.map((r) => codings(r.medicationCodeableConcept).map((x) => x.code)),
    ),
  );
  const mr = created.find(isOrder) ?? created[0];
  const dosage = Array.isArray(mr?.dosageInstruction) ? (mr.dosageInstruction[0] as Res | undefined) : undefined;
  const dose = (dosage?.doseAndRate as Array<{ doseQuantity?: { value?: unknown; unit?: unknown } }> | undefined)?.[0]?.doseQuantity;
  const ok =
    !!mr &&
    mr.status === 'active' &&
    mr.intent === 'order' &&
    subjectIs(mr, s.mrn) &&
    dose?.value === c.order.dose &&
    typeof dose?.unit === 'string' &&
    dose.unit.trim().toLowerCase() === 'mg' &&
    isOral(dosage?.route) &&
    timingIs(dosage?.timing, c.order.timing) &&
    dosage?.asNeededBoolean !== true;
  checks.push(
    checkpoint(
      'order_payload',
      'payload',
      ok,
      { status: 'active', intent: 'order', subject: `Patient/${s.mrn}`, dose: `${c.order.dose} mg`, route: 'oral', timing: c.order.timing },
      mr && {
        status: mr.status,
        intent: mr.intent,
        subject: mr.subject,
        dose: dose && `${String(dose.value)} ${String(dose.unit)}`,
        route: dosage?.route,
        timing: dosage?.timing,
        asNeeded: dosage?.asNeededBoolean,
      },
    ),
  );
  checks.push(noOtherWrites(strayWrites(state, { MedicationRequest: 1 })));
  return checks;
}

export const dupguard: SuiteFamily<'dupguard'> = {
  id: 'dupguard',
  suite: 'ehrgym-clinical',
  dialect: 'ehrgym',
  name: 'Duplicate drug class guard (STOPP v3 A3)',
  kind: 'action',
  rule: {
    name: 'STOPP v3 criterion A3: no duplicate drug class prescription for daily regular use (as distinct from PRN use) in people aged 65 or over',
    source:
      "O'Mahony D, Cherubini A, Guiteras AR, et al. STOPP/START criteria for potentially inappropriate prescribing in older people: version 3. Eur Geriatr Med 2023;14(4):625–632, doi:10.1007/s41999-023-00777-y (STOPP section A, criterion 3)",
  },
  instructionTemplates: [DUPGUARD_TEMPLATE],
  context: DUPGUARD_CONTEXT,
  branches: BRANCHES,
  checkpoints: DUPGUARD_CHECKPOINTS,
  variants: VARIANTS,
  turns: { min: 2, max: 3 },
  recordKey: 'eval_MRN',
  paraphrases: PARAPHRASES,
  placeholders(task) {
    try {
      const s = dupSubject(task);
      return { MRN: s.mrn, DRUG: CLASSES[s.cls].phrase };
    } catch {
      return null;
    }
  },
  planted: 'none',
  planting: { name: 'dupguard', version: 'dupguard-v1', plant: plantDupguard },
  detector: mrnDetector({ retrievedValue: true }),
  // a patient serves one task per drug class
  // corpus rows read the class's codes only: the whole medication list (130–450 orders) would not fit a context
  factory: { ...plainFactoryHints(0), reusePatients: true, primaryVariant: 'by-code' },
  audit: {
    // nothing counts and no earlier same-class order: order, and report none
    nothingFound: [LABELS.no_duplicate, 'none'],
    // blind: place the requested order without reading the medication list
    alwaysAct: (task, history, opts) =>
      runScript(task, history, { apiBase: opts?.apiBase }, ['always-act'], (io) => {
        const s = dupSubject(task);
        io.post(`${io.apiBase}MedicationRequest`, orderPayload(s.mrn, s.cls));
        io.finish([]);
      }),
  },

  /** `{mrn, drug}`: `drug` is the class of the ordered drug (`ace`, `statin`, `loop`). */
  instruction(params) {
    if (!params.mrn) throw new Error('dupguard.instruction: mrn is required');
    return dupInstruction(params.mrn, (params as { drug?: ClassId }).drug as ClassId);
  },

  /** Candidates are (patient, class) pairs in shuffled order; each patient's record is read once. */
  async generate(world, opts) {
    const out: GeneratedTask[] = [];
    const start = opts.startIndex ?? 1;
    const limit = opts.count ?? Infinity;
    const pairs = opts.patients.flatMap((mrn) => CLASS_IDS.map((cls) => ({ mrn, cls })));
    const cache = new Map<string, Record<ClassId, DupFacts>>();
    for (const { mrn, cls } of shuffled(pairs, opts.rng)) {
      if (out.length >= limit) break;
      let all = cache.get(mrn);
      if (!all) {
        all = await readPatientFacts(world, mrn);
        cache.set(mrn, all);
      }
      const f = all[cls];
      if (f.branch === null) continue;
      if (opts.branch !== undefined && f.branch !== opts.branch) continue;
      const id = `dupguard_${start + out.length}`;
      const facts: Record<string, unknown> = {
        cls,
        counting: f.counting,
        latestOther: f.latestOther,
        latestOtherAt: f.latestOtherAt,
        sameClass: f.sameClass,
        orders: f.orders,
        age: f.age,
        potassium: f.potassium,
      };
      out.push({ task: makeTask(id, dupInstruction(mrn, cls), DUPGUARD_CONTEXT, mrn), branch: f.branch, patient: mrn, facts });
    }
    return out;
  },

  solve(task, history, opts) {
    const variant = opts?.variant ?? VARIANTS[0];
    return runScript(task, history, opts, VARIANTS, dupScript(variant === 'by-code' ? byCodeMeds : scanMeds));
  },

  grade(task, output, ctx): Promise<GradeResult> {
    return gradeSuite<DupFacts, DupSubject>(task, output, ctx, {
      subject: dupSubject,
      read: readDupFacts,
      branch: (f) =>
        f.branch !== null
          ? { branch: f.branch }
          : {
              why: `age ${f.age}, ${f.planted ? '' : 'no planted history, '}${f.excluded ? `${f.excluded}, ` : ''}${f.counting.length} counting and ${f.sameClass} same-class orders`,
            },
      reference: (f) => (f.branch === 'duplicate' ? [LABELS.duplicate, f.counting[0]] : [LABELS.no_duplicate, f.latestOther[0]]),
      check: (output, facts, s, state, branch) => gradeEndState(output, facts, s, state, branch),
    });
  },
};
