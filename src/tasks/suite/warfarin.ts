/**
 * warfarin — INR-guided warfarin management (clinical suite, lab-triggered protocol; docs/tasks.md).
 *
 * Rule: ACCP/CHEST 2012, "Evidence-based management of anticoagulant therapy" (Holbrook et al., Chest
 * 2012;141(2 Suppl):e152S–e184S): therapeutic INR range 2.0–3.0 (recommendation 1B); INR 4.5–10 without bleeding:
 * withhold warfarin, no routine vitamin K (4.1, 2B); INR above 10 without bleeding: withhold warfarin and give oral
 * vitamin K (4.1, 2C). The guideline names no vitamin K dose or recheck time; the task's context states the local
 * protocol's (2.5 mg by mouth, as in the case series the guideline cites; repeat INR the next morning), and an INR
 * only counts when it was resulted in the last 72 hours (otherwise: order one, change nothing).
 *
 * The world plants, on most cohort patients, an INR history (a year of clinic checks, unsorted in server order, the
 * decisive result past the first page of 20), trap results (`entered-in-error` with a value that would change the
 * decision, `cancelled` without a value, a result just outside the 72 h window), an active warfarin order and an
 * older stopped one. The grader replays the episode's writes (`replayEndState`) and checks the record it left.
 */
import type { Resource } from '../../fhir/types.js';
import { fmtInstant, fmtMinute, MINUTE, NOW_MS } from '../../worlds/clinical.js';
import { LOINC, RXNORM, SNOMED, UCUM } from '../../worlds/catalog.js';
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
import {
  answerList,
  type Checkpoint,
  changedKeys,
  checkpoint,
  codings,
  D,
  gradeSuite,
  H,
  hasCode,
  isOral,
  LAB_CATEGORY,
  pastFirstPage,
  resources,
  sameInstant,
  sameJson,
  strayWrites,
  subjectIs,
  VALID_RESULT_STATUSES,
  without,
} from './kit.js';
import type { GradeResult, SuiteFamily, TaskCase, TaskOutput, WorldAccess } from '../types.js';

export const WARFARIN_TEMPLATE =
  'Patient {MRN} takes warfarin. Review the most recent INR and manage the warfarin order according to the anticoagulation protocol. Answer with the INR value you acted on.\n';
export const WARFARIN_CONTEXT =
  "It's 2023-11-13T10:15:00+00:00 now. The patient has no signs of bleeding. The LOINC code for INR is 6301-6; warfarin orders are MedicationRequests coded RxNorm 855332. " +
  'An INR counts only if it was resulted in the last 72 hours. Anticoagulation protocol (ACCP/CHEST 2012): ' +
  'INR 2.0 to 3.0: therapeutic, continue warfarin and order nothing. ' +
  'INR 4.5 to 10: hold warfarin (set the active warfarin MedicationRequest to on-hold and change nothing else in it) and order a repeat INR (ServiceRequest, LOINC 6301-6) for 2023-11-14T08:00:00+00:00. ' +
  'INR above 10: the same, and also order phytonadione (vitamin K1, RxNorm 8308) 2.5 mg by mouth once (MedicationRequest). ' +
  'No INR in the last 72 hours: leave warfarin unchanged and order an INR now (ServiceRequest, LOINC 6301-6, priority stat). ' +
  'Answer with [INR], or [-1] if no INR counts.';

export const INR_LOINC = '6301-6';
export const INR_DISPLAY = 'INR in Platelet poor plasma by Coagulation assay';
export const WARFARIN_RXNORM = '855332';
export const WARFARIN_DISPLAY = 'Warfarin Sodium 5 MG Oral Tablet';
export const VITAMIN_K_RXNORM = '8308';
export const VITAMIN_K_DISPLAY = 'phytonadione 2.5 MG Oral';
export const NOW_ISO = '2023-11-13T10:15:00+00:00';
export const REPEAT_INR_AT = '2023-11-14T08:00:00+00:00';
/** An INR counts when resulted at or after NOW − 72 h. */
export const INR_WINDOW_MS = 72 * 60 * MINUTE;

