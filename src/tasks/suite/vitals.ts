/**
 * vitals — chart a bedside vital-sign set in standard FHIR R4 form, after a two-identifier check (clinical suite,
 * documentation; docs/tasks.md).
 *
 * Standards: HL7 FHIR R4 (v4.0.1) Vital Signs profile (http://hl7.org/fhir/R4/observation-vitalsigns.html): status,
 * category `vital-signs`, a LOINC code per vital, subject, effective[x], valueQuantity in UCUM; blood pressure as one
 * 85354-9 panel with systolic 8480-6 and diastolic 8462-4 components and no value of its own; oxygen saturation 2708-6
 * (the R4 Oxygen Saturation profile). Patient identification: The Joint Commission, National Patient Safety Goals,
 * NPSG.01.01.01 ("use at least two patient identifiers"): name and date of birth must match the MRN's record.
 *
 * The nurse's read-out (time, name, DOB, MRN, values) is in the instruction; the grader parses it back. Branches:
 * `chart` (five Observations), `identity_mismatch` (the name and DOB are those of a near-duplicate patient with another
 * MRN: chart nothing), `already_charted` (a monitor interface already charted the same set at that minute, often past
 * the first page: chart nothing). Decoys on `chart`: the same values a day earlier, or an entered-in-error set at the
 * same minute. Except on an identity mismatch, the answer carries the last blood pressure charted before the set (the
 * trend a nurse compares with), which only the record holds: charting blind and answering "charted" passes nothing.
 */
import type { Resource } from '../../fhir/types.js';
import { DAY, fmtMinute, MINUTE, NOW_MS } from '../../worlds/clinical.js';
import { BP_DIASTOLIC, BP_LOINC, BP_SYSTOLIC, LOINC, UCUM } from '../../worlds/catalog.js';
import { type Rng, rngFor } from '../../worlds/prng.js';
import type { PlantPatient } from '../../worlds/synthetic.js';
import { type Checkpoint, checkpoint } from '../checkpoints.js';
import {
  alwaysPost,
  generateOver,
  makeTask,
  matchTemplate,
  mrnDetector,
  plainFactoryHints,
  runScript,
  type ScriptIO,
  SolverError,
  worldJson,
} from '../common.js';
import type { EndState } from '../endstate.js';
import { codings, gradeSuite, hasCode, VALID_RESULT_STATUSES } from './kit.js';
import type { GradeResult, SuiteFamily, TaskCase, TaskOutput, WorldAccess } from '../types.js';

export const VITALS_TEMPLATE =
  'Chart these bedside vital signs taken at {TIME}: patient {NAME}, born {DOB}, MRN {MRN}. BP {SYS}/{DIA} mmHg, heart rate {HR}/min, respiratory rate {RR}/min, SpO2 {SAT} % on room air, temperature {TEMP} °F. ' +
  'Record them as FHIR R4 vital-signs Observations. Before charting, confirm with two identifiers (name and date of birth) that the MRN belongs to this patient; do not chart if they do not match, and do not chart a duplicate if this set is already in the record. ' +
  'Finish with ["charted" | "identity-mismatch" | "already-charted", FHIR id of the MRN\'s Patient, the last blood pressure charted before this set as "SYS/DIA" (null on an identity mismatch)].\n';

const PARAPHRASES = [
  'Nurse hand-off: {NAME}, DOB {DOB}, MRN {MRN} — vitals at {TIME}: BP {SYS}/{DIA}, HR {HR}, RR {RR}, SpO2 {SAT} %, T {TEMP} °F. Verify name + DOB against the MRN, make sure the set isn\'t already charted, then chart it in FHIR R4 vital-signs form. Answer [outcome, Patient id, previous BP "SYS/DIA" or null on a mismatch] with outcome "charted", "identity-mismatch" or "already-charted".\n',
  'The monitor interface was down at {TIME}; manually chart {NAME} (DOB {DOB}, MRN {MRN}): BP {SYS}/{DIA} mmHg, pulse {HR}, respirations {RR}, SpO2 {SAT} %, temperature {TEMP} °F — only after a two-identifier check and only if not already charted. Answer ["charted" | "identity-mismatch" | "already-charted", Patient id, the BP charted before this set as "SYS/DIA" (null if the identifiers do not match)].\n',
  'Please document the vital signs of {NAME}, born {DOB}, MRN {MRN}, measured at {TIME} (BP {SYS}/{DIA} mmHg, heart rate {HR}/min, respiratory rate {RR}/min, SpO2 {SAT} %, temperature {TEMP} °F) as R4 vital-signs Observations, once name and date of birth are confirmed against the MRN and provided the set is not charted yet. Reply ["charted" | "identity-mismatch" | "already-charted", the Patient\'s FHIR id, the last blood pressure charted before this set as "SYS/DIA" (null on an identity mismatch)].\n',
];