export type WarfarinBranch = 'therapeutic_continue' | 'high_hold' | 'critical_hold_vitamin_k' | 'stale_recheck';
const BRANCHES: readonly WarfarinBranch[] = ['therapeutic_continue', 'high_hold', 'critical_hold_vitamin_k', 'stale_recheck'];

/** Checkpoints per branch, in the order an expert works (look up, decide, write, nothing else). */
export const WARFARIN_CHECKPOINTS: Readonly<Record<WarfarinBranch, readonly string[]>> = {
  therapeutic_continue: ['finished', 'answer_inr', 'warfarin_unchanged', 'no_writes'],
  high_hold: ['finished', 'answer_inr', 'warfarin_on_hold', 'hold_only_status', 'repeat_inr_ordered', 'repeat_inr_payload', 'no_vitamin_k', 'no_other_writes'],
  critical_hold_vitamin_k: [
    'finished',
    'answer_inr',
    'warfarin_on_hold',
    'hold_only_status',
    'repeat_inr_ordered',
    'repeat_inr_payload',
    'vitamin_k_ordered',
    'vitamin_k_payload',
    'no_other_writes',
  ],
  stale_recheck: ['finished', 'answer_inr', 'warfarin_unchanged', 'inr_ordered', 'inr_order_payload', 'no_other_writes'],
};

/** The protocol's decision for the INR that counts (null: none in the window); null branch for INRs it does not cover. */
export function warfarinBranch(inr: number | null): WarfarinBranch | null {
  if (inr === null) return 'stale_recheck';
  if (inr >= 2.0 && inr <= 3.0) return 'therapeutic_continue';
  if (inr >= 4.5 && inr <= 10) return 'high_hold';
  if (inr > 10) return 'critical_hold_vitamin_k';
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the record

export interface InrReading {
  value: number;
  time: string;
  id?: string;
}

/**
 * The INR that counts among a bundle's entries: results that stand (`VALID_RESULT_STATUSES`) with a numeric value,
 * resulted within 72 h of NOW; the latest by `effectiveDateTime` (the first of equal times in server order). Also the
 * latest standing result of any age (a stale one), for facts.
 */
export function countingInr(entries: readonly unknown[]): { inWindow: InrReading | null; latest: InrReading | null } {
  let inWindow: InrReading | null = null;
  let latest: InrReading | null = null;
  let inT = -Infinity;
  let anyT = -Infinity;
  for (const e of entries) {
    const r = (e as { resource?: Record<string, unknown> })?.resource;
    if (!r || !VALID_RESULT_STATUSES.includes(String(r.status))) continue;
    const v = (r.valueQuantity as { value?: unknown } | undefined)?.value;
    const t = Date.parse(String(r.effectiveDateTime));
    if (typeof v !== 'number' || !Number.isFinite(t)) continue;
    const reading = { value: v, time: String(r.effectiveDateTime), id: String(r.id) };
    if (t > anyT) {
      anyT = t;
      latest = reading;
    }
    if (t >= NOW_MS - INR_WINDOW_MS && t > inT) {
      inT = t;
      inWindow = reading;
    }
  }
  return { inWindow, latest };
}

const entriesOf = (bundle: unknown): unknown[] => resources(bundle).map((resource) => ({ resource }));

const isWarfarin = (r: Record<string, unknown>): boolean =>
  ((r.medicationCodeableConcept as { coding?: Array<{ code?: unknown }> } | undefined)?.coding ?? []).some((c) => c?.code === WARFARIN_RXNORM);

/** The patient's active warfarin orders in a MedicationRequest bundle. */
export function activeWarfarinOrders(bundle: unknown): Array<Record<string, unknown>> {
  return entriesOf(bundle)
    .map((e) => (e as { resource?: Record<string, unknown> }).resource)
    .filter((r): r is Record<string, unknown> => !!r && r.status === 'active' && isWarfarin(r));
}

const inrQuery = (mrn: string) => `Observation?patient=${mrn}&code=${INR_LOINC}&_count=5000`;
const warfarinQuery = (mrn: string) => `MedicationRequest?patient=${mrn}&code=${WARFARIN_RXNORM}&_count=5000`;

/** What a task's reference is, read from the world (generator and grader share it). */
export interface WarfarinFacts {
  branch: WarfarinBranch | null;
  inr: InrReading | null;
  latestAny: InrReading | null;
  /** The one active warfarin order (null when there is none or several: the patient serves no task). */
  orderId: string | null;
  activeOrders: number;
  results: number;
}

export async function readWarfarinFacts(world: WorldAccess, mrn: string): Promise<WarfarinFacts> {
  const inrs = entriesOf(await worldJson(world, inrQuery(mrn)));
  const { inWindow, latest } = countingInr(inrs);
  const orders = activeWarfarinOrders(await worldJson(world, warfarinQuery(mrn)));
  return {
    branch: inrs.length === 0 ? null : warfarinBranch(inWindow ? inWindow.value : null),
    inr: inWindow,
    latestAny: latest,
    orderId: orders.length === 1 ? String(orders[0]!.id) : null,
    activeOrders: orders.length,
    results: inrs.length,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads

export function repeatInrOrder(mrn: string): Record<string, unknown> {
  return {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    code: { coding: [{ system: LOINC, code: INR_LOINC, display: INR_DISPLAY }], text: 'INR' },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: NOW_ISO,
    occurrenceDateTime: REPEAT_INR_AT,
  };
}

export function statInrOrder(mrn: string): Record<string, unknown> {
  return {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    priority: 'stat',
    code: { coding: [{ system: LOINC, code: INR_LOINC, display: INR_DISPLAY }], text: 'INR' },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: NOW_ISO,
  };
}

export function vitaminKOrder(mrn: string): Record<string, unknown> {
  return {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: VITAMIN_K_RXNORM, display: VITAMIN_K_DISPLAY }], text: 'phytonadione' },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: NOW_ISO,
    dosageInstruction: [
      {
        text: '2.5 mg by mouth once',
        route: { coding: [{ system: SNOMED, code: '26643006', display: 'Oral route' }], text: 'Oral' },
        doseAndRate: [{ doseQuantity: { value: 2.5, unit: 'mg', system: UCUM, code: 'mg' } }],
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Expert policy

/** How a policy reads the INR that counts (the expert's; tests plug in trap readers). */
export type InrReader = (io: ScriptIO, mrn: string) => InrReading | null;

/** Variant `scan`: every result (`_count=5000`), standing ones only, latest in the window. */
export const scanInr: InrReader = (io, mrn) => countingInr(entriesOf(io.json(`${io.apiBase}${inrQuery(mrn)}`))).inWindow;

/** Variant `sorted`: final results, latest first, one entry; kept when inside the window. */
export const sortedInr: InrReader = (io, mrn) =>
  countingInr(entriesOf(io.json(`${io.apiBase}Observation?patient=${mrn}&code=${INR_LOINC}&status=final&_sort=-date&_count=1`))).inWindow;

const VARIANTS = ['scan', 'sorted'] as const;

/** The expert's script with a given INR reader: decide by the protocol, write, answer. */
export function warfarinScript(read: InrReader): (io: ScriptIO, task: TaskCase) => void {
  return (io, task) => {
    const mrn = taskMrn(task, [WARFARIN_TEMPLATE, ...warfarin.paraphrases]);
    const inr = read(io, mrn);
    const branch = warfarinBranch(inr ? inr.value : null);
    if (branch === 'stale_recheck') {
      io.post(`${io.apiBase}ServiceRequest`, statInrOrder(mrn));
      io.finish([-1]);
    }
    const orders = activeWarfarinOrders(io.get(`${io.apiBase}MedicationRequest?patient=${mrn}&code=${WARFARIN_RXNORM}&status=active`));
    if (branch === 'high_hold' || branch === 'critical_hold_vitamin_k') {
      const order = orders[0];
      if (order) io.put(`${io.apiBase}MedicationRequest/${String(order.id)}`, { ...order, status: 'on-hold' });
      io.post(`${io.apiBase}ServiceRequest`, repeatInrOrder(mrn));
      if (branch === 'critical_hold_vitamin_k') io.post(`${io.apiBase}MedicationRequest`, vitaminKOrder(mrn));
    }
    io.finish([inr ? inr.value : -1]);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Planting

/** One planted scenario: the latest standing INR ([minutes before NOW, value]) and the traps newer than it. */
interface InrScenario {
  latest: [number, number];
  edge?: string;
  traps?: Array<{ ageMin: number; status: 'entered-in-error' | 'cancelled'; value?: number }>;
}
/** Dealt round-robin over the patients on warfarin: branches 5 / 5 / 4 / 4. */
const SCENARIOS: readonly InrScenario[] = [
  { latest: [6 * H + 10, 2.4], traps: [{ ageMin: 2 * H, status: 'entered-in-error', value: 5.8 }] },
  { latest: [5 * H, 5.6], traps: [{ ageMin: H + 30, status: 'entered-in-error', value: 2.5 }] },
  { latest: [3 * H + 20, 11.2], traps: [{ ageMin: 50, status: 'entered-in-error', value: 3.1 }] },
  { latest: [72 * H + 1, 6.1], edge: '72h01', traps: [{ ageMin: 5 * H, status: 'entered-in-error', value: 2.7 }] },
  { latest: [20 * H, 2.9], traps: [{ ageMin: 3 * H, status: 'cancelled' }] },
  { latest: [9 * H, 8.3] },
  { latest: [7 * H, 14.8], traps: [{ ageMin: 2 * H, status: 'cancelled' }] },
  { latest: [5 * D, 2.6] },
  { latest: [71 * H, 2.0], edge: 'INR=2.0' },
  { latest: [4 * H + 40, 4.5], edge: 'INR=4.5' },
  { latest: [2 * H, 10.1], edge: 'INR=10.1' },
  { latest: [80 * H, 11.5], traps: [{ ageMin: 20 * H, status: 'entered-in-error', value: 4.9 }] },
  { latest: [72 * H, 2.3], edge: '72h00' },
  { latest: [11 * H, 10.0], edge: 'INR=10.0' },
  { latest: [26 * H, 12.9] },
  { latest: [9 * D, 3.4] },
  { latest: [H + 45, 2.6], traps: [{ ageMin: 30, status: 'cancelled' }] },
  { latest: [30 * H, 6.7] },
];
/** Every seventh patient takes no warfarin (no INR, no order). */
const OFF_WARFARIN_EVERY = 7;

function inrObservation(mrn: string, ageMin: number, status: string, value: number | undefined): Resource {
  const t = NOW_MS - ageMin * MINUTE;
  const r: Resource = {
    resourceType: 'Observation',
    status,
    category: LAB_CATEGORY,
    code: { coding: [{ system: LOINC, code: INR_LOINC, display: INR_DISPLAY }], text: 'INR' },
    subject: { reference: `Patient/${mrn}` },
    effectiveDateTime: fmtMinute(t),
    issued: fmtInstant(Math.min(t + 95 * MINUTE, NOW_MS)),
  };
  if (value !== undefined) r.valueQuantity = { value, unit: '{INR}', system: UCUM, code: '{INR}' };
  else
    r.dataAbsentReason = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'not-performed', display: 'Not Performed' }] };
  return r;
}

function warfarinOrder(mrn: string, status: 'active' | 'stopped', ageMin: number, dose: number): Resource {
  return {
    resourceType: 'MedicationRequest',
    status,
    intent: 'order',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/medicationrequest-category', code: 'community', display: 'Community' }] }],
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: WARFARIN_RXNORM, display: WARFARIN_DISPLAY }], text: WARFARIN_DISPLAY },
    subject: { reference: `Patient/${mrn}` },
    authoredOn: fmtMinute(NOW_MS - ageMin * MINUTE),
    dosageInstruction: [
      {
        text: `${dose} mg oral DAILY`,
        timing: { code: { text: 'DAILY' } },
        route: { coding: [{ system: SNOMED, code: '26643006', display: 'Oral route' }], text: 'Oral' },
        doseAndRate: [{ doseQuantity: { value: dose, unit: 'mg' } }],
      },
    ],
  };
}