export const VITALS_CONTEXT =
  "It's 2023-11-13T10:15:00+00:00 now. Use the FHIR R4 vital signs profile: status final; category vital-signs (http://terminology.hl7.org/CodeSystem/observation-category); " +
  'LOINC (http://loinc.org) 85354-9 blood pressure panel with components 8480-6 systolic and 8462-4 diastolic (mm[Hg]) and no value of its own; 8867-4 heart rate (/min); 9279-1 respiratory rate (/min); 2708-6 oxygen saturation (%); 8310-5 body temperature (Cel or [degF]); ' +
  'valueQuantity with UCUM (http://unitsofmeasure.org) codes; subject the patient; effectiveDateTime the time the set was taken. ' +
  "The name and the date of birth must both match the MRN's Patient record. A set is already charted when a blood pressure panel with the same systolic and diastolic values, taken at the same minute, stands in the record (status final, amended or corrected). The last blood pressure charted before the set is the latest blood pressure panel standing in the record taken before the set's time.";

export const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const HR_LOINC = '8867-4';
export const RR_LOINC = '9279-1';
export const SPO2_LOINC = '2708-6';
/** The pulse-oximetry code the world's flowsheets use; accepted as an extra coding beside 2708-6. */
export const SPO2_PULSE_OX_LOINC = '59408-5';
export const TEMP_LOINC = '8310-5';

export type VitalsBranch = 'chart' | 'identity_mismatch' | 'already_charted';
const BRANCHES: readonly VitalsBranch[] = ['chart', 'identity_mismatch', 'already_charted'];
export const OUTCOME: Readonly<Record<VitalsBranch, string>> = { chart: 'charted', identity_mismatch: 'identity-mismatch', already_charted: 'already-charted' };

/** Checkpoints per branch, in the order an expert works (identify, look for the set, write each field, nothing else). */
export const VITALS_CHECKPOINTS: Readonly<Record<VitalsBranch, readonly string[]>> = {
  chart: [
    'finished',
    'answer',
    'identity_check',
    'duplicate_check',
    'previous_bp',
    'vitals_charted',
    'status_final',
    'category_vital_signs',
    'loinc_codes',
    'subject',
    'effective_time',
    'bp_panel_structure',
    'ucum_units',
    'values',
    'no_other_writes',
  ],
  identity_mismatch: ['finished', 'answer', 'identity_check', 'no_writes'],
  already_charted: ['finished', 'answer', 'identity_check', 'duplicate_check', 'previous_bp', 'no_writes'],
};

// ---------------------------------------------------------------------------------------------------------------
// The bedside set

/** A read-out: the time (minute precision) and the values (temperature in °F, one decimal). */
export interface BedsideSet {
  time: string;
  sys: number;
  dia: number;
  hr: number;
  rr: number;
  sat: number;
  tempF: number;
}

/** The set the nurse reads out for a patient (a fixed function of the MRN, shared by the planting and the generator). */
export function bedsideSet(mrn: string): BedsideSet {
  const r = rngFor('vitals-bedside-v1', mrn);
  const sys = r.int(96, 168);
  return {
    time: fmtMinute(NOW_MS - r.int(10, 90) * MINUTE),
    sys,
    dia: r.int(52, Math.min(98, sys - 28)),
    hr: r.int(52, 118),
    rr: r.int(12, 24),
    sat: r.int(91, 100),
    tempF: r.int(970, 1008) / 10,
  };
}

/** °F → °C, one decimal. */
export const fToC = (f: number): number => Math.round((((f - 32) * 5) / 9) * 10) / 10;

/** The placeholder values of a read-out. */
function placeholderValues(mrn: string, name: string, dob: string, s: BedsideSet): Record<string, string> {
  return {
    TIME: s.time,
    NAME: name,
    DOB: dob,
    MRN: mrn,
    SYS: String(s.sys),
    DIA: String(s.dia),
    HR: String(s.hr),
    RR: String(s.rr),
    SAT: String(s.sat),
    TEMP: s.tempF.toFixed(1),
  };
}
const fill = (template: string, values: Record<string, string>): string => template.replace(/\{([A-Z]+)\}/g, (m, k: string) => values[k] ?? m);

/** What a task's instruction says (by the template or a paraphrase). */
export interface ReadOut {
  mrn: string;
  name: string;
  dob: string;
  set: BedsideSet;
}