/** The scenario a patient gets (null: not on warfarin): dealt round-robin over the patients on warfarin. */
export function warfarinScenarioOf(index: number): { latest: [number, number]; edge?: string } | null {
  if (index % OFF_WARFARIN_EVERY === OFF_WARFARIN_EVERY - 1) return null;
  const k = index - Math.floor(index / OFF_WARFARIN_EVERY);
  return SCENARIOS[k % SCENARIOS.length]!;
}
const scenarioOf = (p: PlantPatient): InrScenario | null => warfarinScenarioOf(p.index);

/** A patient's warfarin records: a year of clinic INRs, the scenario's results and traps, the orders, in server order. */
function plantWarfarin(p: PlantPatient, rng: Rng): Resource[] {
  const sc = scenarioOf(p);
  if (!sc) return [];
  const out: Resource[] = [];
  const [latestAge, latestValue] = sc.latest;
  // history: clinic checks every 7–21 days from a month before the decisive result back a year, all therapeutic-ish
  const history: Resource[] = [];
  let age = latestAge + rng.int(4, 9) * D + rng.int(0, 600);
  while (age < 365 * D && history.length < 40) {
    const v = Math.round(Math.min(3.6, Math.max(1.5, rng.normal(2.5, 0.45))) * 10) / 10;
    history.push(inrObservation(p.mrn, age, 'final', v));
    age += rng.int(7, 21) * D + rng.int(-300, 300);
  }
  const decisive = inrObservation(p.mrn, latestAge, 'final', latestValue);
  const traps = (sc.traps ?? []).map((t) => inrObservation(p.mrn, t.ageMin, t.status, t.value));
  const results = [...history, ...traps];
  // unsorted, the decisive result past the first page
  out.push(...pastFirstPage(results, decisive, rng));
  const started = 200 * D + rng.int(0, 150) * D;
  const orders = [warfarinOrder(p.mrn, 'stopped', started + rng.int(30, 90) * D, 7.5), warfarinOrder(p.mrn, 'active', started, 5)];
  if (rng.chance(0.5)) orders.reverse();
  out.push(...orders);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

const isVitaminK = (r: Resource): boolean => {
  const cc = r.medicationCodeableConcept as { text?: unknown } | undefined;
  const words = [cc?.text, ...codings(cc).map((c) => c?.display)].filter((x): x is string => typeof x === 'string').join(' ');
  return hasCode(cc, RXNORM, VITAMIN_K_RXNORM) || /phyto|vitamin k/i.test(words);
};

/** The answer's number, or why there is none (`answerList`'s classes). */
function answerValue(result: TaskOutput['result']): { value: number } | { problem: string; cls: 'protocol' | 'lookup' } {
  const a = answerList(result, 1);
  if (!('items' in a)) return a.problem.startsWith('the answer is not a list') ? { problem: 'the answer is not a list of one number', cls: 'lookup' } : a;
  return typeof a.items[0] === 'number' ? { value: a.items[0] } : { problem: 'the answer is not a list of one number', cls: 'lookup' };
}

async function gradeEndState(output: TaskOutput, facts: WarfarinFacts, mrn: string, state: EndState): Promise<Checkpoint[]> {
  const branch = facts.branch!;
  const checks: Checkpoint[] = [];
  const want = facts.inr ? facts.inr.value : -1;
  const a = answerValue(output.result);
  checks.push(
    'value' in a
      ? checkpoint('answer_inr', 'lookup', Math.abs(a.value - want) < 1e-9, [want], [a.value])
      : checkpoint('answer_inr', a.cls, false, [want], output.result, a.problem),
  );
  const orderId = facts.orderId!;
  const before = await state.readBase('MedicationRequest', orderId);
  const after = await state.read('MedicationRequest', orderId);
  const orderKey = `MedicationRequest/${orderId}`;
  const createdSr = await state.created('ServiceRequest');
  const createdMr = await state.created('MedicationRequest');
  const others = state.touched().filter((k) => k !== orderKey);
  const pick = (list: Resource[], ok: (r: Resource) => boolean) => list.find(ok) ?? list[0];
  /** Writes beyond the allowed: one ServiceRequest, `mr` created MedicationRequests, the order's hold. */
  const beyond = (mr: number): string[] => strayWrites(state, { ServiceRequest: 1, MedicationRequest: mr }, [orderKey]);
  if (branch === 'therapeutic_continue' || branch === 'stale_recheck') {
    checks.push(checkpoint('warfarin_unchanged', 'decision', sameJson(without(before, 'meta'), without(after, 'meta')), before?.status, after?.status));
  } else {
    checks.push(checkpoint('warfarin_on_hold', 'decision', after?.status === 'on-hold', 'on-hold', after?.status));
    const changed = changedKeys(before, after, 'status');
    checks.push(
      checkpoint('hold_only_status', 'payload', changed.length === 0, [], changed, 'fields of the warfarin order other than status and meta that changed'),
    );
  }
  if (branch === 'therapeutic_continue') {
    checks.push(checkpoint('no_writes', 'decision', others.length === 0, [], others));
    return checks;
  }
  const isInr = (r: Resource) => hasCode(r.code, LOINC, INR_LOINC);
  const sr = pick(createdSr, isInr);
  const base = (r: Resource | undefined) => !!r && r.status === 'active' && r.intent === 'order' && subjectIs(r, mrn);
  if (branch === 'stale_recheck') {
    checks.push(
      checkpoint(
        'inr_ordered',
        'decision',
        createdSr.some(isInr),
        INR_LOINC,
        createdSr.map((r) => codings(r.code).map((c) => c.code)),
      ),
    );
    checks.push(
      checkpoint(
        'inr_order_payload',
        'payload',
        base(sr) && sr!.priority === 'stat',
        { status: 'active', intent: 'order', priority: 'stat', subject: `Patient/${mrn}` },
        sr && {
          status: sr.status,
          intent: sr.intent,
          priority: sr.priority,
          subject: sr.subject,
        },
      ),
    );
    const stray = beyond(0);
    checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
    return checks;
  }
  checks.push(
    checkpoint(
      'repeat_inr_ordered',
      'decision',
      createdSr.some(isInr),
      INR_LOINC,
      createdSr.map((r) => codings(r.code).map((c) => c.code)),
    ),
  );
  checks.push(
    checkpoint(
      'repeat_inr_payload',
      'payload',
      base(sr) && sameInstant(sr!.occurrenceDateTime, REPEAT_INR_AT),
      { status: 'active', intent: 'order', subject: `Patient/${mrn}`, occurrenceDateTime: REPEAT_INR_AT },
      sr && { status: sr.status, intent: sr.intent, subject: sr.subject, occurrenceDateTime: sr.occurrenceDateTime },
    ),
  );
  if (branch === 'high_hold') {
    const vk = createdMr.filter(isVitaminK);
    checks.push(
      checkpoint(
        'no_vitamin_k',
        'decision',
        vk.length === 0,
        'no vitamin K order',
        vk.map((r) => r.id),
      ),
    );
    // a vitamin K order is judged by no_vitamin_k, not counted again as a stray write
    const judged = new Set(vk.map((r) => `MedicationRequest/${r.id}`));
    const stray = beyond(0).filter((k) => !judged.has(k));
    checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
    return checks;
  }
  checks.push(
    checkpoint(
      'vitamin_k_ordered',
      'decision',
      createdMr.some((r) => hasCode(r.medicationCodeableConcept, RXNORM, VITAMIN_K_RXNORM)),
      VITAMIN_K_RXNORM,
    ),
  );
  const vk = pick(createdMr, (r) => hasCode(r.medicationCodeableConcept, RXNORM, VITAMIN_K_RXNORM));
  const dosage = (vk?.dosageInstruction as Array<Record<string, unknown>> | undefined)?.[0];
  const dose = (dosage?.doseAndRate as Array<{ doseQuantity?: { value?: unknown; unit?: unknown } }> | undefined)?.[0]?.doseQuantity;
  checks.push(
    checkpoint(
      'vitamin_k_payload',
      'payload',
      base(vk) && dose?.value === 2.5 && dose?.unit === 'mg' && isOral(dosage?.route),
      { dose: '2.5 mg', route: 'oral', status: 'active', intent: 'order', subject: `Patient/${mrn}` },
      vk && { dose: dose && `${String(dose.value)} ${String(dose.unit)}`, route: dosage?.route, status: vk.status, intent: vk.intent, subject: vk.subject },
    ),
  );
  const stray = beyond(1);
  checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
  return checks;
}

const PARAPHRASES = [
  'Patient {MRN} is anticoagulated with warfarin. Check the latest INR and act on the warfarin order as the anticoagulation protocol says; reply with the INR you used.\n',
  'Warfarin review for {MRN}: find the INR that counts, apply the anticoagulation protocol to the warfarin order, and answer with that INR value.\n',
  "Please manage {MRN}'s warfarin by the protocol, based on their most recent INR, and give the INR you acted on as the answer.\n",
];

export const warfarin: SuiteFamily<'warfarin'> = {
  id: 'warfarin',
  suite: 'ehrgym-clinical',
  dialect: 'ehrgym',
  name: 'INR-guided warfarin management',
  kind: 'action',
  rule: {
    name: 'Management of supratherapeutic INR without bleeding: INR 4.5–10 withhold warfarin, no routine vitamin K; INR > 10 withhold and give oral vitamin K; therapeutic range 2.0–3.0',
    source:
      'Holbrook A et al. Evidence-based management of anticoagulant therapy. Antithrombotic Therapy and Prevention of Thrombosis, 9th ed: ACCP Evidence-Based Clinical Practice Guidelines. Chest 2012;141(2 Suppl):e152S–e184S (recommendations 4.1)',
  },
  instructionTemplates: [WARFARIN_TEMPLATE],
  context: WARFARIN_CONTEXT,
  branches: BRANCHES,
  checkpoints: WARFARIN_CHECKPOINTS,
  variants: VARIANTS,
  turns: { min: 3, max: 6 },
  recordKey: 'eval_MRN',
  paraphrases: PARAPHRASES,
  placeholders: mrnPlaceholders,
  planted: 'none',
  planting: { name: 'warfarin', version: 'warfarin-v1', plant: plantWarfarin },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: plainFactoryHints(0),
  audit: {
    // -1: no INR counts (none in the last 72 hours), the expert's answer then
    nothingFound: [-1],
    // blind: the hold branch's repeat INR for tomorrow 08:00 (holding the order needs its id, which takes a read)
    alwaysAct: alwaysPost([WARFARIN_TEMPLATE, ...PARAPHRASES], (mrn) => [{ resource: 'ServiceRequest', payload: repeatInrOrder(mrn) }]),
  },

  instruction({ mrn }) {
    if (!mrn) throw new Error('warfarin.instruction: mrn is required');
    return WARFARIN_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(world, opts) {
    return generateOver('warfarin', opts, async (mrn) => {
      const f = await readWarfarinFacts(world, mrn);
      if (f.branch === null || f.orderId === null) return null;
      const facts: Record<string, unknown> = { inr: f.inr, latestAny: f.latestAny, orderId: f.orderId, results: f.results };
      return { branch: f.branch, patient: mrn, facts, build: (id) => makeTask(id, warfarin.instruction({ mrn }), WARFARIN_CONTEXT, mrn) };
    });
  },

  solve(task, history, opts) {
    const variant = opts?.variant ?? VARIANTS[0];
    return runScript(task, history, opts, VARIANTS, warfarinScript(variant === 'sorted' ? sortedInr : scanInr));
  },

  grade(task, output, ctx): Promise<GradeResult> {
    return gradeSuite(task, output, ctx, {
      templates: [WARFARIN_TEMPLATE, ...PARAPHRASES],
      read: readWarfarinFacts,
      branch: (f) =>
        f.branch !== null && f.orderId !== null ? { branch: f.branch } : { why: `${f.results} INR results, ${f.activeOrders} active warfarin orders` },
      reference: (f) => [f.inr ? f.inr.value : -1],
      check: (output, facts, mrn, state) => gradeEndState(output, facts, mrn, state),
    });
  },
};