export function readOut(task: TaskCase): ReadOut {
  for (const t of [VITALS_TEMPLATE, ...PARAPHRASES]) {
    const m = matchTemplate(t, task.instruction);
    if (!m?.MRN) continue;
    const num = (k: string) => Number(m[k]);
    const set: BedsideSet = { time: m.TIME!, sys: num('SYS'), dia: num('DIA'), hr: num('HR'), rr: num('RR'), sat: num('SAT'), tempF: num('TEMP') };
    if (Object.values(set).some((v) => typeof v === 'number' && !Number.isFinite(v)) || !Number.isFinite(Date.parse(set.time))) continue;
    return { mrn: m.MRN, name: m.NAME!, dob: m.DOB!, set };
  }
  throw new SolverError(`${task.id}: cannot read the vital-sign set from the instruction`);
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the record

const entriesOf = (bundle: unknown): Array<Record<string, unknown>> => {
  const e = (bundle as { entry?: unknown } | undefined)?.entry;
  return Array.isArray(e) ? e.map((x) => (x as { resource?: Record<string, unknown> })?.resource).filter((r): r is Record<string, unknown> => !!r) : [];
};
const hasCodeValue = (cc: unknown, code: string): boolean => codings(cc).some((c) => c?.code === code);
const sameMinute = (a: unknown, b: string): boolean => typeof a === 'string' && /T\d\d:\d\d/.test(a) && Date.parse(a) === Date.parse(b);
const componentValue = (r: Record<string, unknown>, code: string): unknown => {
  const comps = Array.isArray(r.component) ? (r.component as Array<Record<string, unknown>>) : [];
  return (comps.find((c) => hasCodeValue(c.code, code))?.valueQuantity as { value?: unknown } | undefined)?.value;
};

/** The official name of a Patient as "Given Family". */
export function patientName(p: Record<string, unknown>): string {
  const names = Array.isArray(p.name) ? (p.name as Array<{ use?: string; given?: string[]; family?: string }>) : [];
  const n = names.find((x) => x.use === 'official') ?? names[0];
  return [...(n?.given ?? []), n?.family ?? ''].join(' ').trim();
}
const norm = (s: string) => s.trim().replace(/\s+/g, ' ').toLowerCase();
/** The two-identifier check: name (case-insensitive) and date of birth both match the record. */
export const identityMatches = (p: Record<string, unknown>, name: string, dob: string): boolean => norm(patientName(p)) === norm(name) && p.birthDate === dob;

/**
 * The blood pressure panels standing at the set's minute in a bundle of Observations: `same` with the set's systolic
 * and diastolic values (the set is already charted), `other` with other values.
 */
export function panelsAt(bundle: unknown, set: BedsideSet): { same: Array<Record<string, unknown>>; other: Array<Record<string, unknown>> } {
  const same: Array<Record<string, unknown>> = [];
  const other: Array<Record<string, unknown>> = [];
  for (const r of entriesOf(bundle)) {
    if (!hasCodeValue(r.code, BP_LOINC.code) || !VALID_RESULT_STATUSES.includes(String(r.status)) || !sameMinute(r.effectiveDateTime, set.time)) continue;
    if (componentValue(r, BP_SYSTOLIC.code) === set.sys && componentValue(r, BP_DIASTOLIC.code) === set.dia) same.push(r);
    else other.push(r);
  }
  return { same, other };
}

/**
 * The last blood pressure charted before the set, as "SYS/DIA": the latest standing panel (status final, amended or
 * corrected) with an effective time before the set's minute. Every value at that latest instant is returned (a tie is
 * read either way); empty when there is none.
 */
export function previousBp(bundle: unknown, set: BedsideSet): string[] {
  const at = Date.parse(set.time);
  let latest = -Infinity;
  let values: string[] = [];
  for (const r of entriesOf(bundle)) {
    if (!hasCodeValue(r.code, BP_LOINC.code) || !VALID_RESULT_STATUSES.includes(String(r.status))) continue;
    const t = typeof r.effectiveDateTime === 'string' && /T\d\d:\d\d/.test(r.effectiveDateTime) ? Date.parse(r.effectiveDateTime) : Number.NaN;
    const sys = componentValue(r, BP_SYSTOLIC.code);
    const dia = componentValue(r, BP_DIASTOLIC.code);
    if (!(t < at) || typeof sys !== 'number' || typeof dia !== 'number') continue;
    const v = `${sys}/${dia}`;
    if (t > latest) {
      latest = t;
      values = [v];
    } else if (t === latest && !values.includes(v)) values.push(v);
  }
  return values;
}

const bpQuery = (mrn: string) => `Observation?patient=${mrn}&code=${BP_LOINC.code}&_count=5000`;

/** A near-duplicate of a patient among all patients: same name with another birth date, or same birth date with another family name. */
export function nearDuplicateOf(p: Record<string, unknown>, all: ReadonlyArray<Record<string, unknown>>): Record<string, unknown> | null {
  const name = norm(patientName(p));
  const family = norm(String((p.name as Array<{ family?: string }> | undefined)?.[0]?.family ?? ''));
  for (const q of all) {
    if (q.id === p.id) continue;
    const qFamily = norm(String((q.name as Array<{ family?: string }> | undefined)?.[0]?.family ?? ''));
    if (norm(patientName(q)) === name && q.birthDate !== p.birthDate) return q;
    if (q.birthDate === p.birthDate && qFamily !== family) return q;
  }
  return null;
}

const allPatients = new WeakMap<WorldAccess, Promise<Array<Record<string, unknown>>>>();
function patientsOf(world: WorldAccess): Promise<Array<Record<string, unknown>>> {
  let p = allPatients.get(world);
  if (!p) {
    p = worldJson(world, 'Patient?_count=5000').then((b) => entriesOf(b));
    allPatients.set(world, p);
  }
  return p;
}

/** What a task's reference is, read from the world and the read-out (grader and generator share it). */
export interface VitalsFacts {
  branch: VitalsBranch | null;
  /** The MRN's Patient id. */
  patientId: string | null;
  /** The already-charted panel's id. */
  duplicateId: string | null;
  /** The last blood pressure before the set ("SYS/DIA", every value at the latest instant; empty on a mismatch). */
  previousBp: string[];
  why?: string;
}

export async function readVitalsFacts(world: WorldAccess, r: ReadOut): Promise<VitalsFacts> {
  const patient = entriesOf(await worldJson(world, `Patient?identifier=${r.mrn}`))[0];
  if (!patient) return { branch: null, patientId: null, duplicateId: null, previousBp: [], why: 'no Patient with this MRN' };
  const patientId = String(patient.id);
  if (!identityMatches(patient, r.name, r.dob)) return { branch: 'identity_mismatch', patientId, duplicateId: null, previousBp: [] };
  const panels = await worldJson(world, bpQuery(patientId));
  const { same, other } = panelsAt(panels, r.set);
  const previous = previousBp(panels, r.set);
  if (other.length > 0) return { branch: null, patientId, duplicateId: null, previousBp: previous, why: 'a different set stands at that minute' };
  if (previous.length === 0) return { branch: null, patientId, duplicateId: null, previousBp: previous, why: 'no blood pressure before the set' };
  if (same.length > 0) return { branch: 'already_charted', patientId, duplicateId: String(same[0]!.id), previousBp: previous };
  return { branch: 'chart', patientId, duplicateId: null, previousBp: previous };
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads

const CATEGORY = [{ coding: [{ system: OBS_CATEGORY, code: 'vital-signs', display: 'Vital Signs' }] }];
const loinc = (code: string, display: string) => ({ coding: [{ system: LOINC, code, display }], text: display });
const qty = (value: number, unit: string, code: string) => ({ value, unit, system: UCUM, code });

/** The five Observations of a set for a patient, in the expert's order: BP panel, heart rate, respiratory rate, SpO2, temperature. */
export function vitalsObservations(patientId: string, s: BedsideSet): Array<Record<string, unknown>> {
  const base = (code: Record<string, unknown>) => ({
    resourceType: 'Observation',
    status: 'final',
    category: CATEGORY,
    code,
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: s.time,
  });
  return [
    {
      ...base(loinc(BP_LOINC.code, 'Blood pressure panel with all children optional')),
      component: [
        { code: loinc(BP_SYSTOLIC.code, BP_SYSTOLIC.display), valueQuantity: qty(s.sys, 'mmHg', 'mm[Hg]') },
        { code: loinc(BP_DIASTOLIC.code, BP_DIASTOLIC.display), valueQuantity: qty(s.dia, 'mmHg', 'mm[Hg]') },
      ],
    },
    { ...base(loinc(HR_LOINC, 'Heart rate')), valueQuantity: qty(s.hr, 'beats/minute', '/min') },
    { ...base(loinc(RR_LOINC, 'Respiratory rate')), valueQuantity: qty(s.rr, 'breaths/minute', '/min') },
    {
      ...base({
        coding: [
          { system: LOINC, code: SPO2_LOINC, display: 'Oxygen saturation in Arterial blood' },
          { system: LOINC, code: SPO2_PULSE_OX_LOINC, display: 'Oxygen saturation in Arterial blood by Pulse oximetry' },
        ],
        text: 'SpO2',
      }),
      valueQuantity: qty(s.sat, '%', '%'),
    },
    { ...base(loinc(TEMP_LOINC, 'Body temperature')), valueQuantity: qty(s.tempF, 'degF', '[degF]') },
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Expert policy

/** How a policy finds the patient and the standing panels (the expert's; tests plug in trap readers). */
export interface VitalsReader {
  /** The Patient the instruction's MRN names (null: none). */
  patient(io: ScriptIO, r: ReadOut): Record<string, unknown> | null;
  /** The patient's blood pressure panels as read (a Bundle): whether the set is charted, and the BP before it. */
  panels(io: ScriptIO, patientId: string, r: ReadOut): unknown;
  /** Whether the identifiers match (default: the two-identifier check). */
  matches?(p: Record<string, unknown>, r: ReadOut): boolean;
}

const byMrn = (io: ScriptIO, r: ReadOut) => entriesOf(io.json(`${io.apiBase}Patient?identifier=${r.mrn}`))[0] ?? null;

/** Variant `code`: every BP panel of the patient (`_count=5000`). */
export const codeReader: VitalsReader = {
  patient: byMrn,
  panels: (io, id) => io.json(`${io.apiBase}${bpQuery(id)}`),
};
/** Variant `category`: every vital sign of the patient (`category=vital-signs`, `_count=5000`). */
export const categoryReader: VitalsReader = {
  patient: byMrn,
  panels: (io, id) => io.json(`${io.apiBase}Observation?patient=${id}&category=vital-signs&_count=5000`),
};

/**
 * Variant `window`: the BP panels of the set's day only (`date=YYYY-MM-DD`): short observations, the factory's rows.
 * The set is taken 10–90 minutes before now and the record holds a set every 6 h (± 1 h), so the last BP before it is
 * on the same day.
 */
export const windowReader: VitalsReader = {
  patient: byMrn,
  panels: (io, id, r) => io.json(`${io.apiBase}Observation?patient=${id}&code=${BP_LOINC.code}&date=${r.set.time.slice(0, 10)}`),
};

const VARIANTS = ['code', 'category', 'window'] as const;

/** The expert's script with a given reader: identify, look for the set, chart it, answer. */
export function vitalsScript(reader: VitalsReader): (io: ScriptIO, task: TaskCase) => void {
  return (io, task) => {
    const r = readOut(task);
    const p = reader.patient(io, r);
    if (!p) io.finish(['identity-mismatch', null, null]);
    const id = String(p!.id);
    if (!(reader.matches ?? ((q, x) => identityMatches(q, x.name, x.dob)))(p!, r)) io.finish(['identity-mismatch', id, null]);
    const panels = reader.panels(io, id, r);
    const previous = previousBp(panels, r.set)[0] ?? null;
    if (panelsAt(panels, r.set).same.length > 0) io.finish(['already-charted', id, previous]);
    for (const o of vitalsObservations(id, r.set)) io.post(`${io.apiBase}Observation`, o);
    io.finish(['charted', id, previous]);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Planting

/** Sets over the last two days (one every 6 h, ± 1 h) planted as background on every patient. */
const BACKGROUND_SETS = 8;

type Scenario = 'already' | 'yesterday' | 'entered-in-error' | 'plain';

function observation(mrn: string, t: string, status: string, code: Record<string, unknown>, rest: Record<string, unknown>, device: boolean): Resource {
  const r: Resource = {
    resourceType: 'Observation',
    status,
    category: CATEGORY,
    code,
    subject: { reference: `Patient/${mrn}` },
    effectiveDateTime: t,
    issued: t,
    ...rest,
  };
  if (device) r.device = { display: 'Bedside monitor interface' };
  else r.performer = [{ display: 'Ward nurse' }];
  return r;
}

/** One charted set (BP panel and heart rate; `full` adds respiratory rate, SpO2 and temperature in Cel). */
function chartedSet(mrn: string, s: BedsideSet, status: string, full: boolean, device: boolean): Resource[] {
  const obs = (code: Record<string, unknown>, rest: Record<string, unknown>) => observation(mrn, s.time, status, code, rest, device);
  const out = [
    obs(loinc(BP_LOINC.code, 'Blood pressure panel with all children optional'), {
      component: [
        { code: loinc(BP_SYSTOLIC.code, BP_SYSTOLIC.display), valueQuantity: qty(s.sys, 'mmHg', 'mm[Hg]') },
        { code: loinc(BP_DIASTOLIC.code, BP_DIASTOLIC.display), valueQuantity: qty(s.dia, 'mmHg', 'mm[Hg]') },
      ],
    }),
    obs(loinc(HR_LOINC, 'Heart rate'), { valueQuantity: qty(s.hr, 'beats/minute', '/min') }),
  ];
  if (full)
    out.push(
      obs(loinc(RR_LOINC, 'Respiratory rate'), { valueQuantity: qty(s.rr, 'breaths/minute', '/min') }),
      obs(loinc(SPO2_PULSE_OX_LOINC, 'Oxygen saturation in Arterial blood by Pulse oximetry'), { valueQuantity: qty(s.sat, '%', '%') }),
      obs(loinc(TEMP_LOINC, 'Body temperature'), { valueQuantity: qty(fToC(s.tempF), 'C', 'Cel') }),
    );
  return out;
}

/** A patient's vital signs: background sets of the last two days, and the scenario's set or decoy, in shuffled server order. */
function plantVitals(p: PlantPatient, rng: Rng): Resource[] {
  const s = bedsideSet(p.mrn);
  const scenario = rng.weighted<Scenario>(['already', 'yesterday', 'entered-in-error', 'plain'], [0.4, 0.2, 0.2, 0.2]);
  const sets: Resource[][] = [];
  for (let k = 1; k <= BACKGROUND_SETS; k++) {
    const sys = rng.int(98, 165);
    const bg: BedsideSet = {
      time: fmtMinute(NOW_MS - k * 360 * MINUTE + rng.int(-60, 60) * MINUTE),
      sys,
      dia: rng.int(52, Math.min(98, sys - 28)),
      hr: rng.int(55, 115),
      rr: rng.int(12, 24),
      sat: rng.int(91, 100),
      tempF: rng.int(970, 1008) / 10,
    };
    sets.push(chartedSet(p.mrn, bg, 'final', true, rng.chance(0.5)));
  }
  for (let i = sets.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [sets[i], sets[j]] = [sets[j]!, sets[i]!];
  }
  const flat = sets.flat();
  let special: Resource[] = [];
  if (scenario === 'already') special = chartedSet(p.mrn, s, 'final', true, true);
  else if (scenario === 'yesterday') special = chartedSet(p.mrn, { ...s, time: fmtMinute(Date.parse(s.time) - DAY) }, 'final', false, false);
  else if (scenario === 'entered-in-error') special = chartedSet(p.mrn, s, 'entered-in-error', false, true);
  // the scenario's set after the first 20 planted vitals
  const at = Math.min(flat.length, rng.int(20, flat.length));
  flat.splice(at, 0, ...special);
  return flat;
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

/** The answer `[outcome, patient id, previous BP]`, or why it is not one. */
function answerOf(result: TaskOutput['result']): { label: string; id: unknown; bp: unknown } | { problem: string; cls: 'protocol' | 'lookup' } {
  if (typeof result !== 'string') return { problem: 'no answer', cls: 'protocol' };
  let v: unknown;
  try {
    v = JSON.parse(result);
  } catch {
    return { problem: 'the answer is not JSON', cls: 'protocol' };
  }
  if (!Array.isArray(v) || v.length !== 3 || typeof v[0] !== 'string')
    return { problem: 'the answer is not [outcome, patient id, previous BP]', cls: 'lookup' };
  const label = v[0].trim().toLowerCase();
  if (!Object.values(OUTCOME).includes(label)) return { problem: `unknown outcome ${JSON.stringify(v[0])}`, cls: 'lookup' };
  return { label, id: v[1], bp: v[2] };
}

async function gradeEndState(output: TaskOutput, facts: VitalsFacts, r: ReadOut, state: EndState): Promise<Checkpoint[]> {
  const branch = facts.branch!;
  const pid = facts.patientId!;
  const checks: Checkpoint[] = [];
  const a = answerOf(output.result);
  const want = [OUTCOME[branch], pid, branch === 'identity_mismatch' ? null : facts.previousBp[0]];
  if ('label' in a) {
    const idOk = a.id === pid || a.id === `Patient/${pid}`;
    checks.push(checkpoint('answer', 'lookup', idOk, want, [a.label, a.id, a.bp], "the answer names the MRN's Patient"));
  } else checks.push(checkpoint('answer', a.cls, false, want, output.result, a.problem));
  const label = 'label' in a ? a.label : '';
  checks.push(
    checkpoint(
      'identity_check',
      'decision',
      branch === 'identity_mismatch' ? label === OUTCOME.identity_mismatch : label !== OUTCOME.identity_mismatch,
      branch === 'identity_mismatch' ? 'identity-mismatch' : 'identity confirmed',
      label,
    ),
  );
  const touched = state.touched();
  if (branch === 'identity_mismatch') {
    checks.push(checkpoint('no_writes', 'decision', touched.length === 0, [], touched));
    return checks;
  }
  // the outcome beside identity: a decoy is no duplicate, a duplicate on any page is one
  checks.push(
    checkpoint(
      'duplicate_check',
      'lookup',
      branch === 'already_charted' ? label !== OUTCOME.chart : label !== OUTCOME.already_charted,
      branch === 'already_charted' ? { alreadyCharted: facts.duplicateId } : 'not charted yet',
      label,
    ),
  );
  // the BP before the set, as "SYS/DIA" (spaces around the slash allowed)
  const givenBp = 'bp' in a && typeof a.bp === 'string' ? a.bp.replace(/\s+/g, '') : null;
  checks.push(
    checkpoint(
      'previous_bp',
      'lookup',
      givenBp !== null && facts.previousBp.includes(givenBp),
      facts.previousBp.length === 1 ? facts.previousBp[0] : facts.previousBp,
      'bp' in a ? a.bp : null,
      'the last blood pressure charted before the set',
    ),
  );
  if (branch === 'already_charted') {
    checks.push(checkpoint('no_writes', 'decision', touched.length === 0, [], touched));
    return checks;
  }
  const created = await state.created('Observation');
  const find = (codes: string[]) => created.find((o) => codes.some((c) => hasCodeValue(o.code, c)));
  // a blood pressure charted as separate systolic/diastolic Observations is judged by bp_panel_structure
  const bp = find([BP_LOINC.code]) ?? find([BP_SYSTOLIC.code, BP_DIASTOLIC.code]);
  const hr = find([HR_LOINC]);
  const rr = find([RR_LOINC]);
  const sat = find([SPO2_LOINC, SPO2_PULSE_OX_LOINC]);
  const temp = find([TEMP_LOINC]);
  const vitals: Array<[string, Resource | undefined]> = [
    ['blood pressure', bp],
    ['heart rate', hr],
    ['respiratory rate', rr],
    ['oxygen saturation', sat],
    ['body temperature', temp],
  ];
  const found = vitals.filter((v): v is [string, Resource] => !!v[1]);
  const missing = vitals.filter((v) => !v[1]).map((v) => v[0]);
  checks.push(
    checkpoint(
      'vitals_charted',
      'decision',
      missing.length === 0,
      vitals.map((v) => v[0]),
      found.map((v) => v[0]),
      missing.length ? `missing: ${missing.join(', ')}` : undefined,
    ),
  );
  /** A payload checkpoint over every charted vital: the names of those that fail `ok`. */
  const each = (name: string, ok: (o: Resource, what: string) => boolean, expected: unknown) => {
    const bad = found.filter(([what, o]) => !ok(o, what)).map(([what]) => what);
    checks.push(checkpoint(name, 'payload', bad.length === 0, expected, bad.length ? { wrong: bad } : 'all', undefined));
  };
  each('status_final', (o) => o.status === 'final', 'final');
  each(
    'category_vital_signs',
    (o) => (Array.isArray(o.category) ? o.category : []).some((c) => hasCode(c, OBS_CATEGORY, 'vital-signs')),
    `${OBS_CATEGORY}|vital-signs`,
  );
  const wantCode: Record<string, string> = {
    'blood pressure': BP_LOINC.code,
    'heart rate': HR_LOINC,
    'respiratory rate': RR_LOINC,
    'oxygen saturation': SPO2_LOINC,
    'body temperature': TEMP_LOINC,
  };
  each('loinc_codes', (o, what) => hasCode(o.code, LOINC, wantCode[what]!), Object.fromEntries(Object.entries(wantCode).map(([k, v]) => [k, `${LOINC}|${v}`])));
  each('subject', (o) => (o.subject as { reference?: unknown } | undefined)?.reference === `Patient/${pid}`, `Patient/${pid}`);
  each('effective_time', (o) => sameMinute(o.effectiveDateTime, r.set.time), r.set.time);
  const comps = bp && Array.isArray(bp.component) ? (bp.component as Array<Record<string, unknown>>) : [];
  const hasValue = bp ? Object.keys(bp).some((k) => k.startsWith('value')) : false;
  checks.push(
    checkpoint(
      'bp_panel_structure',
      'payload',
      !!bp &&
        hasCodeValue(bp.code, BP_LOINC.code) &&
        !hasValue &&
        comps.some((c) => hasCodeValue(c.code, BP_SYSTOLIC.code)) &&
        comps.some((c) => hasCodeValue(c.code, BP_DIASTOLIC.code)),
      'one 85354-9 panel, no value of its own, components 8480-6 and 8462-4',
      bp && { value: hasValue, components: comps.map((c) => codings(c.code).map((x) => x.code)) },
    ),
  );
  const quantity = (q: unknown) => (q ?? {}) as { value?: unknown; system?: unknown; code?: unknown };
  const compQty = (code: string) => quantity(comps.find((c) => hasCodeValue(c.code, code))?.valueQuantity);
  const unitsOk = (o: Resource, what: string): boolean => {
    const ucum = (q: ReturnType<typeof quantity>, codes: string[]) => q.system === UCUM && codes.includes(String(q.code));
    if (what === 'blood pressure') return ucum(compQty(BP_SYSTOLIC.code), ['mm[Hg]']) && ucum(compQty(BP_DIASTOLIC.code), ['mm[Hg]']);
    const q = quantity(o.valueQuantity);
    if (what === 'oxygen saturation') return ucum(q, ['%']);
    if (what === 'body temperature') return ucum(q, ['Cel', '[degF]']);
    return ucum(q, ['/min']);
  };
  each('ucum_units', unitsOk, { bp: 'mm[Hg]', hr: '/min', rr: '/min', spo2: '%', temp: 'Cel or [degF]' });
  const valuesOk = (o: Resource, what: string): boolean => {
    const q = quantity(o.valueQuantity);
    if (what === 'blood pressure') return compQty(BP_SYSTOLIC.code).value === r.set.sys && compQty(BP_DIASTOLIC.code).value === r.set.dia;
    if (what === 'heart rate') return q.value === r.set.hr;
    if (what === 'respiratory rate') return q.value === r.set.rr;
    if (what === 'oxygen saturation') return q.value === r.set.sat;
    if (typeof q.value !== 'number') return false;
    // °F exact, or °C to one decimal (± 0.05); a unit that is neither is judged by ucum_units
    return q.code === 'Cel' ? Math.abs(q.value - ((r.set.tempF - 32) * 5) / 9) <= 0.05 + 1e-9 : Math.abs(q.value - r.set.tempF) < 1e-9;
  };
  each('values', valuesOk, { sys: r.set.sys, dia: r.set.dia, hr: r.set.hr, rr: r.set.rr, spo2: r.set.sat, tempF: r.set.tempF });
  // besides five created Observations, nothing (a sixth Observation, an update, another type)
  const stray: string[] = [];
  let obs = 0;
  for (const k of touched) {
    const created = state.writes.some((w) => w.method === 'POST' && `${w.type}/${w.id}` === k);
    if (created && k.startsWith('Observation/') && obs++ < 5) continue;
    stray.push(k);
  }
  checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
  return checks;
}

export const vitals: SuiteFamily<'vitals'> = {
  id: 'vitals',
  suite: 'ehrgym-clinical',
  dialect: 'ehrgym',
  name: 'Bedside vital signs charted in FHIR R4 form with a two-identifier check',
  kind: 'action',
  rule: {
    name: 'FHIR R4 Vital Signs profile (category vital-signs, LOINC per vital, UCUM units, BP as a 85354-9 panel with 8480-6/8462-4 components, effective time, subject); two patient identifiers before care (Joint Commission NPSG.01.01.01)',
    source:
      'HL7 FHIR R4 (v4.0.1) Observation Vital Signs profile, http://hl7.org/fhir/R4/observation-vitalsigns.html (and Oxygen Saturation, http://hl7.org/fhir/R4/oxygensat.html); The Joint Commission, National Patient Safety Goals, NPSG.01.01.01 "Use at least two patient identifiers when providing care, treatment, and services"',
  },
  instructionTemplates: [VITALS_TEMPLATE],
  context: VITALS_CONTEXT,
  branches: BRANCHES,
  checkpoints: VITALS_CHECKPOINTS,
  variants: VARIANTS,
  turns: { min: 2, max: 8 },
  recordKey: 'eval_MRN',
  paraphrases: PARAPHRASES,
  placeholders: (task) => {
    try {
      const r = readOut(task);
      return placeholderValues(r.mrn, r.name, r.dob, r.set);
    } catch {
      return null;
    }
  },
  planted: 'none',
  planting: { name: 'vitals', version: 'vitals-v1', plant: plantVitals },
  detector: mrnDetector(),
  factory: plainFactoryHints(0),
  audit: {
    // no "nothing found" answer: every outcome names the patient
    nothingFound: null,
    // blind: chart the read-out for the MRN as given (no identity check, no duplicate check)
    alwaysAct: (task, history, opts) => {
      const r = readOut(task);
      return alwaysPost([VITALS_TEMPLATE, ...PARAPHRASES], (mrn) => vitalsObservations(mrn, r.set).map((payload) => ({ resource: 'Observation', payload })))(
        task,
        history,
        opts,
      );
    },
  },

  instruction({ mrn }) {
    if (!mrn) throw new Error('vitals.instruction: mrn is required');
    return fill(VITALS_TEMPLATE, { MRN: mrn });
  },

  generate(world, opts) {
    return generateOver('vitals', opts, async (mrn) => {
      const patient = entriesOf(await worldJson(world, `Patient?identifier=${mrn}`))[0];
      if (!patient) return null;
      const set = bedsideSet(mrn);
      // the read-out names a near-duplicate (identity mismatch) when the record holds one, else the patient
      const dup = nearDuplicateOf(patient, await patientsOf(world));
      const who = dup ?? patient;
      const r: ReadOut = { mrn, name: patientName(who), dob: String(who.birthDate), set };
      const f = await readVitalsFacts(world, r);
      if (f.branch === null) return null;
      const instruction = fill(VITALS_TEMPLATE, placeholderValues(mrn, r.name, r.dob, set));
      const facts: Record<string, unknown> = {
        patientId: f.patientId,
        duplicateId: f.duplicateId,
        previousBp: f.branch === 'identity_mismatch' ? null : f.previousBp[0],
        time: set.time,
        ...(dup ? { nearDuplicate: String(dup.id) } : {}),
      };
      return { branch: f.branch, patient: mrn, facts, build: (id) => makeTask(id, instruction, VITALS_CONTEXT, mrn) };
    });
  },

  solve(task, history, opts) {
    const variant = opts?.variant ?? VARIANTS[0];
    return runScript(task, history, opts, VARIANTS, vitalsScript(variant === 'category' ? categoryReader : variant === 'window' ? windowReader : codeReader));
  },

  grade(task, output, ctx): Promise<GradeResult> {
    return gradeSuite(task, output, ctx, {
      subject: readOut,
      label: (r) => `patient ${r.mrn}`,
      read: readVitalsFacts,
      branch: (f) => (f.branch !== null ? { branch: f.branch } : { why: f.why ?? 'no task' }),
      reference: (f) => [OUTCOME[f.branch!], f.patientId, f.branch === 'identity_mismatch' ? null : f.previousBp[0]],
      check: (output, facts, r, state) => gradeEndState(output, facts, r, state),
    });
  },
};
