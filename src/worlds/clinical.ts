/**
 * Seeded clinical history for a list of patients: labs (MG, K, GLU, A1C, BMP, CBC, …), flowsheet vitals (BP,
 * HEARTRATE, SPO2, RESP, TEMP, FIO2), problem-list and encounter-diagnosis Conditions, Procedures and
 * MedicationRequests, shaped like the MedAgentBench server's records (docs/worlds.md).
 *
 * Generation is columnar: each record is one row of typed arrays (kind, patient, time, value, value2); the JSON is
 * built only when the store materialises it (`addLazy`). Records are numbered in insertion order; the FHIR id is
 * `firstId + row`. Insertion order is shuffled in blocks (a hospital day, a visit), so a search without `_sort`
 * returns dates out of order, as on the real server.
 *
 * Anchors: per patient and task lab code, exact readings to plant (`points`) and a bound (`before`) that every other
 * reading of that code respects, or `none` (no reading at all). Background data is filtered against the bound, so
 * the planted facts always decide "latest", "within 24 h" and "mean within 24 h" exactly as planned.
 */
import type { IndexKeys, Resource } from '../fhir/types.js';
import type { StoreLoader } from '../fhir/store-api.js';
import { FhirDecimal } from '../fhir/decimal.js';
import { Rng, hash32, streamKey } from './prng.js';
import {
  BP_DIASTOLIC,
  BP_LOINC,
  BP_SYSTOLIC,
  CONDITIONS,
  ICD10,
  LABS,
  LOINC,
  MEDICATIONS,
  PROCEDURES,
  ROUTE_SNOMED,
  RXNORM,
  SNOMED,
  UCUM,
  VITALS,
  POC_GLU_LOINC,
  type ConditionDef,
  type LabCode,
  type LabDef,
  type MedicationDef,
  type ProcedureDef,
  type TaskLabCode,
  type VitalDef,
  TASK_LAB_CODES,
} from './catalog.js';

export const NOW_MS = Date.parse('2023-11-13T10:15:00+00:00');
export const MINUTE = 60_000;
export const DAY = 1440 * MINUTE;

/** `YYYY-MM-DDTHH:MM:00+00:00` (minute precision, as the MedAgentBench server stores clinical times). */
export function fmtMinute(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16) + ':00+00:00';
}
/** `YYYY-MM-DDTHH:MM:SS.mmm+00:00` (HAPI meta.lastUpdated style). */
export function fmtInstant(ms: number): string {
  return new Date(ms).toISOString().slice(0, 23) + '+00:00';
}

export interface AnchorPoint {
  value: number;
  time: string;
}
export interface CodeAnchor {
  /** Readings planted with exactly these values and effectiveDateTime strings. */
  points: AnchorPoint[];
  /** Every other reading of this code has effectiveDateTime strictly before this instant. */
  before?: string;
  /** No reading of this code at all (overrides points). */
  none?: boolean;
  /** Why (task ids, branch names); informational. */
  sources?: string[];
  /**
   * Distractor readings for a code outside the four task codes (whose distractors are built in): a planted value
   * below `threshold` gets distractors drawn from `above`, any other from `below`, rounded to the lab's decimals.
   */
  distractor?: LabDistractor;
}
export interface LabDistractor {
  threshold: number;
  below: readonly [number, number];
  above: readonly [number, number];
}
export type LabAnchors = Partial<Record<LabCode, CodeAnchor>>;

export interface ClinicalPatient {
  /** Patient.id (= MRN). */
  id: string;
  birthDate: string;
  gender: string;
  anchors?: LabAnchors;
  /** Force or forbid the diabetic profile (default: derived from anchors, else random). */
  diabetic?: boolean;
}

export interface ClinicalOptions {
  /** Stream key prefix, e.g. `v1|medagentbench`; a patient's history depends only on prefix + patient id. */
  streamPrefix: string;
  /** Numeric id of the first record. */
  firstId: number;
  /** meta.lastUpdated of the first record (records follow a few ms apart). */
  lastUpdatedBaseMs: number;
  /** Density multiplier for hospital stays and visits (1 = MedAgentBench-like volume). */
  scale?: number;
  /** Start of the history (default NOW − 5 years). */
  historyStartMs?: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Kinds: what a row is. Index into KINDS.

type Kind =
  | { t: 'lab'; def: LabDef; poc: boolean }
  | { t: 'vital'; def: VitalDef }
  | { t: 'bp' }
  | { t: 'cond'; def: ConditionDef }
  | { t: 'proc'; def: ProcedureDef }
  | { t: 'med'; def: MedicationDef };

const KINDS: Kind[] = [];
const KIND_KEYS: Array<{ code: string[]; category: string[]; status?: string[] }> = [];
const LAB_KIND = {} as Record<LabCode, number>;
let POC_GLU_KIND = 0;
const VITAL_KIND: Record<string, number> = {};
let BP_KIND = 0;
const CAT_LAB = 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory';
const CAT_VITAL = 'http://terminology.hl7.org/CodeSystem/observation-category|vital-signs';
const CONDITION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const MEDREQ_CATEGORY = 'http://terminology.hl7.org/CodeSystem/medicationrequest-category';
const FINAL = ['|final'];
{
  const push = (k: Kind, keys: (typeof KIND_KEYS)[number]) => {
    KINDS.push(k);
    KIND_KEYS.push(keys);
    return KINDS.length - 1;
  };
  for (const [code, def] of Object.entries(LABS) as Array<[LabCode, LabDef]>) {
    LAB_KIND[code] = push({ t: 'lab', def, poc: false }, { code: [`${LOINC}|${def.local}`, `${LOINC}|${def.loinc}`], category: [CAT_LAB], status: FINAL });
  }
  POC_GLU_KIND = push({ t: 'lab', def: LABS.GLU, poc: true }, { code: [`${LOINC}|GLU`, `${LOINC}|${POC_GLU_LOINC.code}`], category: [CAT_LAB], status: FINAL });
  for (const [code, def] of Object.entries(VITALS)) {
    VITAL_KIND[code] = push({ t: 'vital', def }, { code: [`${LOINC}|${def.local}`, `${LOINC}|${def.loinc}`], category: [CAT_VITAL], status: FINAL });
  }
  BP_KIND = push({ t: 'bp' }, { code: [`${LOINC}|BP`, `${LOINC}|${BP_LOINC.code}`], category: [CAT_VITAL], status: FINAL });
  for (const def of CONDITIONS) push({ t: 'cond', def }, { code: [`${ICD10}|${def.icd10}`, `${SNOMED}|${def.snomed}`], category: [] });
  for (const def of PROCEDURES) push({ t: 'proc', def }, { code: [`${def.system}|${def.code}`], category: [], status: ['|completed'] });
  for (const def of MEDICATIONS) push({ t: 'med', def }, { code: [`${RXNORM}|${def.rxnorm}`], category: [] });
}
const CONDITION_BASE = KINDS.findIndex((k) => k.t === 'cond');
const PROCEDURE_BASE = KINDS.findIndex((k) => k.t === 'proc');
const MEDICATION_BASE = KINDS.findIndex((k) => k.t === 'med');
const CHRONIC_CONDITIONS = CONDITIONS.map((c, i) => ({ c, i })).filter((x) => x.c.chronic && x.c.icd10 !== 'E11.9' && x.c.icd10 !== 'R73.03');
const ACUTE_CONDITIONS = CONDITIONS.map((c, i) => ({ c, i })).filter((x) => !x.c.chronic);
const DIABETES_INDEX = CONDITIONS.findIndex((c) => c.icd10 === 'E11.9');
const PREDIABETES_INDEX = CONDITIONS.findIndex((c) => c.icd10 === 'R73.03');
const procIdx = (setting: ProcedureDef['setting']) =>
  PROCEDURES.map((p, i) => ({ p, i }))
    .filter((x) => x.p.setting === setting)
    .map((x) => x.i);
const INPATIENT_PROCS = procIdx('inpatient');
const VISIT_PROCS = procIdx('visit');
const IMAGING_PROCS = procIdx('imaging');
const CHRONIC_MEDS = MEDICATIONS.map((m, i) => ({ m, i }))
  .filter((x) => x.m.chronic)
  .map((x) => x.i);
const INPATIENT_MEDS = MEDICATIONS.map((m, i) => ({ m, i }))
  .filter((x) => !x.m.chronic)
  .map((x) => x.i);
const INSULIN_MED = MEDICATIONS.findIndex((m) => m.rxnorm === '106892');
const METFORMIN_MED = MEDICATIONS.findIndex((m) => m.rxnorm === '860975');

/** Resource type of each record kind. */
function kindType(k: Kind): string {
  return k.t === 'lab' || k.t === 'vital' || k.t === 'bp' ? 'Observation' : k.t === 'cond' ? 'Condition' : k.t === 'proc' ? 'Procedure' : 'MedicationRequest';
}

// ---------------------------------------------------------------------------------------------------------------
// Columnar storage

class Columns {
  n = 0;
  kind = new Uint16Array(1024);
  pat = new Uint32Array(1024);
  time = new Float64Array(1024);
  val = new Float64Array(1024);
  val2 = new Float64Array(1024);

  push(kind: number, pat: number, time: number, val: number, val2: number): number {
    if (this.n === this.kind.length) this.grow();
    const i = this.n++;
    this.kind[i] = kind;
    this.pat[i] = pat;
    this.time[i] = time;
    this.val[i] = val;
    this.val2[i] = val2;
    return i;
  }
  private grow(): void {
    const cap = this.kind.length * 2;
    const g = <T extends Uint16Array | Uint32Array | Float64Array>(a: T, C: new (n: number) => T): T => {
      const b = new C(cap);
      b.set(a);
      return b;
    };
    this.kind = g(this.kind, Uint16Array);
    this.pat = g(this.pat, Uint32Array);
    this.time = g(this.time, Float64Array);
    this.val = g(this.val, Float64Array);
    this.val2 = g(this.val2, Float64Array);
  }
}

/** Per-patient scratch list of rows (before block shuffling). */
class Scratch {
  kind: number[] = [];
  time: number[] = [];
  val: number[] = [];
  val2: number[] = [];
  block: number[] = [];
  blocks = 0;
  cur = -1;
  newBlock(): void {
    this.cur = this.blocks++;
  }
  add(kind: number, time: number, val: number, val2 = 0): void {
    this.kind.push(kind);
    this.time.push(time);
    this.val.push(val);
    this.val2.push(val2);
    this.block.push(this.cur);
  }
}

const round = (v: number, d: number) => {
  const f = 10 ** d;
  return Math.round(v * f) / f;
};

// ---------------------------------------------------------------------------------------------------------------

export interface PatientSummary {
  id: string;
  records: number;
  stays: number;
  diabetic: boolean;
}

/**
 * Generated clinical history of a set of patients. Build with `generateClinical`, then `load(store)`.
 */
export class ClinicalHistory {
  readonly cols = new Columns();
  readonly patients: ClinicalPatient[];
  readonly summaries: PatientSummary[] = [];
  private readonly subjects: Array<{ ref: string; id: string }>;

  constructor(
    patients: ClinicalPatient[],
    readonly opts: ClinicalOptions,
  ) {
    this.patients = patients;
    this.subjects = patients.map((p) => ({ ref: `Patient/${p.id}`, id: p.id }));
  }

  get size(): number {
    return this.cols.n;
  }

  /** Counts per resource type. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    const perKind = new Array<number>(KINDS.length).fill(0);
    for (let i = 0; i < this.cols.n; i++) perKind[this.cols.kind[i]!]!++;
    for (let k = 0; k < KINDS.length; k++) {
      if (perKind[k]) {
        const t = kindType(KINDS[k]!);
        out[t] = (out[t] ?? 0) + perKind[k]!;
      }
    }
    return out;
  }

  resourceType(row: number): string {
    return kindType(KINDS[this.cols.kind[row]!]!);
  }

  id(row: number): string {
    return String(this.opts.firstId + row);
  }

  lastUpdatedMs(row: number): number {
    return this.opts.lastUpdatedBaseMs + row * 6 + (hash32(`lu|${row}`) % 6);
  }

  /** The search keys of a row (identical to what the store would extract from its JSON). */
  keys(row: number): IndexKeys {
    const c = this.cols;
    const k = KINDS[c.kind[row]!]!;
    const kk = KIND_KEYS[c.kind[row]!]!;
    const t = c.time[row]!;
    const keys: IndexKeys = { patient: this.subjects[c.pat[row]!]!.id, code: kk.code, date: [t, t + 1000], lastUpdated: this.lastUpdatedMs(row) };
    if (kk.category.length) keys.category = kk.category;
    switch (k.t) {
      case 'lab':
      case 'vital':
      case 'bp':
        keys.status = FINAL;
        break;
      case 'cond':
        keys.category = c.val2[row] === 1 ? COND_CAT_ENCOUNTER : COND_CAT_PROBLEM;
        keys.status = c.val[row] === 1 ? COND_ACTIVE : COND_RESOLVED;
        break;
      case 'proc':
        keys.status = kk.status;
        break;
      case 'med':
        keys.category = k.def.chronic ? MED_CAT_COMMUNITY : MED_CAT_INPATIENT;
        keys.status = MED_STATUS_TOKENS[c.val[row]!];
        keys.strings = INTENT_ORDER;
        break;
    }
    return keys;
  }

  /** Build the JSON of a row. */
  materialize(row: number): Resource {
    const c = this.cols;
    const k = KINDS[c.kind[row]!]!;
    const id = this.id(row);
    const subj = this.subjects[c.pat[row]!]!;
    const t = c.time[row]!;
    const meta = { versionId: '1', lastUpdated: fmtInstant(this.lastUpdatedMs(row)), source: sourceTag(row) };
    switch (k.t) {
      case 'lab': {
        const d = k.def;
        const v = c.val[row]!;
        const coding2 = k.poc ? POC_GLU_LOINC : { code: d.loinc, display: d.loincDisplay };
        const r: Resource = {
          resourceType: 'Observation',
          id,
          meta,
          status: 'final',
          category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory', display: 'Laboratory' }] }],
          code: {
            coding: [
              { system: LOINC, code: d.local, display: d.local },
              { system: LOINC, code: coding2.code, display: coding2.display },
            ],
            text: d.local,
          },
          subject: { reference: subj.ref, identifier: { system: 'http://terminology.hl7.org/CodeSystem/v2-0203', value: subj.id } },
          effectiveDateTime: fmtMinute(t),
          issued: fmtMinute(Math.min(t + c.val2[row]! * MINUTE, NOW_MS)),
          valueQuantity: { value: FhirDecimal.fixed(v, Math.max(1, d.decimals)), unit: d.unit, system: UCUM, code: d.ucum },
        };
        if (v < d.low) r.interpretation = [interp('LOW', 'Low')];
        else if (v > d.high) r.interpretation = [interp('HIGH', 'High')];
        return r;
      }
      case 'vital': {
        const d = k.def;
        return {
          resourceType: 'Observation',
          id,
          meta,
          status: 'final',
          category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs', display: 'Vital Signs' }] }],
          code: {
            coding: [
              { system: LOINC, code: d.local, display: d.local },
              { system: LOINC, code: d.loinc, display: d.loincDisplay },
            ],
            text: d.local,
          },
          subject: { reference: subj.ref, identifier: { system: 'http://terminology.hl7.org/CodeSystem/v2-0203', value: subj.id } },
          effectiveDateTime: fmtMinute(t),
          valueQuantity: { value: FhirDecimal.fixed(c.val[row]!, d.decimals), unit: d.unit, system: UCUM, code: d.ucum },
        };
      }
      case 'bp': {
        const sys = c.val[row]!;
        const dia = c.val2[row]!;
        return {
          resourceType: 'Observation',
          id,
          meta,
          status: 'final',
          category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs', display: 'Vital Signs' }] }],
          code: {
            coding: [
              { system: LOINC, code: 'BP', display: 'BP' },
              { system: LOINC, code: BP_LOINC.code, display: BP_LOINC.display },
            ],
            text: 'BP',
          },
          subject: { reference: subj.ref, identifier: { system: 'http://terminology.hl7.org/CodeSystem/v2-0203', value: subj.id } },
          effectiveDateTime: fmtMinute(t),
          valueString: `${sys}/${dia} mmHg`,
          component: [
            {
              code: { coding: [{ system: LOINC, code: BP_SYSTOLIC.code, display: BP_SYSTOLIC.display }] },
              valueQuantity: { value: sys, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' },
            },
            {
              code: { coding: [{ system: LOINC, code: BP_DIASTOLIC.code, display: BP_DIASTOLIC.display }] },
              valueQuantity: { value: dia, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' },
            },
          ],
        };
      }
      case 'cond': {
        const d = k.def;
        const active = c.val[row] === 1;
        const encounterDx = c.val2[row] === 1;
        const r: Resource = {
          resourceType: 'Condition',
          id,
          meta,
          clinicalStatus: { coding: [{ system: CONDITION_CLINICAL, code: active ? 'active' : 'resolved' }] },
          verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }] },
          category: [
            {
              coding: [
                encounterDx
                  ? { system: CONDITION_CATEGORY, code: 'encounter-diagnosis', display: 'Encounter Diagnosis' }
                  : { system: CONDITION_CATEGORY, code: 'problem-list-item', display: 'Problem List Item' },
              ],
            },
          ],
          code: {
            coding: [
              { system: ICD10, code: d.icd10, display: d.icd10Display },
              { system: SNOMED, code: d.snomed, display: d.snomedDisplay },
            ],
            text: d.text,
          },
          subject: { reference: subj.ref },
          onsetDateTime: fmtMinute(t),
          recordedDate: fmtMinute(t),
        };
        return r;
      }
      case 'proc': {
        const d = k.def;
        return {
          resourceType: 'Procedure',
          id,
          meta,
          status: 'completed',
          code: { coding: [{ system: d.system, code: d.code, display: d.display }], text: d.display },
          subject: { reference: subj.ref },
          performedDateTime: fmtMinute(t),
        };
      }
      case 'med': {
        const d = k.def;
        const route = ROUTE_SNOMED[d.route];
        return {
          resourceType: 'MedicationRequest',
          id,
          meta,
          status: MED_STATUS[c.val[row]!]!,
          intent: 'order',
          category: [{ coding: [{ system: MEDREQ_CATEGORY, code: d.chronic ? 'community' : 'inpatient', display: d.chronic ? 'Community' : 'Inpatient' }] }],
          medicationCodeableConcept: { coding: [{ system: RXNORM, code: d.rxnorm, display: d.display }], text: d.display },
          subject: { reference: subj.ref },
          authoredOn: fmtMinute(t),
          dosageInstruction: [
            {
              text: `${d.dose} ${d.doseUnit} ${d.route.toLowerCase()} ${d.frequency}`,
              timing: { code: { text: d.frequency } },
              route: { coding: [{ system: SNOMED, code: route.code, display: route.display }], text: d.route },
              doseAndRate: [{ doseQuantity: { value: d.dose, unit: d.doseUnit } }],
            },
          ],
        };
      }
    }
  }

  /** Add every row to a store (lazily). */
  load(store: StoreLoader): void {
    for (let row = 0; row < this.cols.n; row++) {
      store.addLazy(this.resourceType(row), this.id(row), this.keys(row), () => this.materialize(row));
    }
  }
}

const MED_STATUS = ['completed', 'active', 'stopped'] as const;
// Shared (never mutated) key arrays: one allocation per world instead of one per row.
const COND_CAT_ENCOUNTER = [`${CONDITION_CATEGORY}|encounter-diagnosis`];
const COND_CAT_PROBLEM = [`${CONDITION_CATEGORY}|problem-list-item`];
const COND_ACTIVE = [`${CONDITION_CLINICAL}|active`];
const COND_RESOLVED = [`${CONDITION_CLINICAL}|resolved`];
const MED_CAT_COMMUNITY = [`${MEDREQ_CATEGORY}|community`];
const MED_CAT_INPATIENT = [`${MEDREQ_CATEGORY}|inpatient`];
const MED_STATUS_TOKENS = MED_STATUS.map((s) => [`|${s}`]);
const INTENT_ORDER = { intent: ['order'] };

function interp(code: string, display: string) {
  return { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code, display }] };
}

const SOURCE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function sourceTag(row: number): string {
  // HAPI's meta.source is "#" + a 16-character request id; one request id per ~64 loaded rows.
  let h = hash32(`src|${row >>> 6}`);
  let s = '#';
  for (let i = 0; i < 16; i++) {
    if (i === 6 || i === 12) h = hash32(`src|${row >>> 6}|${i}`);
    s += SOURCE_ALPHABET[h % 62];
    h = Math.floor(h / 62);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Generation

interface Bounds {
  none: boolean;
  beforeMs: number;
}

/** Generate the clinical history of `patients` (index = position in the list). */
export function generateClinical(patients: ClinicalPatient[], opts: ClinicalOptions): ClinicalHistory {
  const hist = new ClinicalHistory(patients, opts);
  for (let p = 0; p < patients.length; p++) generatePatient(hist, p);
  return hist;
}

function generatePatient(hist: ClinicalHistory, p: number): void {
  const patient = hist.patients[p]!;
  const opts = hist.opts;
  const scale = opts.scale ?? 1;
  const start = opts.historyStartMs ?? NOW_MS - 5 * 365 * DAY;
  const key = (s: string) => streamKey(opts.streamPrefix, 'patient', patient.id, s);
  const rPlan = new Rng(key('plan'));
  const rLab = new Rng(key('labs'));
  const rVit = new Rng(key('vitals'));
  const rOrd = new Rng(key('orders'));
  const rIns = new Rng(key('insertion'));
  const sc = new Scratch();
  const anchors = patient.anchors ?? {};

  const bounds: Partial<Record<string, Bounds>> = {};
  for (const [code, a] of Object.entries(anchors) as Array<[LabCode, CodeAnchor]>) {
    bounds[code] = { none: !!a.none, beforeMs: a.before ? Date.parse(a.before) : Infinity };
  }
  const allowed = (code: string, t: number) => {
    if (t > NOW_MS) return false;
    const b = bounds[code];
    return !b || (!b.none && t < b.beforeMs);
  };

  // Profile.
  const a1cPoint = anchors.A1C?.points[0]?.value;
  const gluPoints = anchors.GLU?.points ?? [];
  const gluMean = gluPoints.length ? gluPoints.reduce((s, x) => s + x.value, 0) / gluPoints.length : undefined;
  const randomDiabetic = rPlan.chance(0.35);
  const diabetic =
    patient.diabetic ??
    ((a1cPoint !== undefined && a1cPoint >= 6.5) || (gluMean !== undefined ? gluMean >= 140 : a1cPoint !== undefined ? false : randomDiabetic));
  const baseline: Partial<Record<LabCode, number>> = {};
  for (const [code, def] of Object.entries(LABS) as Array<[LabCode, LabDef]>) baseline[code] = rPlan.normal(0, def.sd * 0.5);
  if (diabetic) baseline.GLU = (baseline.GLU ?? 0) + 45;
  // Keep background glucose in the same range as the planted 24 h series.
  if (gluMean !== undefined) baseline.GLU = gluMean - LABS.GLU.mean - (diabetic ? 15 : 0) + rPlan.normal(0, 6);
  const a1cBase = diabetic ? rPlan.normalClipped(7.6, 1.0, 6.5, 11) : rPlan.chance(0.3) ? rPlan.float(5.7, 6.4) : rPlan.normalClipped(5.3, 0.25, 4.6, 5.6);

  const labValue = (code: LabCode, r: Rng, shift = 0): number => {
    const d = LABS[code];
    const v = r.normalClipped(d.mean + (baseline[code] ?? 0) + shift, d.sd, d.min, d.max);
    return round(v, d.decimals);
  };
  const emitLab = (code: LabCode, t: number, r: Rng, value?: number) => {
    if (!allowed(code, t)) return;
    sc.add(LAB_KIND[code], t, value ?? labValue(code, r), r.int(30, 180));
  };

  // Problem list: chronic conditions with onsets in (or before) the history.
  const problems = new Set<number>();
  if (diabetic) problems.add(DIABETES_INDEX);
  else if (a1cBase >= 5.7) problems.add(PREDIABETES_INDEX);
  const nProblems = rPlan.int(2, 7);
  for (let i = 0; i < nProblems; i++) {
    const pick = rPlan.weighted(
      CHRONIC_CONDITIONS,
      CHRONIC_CONDITIONS.map((x) => x.c.weight),
    );
    problems.add(pick.i);
  }
  sc.newBlock();
  for (const ci of problems) sc.add(CONDITION_BASE + ci, minuteFloor(rPlan.float(start - 3 * 365 * DAY, NOW_MS - 30 * DAY)), 1, 0);

  // Chronic medications follow the problems.
  const chronicMeds = new Set<number>();
  if (diabetic) {
    chronicMeds.add(METFORMIN_MED);
    if (rPlan.chance(0.5)) chronicMeds.add(INSULIN_MED);
  }
  const nChronicMeds = rPlan.int(1, 5);
  for (let i = 0; i < nChronicMeds; i++) chronicMeds.add(rPlan.pick(CHRONIC_MEDS));

  // Hospital stays: the last one runs up to NOW (the cohort had an inpatient lab on the morning of 2023-11-13).
  const stays: Array<{ s: number; e: number; icu: boolean }> = [];
  const lastStart = minuteFloor(NOW_MS - rPlan.int(2, 9) * DAY - rPlan.int(0, 600) * MINUTE);
  stays.push({ s: lastStart, e: NOW_MS, icu: rPlan.chance(0.3) });
  const nStays = Math.max(0, Math.round(rPlan.int(2, 8) * scale));
  for (let i = 0; i < nStays; i++) {
    const s = minuteFloor(rPlan.float(start, lastStart - 20 * DAY));
    const e = s + rPlan.int(2, 12) * DAY + rPlan.int(0, 600) * MINUTE;
    if (stays.some((x) => s < x.e + 7 * DAY && e > x.s - 7 * DAY)) continue;
    stays.push({ s, e: Math.min(e, lastStart - DAY), icu: rPlan.chance(0.25) });
  }
  stays.sort((a, b) => a.s - b.s);

  const dayStart = (t: number) => Math.floor(t / DAY) * DAY;
  for (let si = 0; si < stays.length; si++) {
    const stay = stays[si]!;
    const isLast = si === stays.length - 1;
    // Admission: encounter diagnoses and orders.
    sc.newBlock();
    const nDx = rOrd.int(1, 4);
    const stayDx: number[] = [...problems];
    for (let i = 0; i < nDx; i++) {
      const pick = rOrd.weighted(
        ACUTE_CONDITIONS,
        ACUTE_CONDITIONS.map((x) => x.c.weight),
      );
      stayDx.push(pick.i);
      sc.add(CONDITION_BASE + pick.i, stay.s + rOrd.int(5, 240) * MINUTE, isLast ? 1 : 0, 1);
    }
    const nOrders = rOrd.int(3, 9);
    for (let i = 0; i < nOrders; i++) {
      sc.add(
        MEDICATION_BASE + rOrd.pick(INPATIENT_MEDS),
        Math.min(stay.s + rOrd.int(10, 600) * MINUTE, NOW_MS),
        isLast ? rOrd.weighted([1, 0, 2], [6, 3, 1]) : 0,
      );
    }
    for (const m of chronicMeds) if (rOrd.chance(0.7)) sc.add(MEDICATION_BASE + m, Math.min(stay.s + rOrd.int(30, 720) * MINUTE, NOW_MS), isLast ? 1 : 0);
    const pocGlu = diabetic || rPlan.chance(0.4);
    for (let d = dayStart(stay.s); d <= stay.e; d += DAY) {
      sc.newBlock();
      // Morning labs.
      const draw = d + rLab.int(3 * 60 + 30, 6 * 60 + 30) * MINUTE;
      if (draw >= stay.s && draw <= stay.e) {
        for (const code of ['NA', 'K', 'CL', 'CO2', 'BUN', 'CR', 'GLU', 'CA'] as const) emitLab(code, draw, rLab);
        if (rLab.chance(0.7)) emitLab('MG', draw, rLab);
        if (rLab.chance(0.4)) emitLab('PHOS', draw, rLab);
        if (rLab.chance(0.85)) for (const code of ['HGB', 'HCT', 'WBC', 'PLT'] as const) emitLab(code, draw, rLab);
        if (diabetic && d === dayStart(stay.s) && rLab.chance(0.5)) emitLab('A1C', draw, rLab, round(a1cBase + rLab.normal(0, 0.3), 1));
        sc.add(PROCEDURE_BASE + INPATIENT_PROCS[0]!, draw, 0);
      }
      if (stay.icu) {
        const pm = d + rLab.int(15 * 60, 18 * 60) * MINUTE;
        if (pm >= stay.s && pm <= stay.e && rLab.chance(0.6)) {
          for (const code of ['NA', 'K', 'GLU'] as const) emitLab(code, pm, rLab);
          if (rLab.chance(0.5)) emitLab('MG', pm, rLab);
        }
      }
      // Point-of-care glucose before meals and at bedtime (every 4 h in the ICU).
      if (pocGlu) {
        const times = stay.icu ? [2, 6, 10, 14, 18, 22].map((h) => h * 60) : [7 * 60 + 30, 11 * 60 + 30, 16 * 60 + 30, 21 * 60];
        for (const m of times) {
          const t = d + (m + rLab.int(-25, 25)) * MINUTE;
          if (t < stay.s || t > stay.e || !allowed('GLU', t)) continue;
          sc.add(POC_GLU_KIND, t, labValue('GLU', rLab, diabetic ? 15 : 0), rLab.int(1, 6));
        }
      }
      // Vitals: hourly in the ICU, every 2 h on the ward.
      const step = stay.icu ? 60 : 120;
      for (let m = rVit.int(0, 30); m < 1440; m += step) {
        const t = d + (m + rVit.int(0, 9)) * MINUTE;
        if (t < stay.s || t > stay.e) continue;
        const sys = Math.round(rVit.normalClipped(128, 16, 82, 205));
        const dia = Math.round(rVit.normalClipped(sys * 0.58, 8, 40, 125));
        sc.add(BP_KIND, t, sys, dia);
        for (const v of ['HEARTRATE', 'SPO2', 'RESP'] as const)
          sc.add(VITAL_KIND[v]!, t, round(rVit.normalClipped(VITALS[v]!.mean, VITALS[v]!.sd, VITALS[v]!.min, VITALS[v]!.max), VITALS[v]!.decimals));
        if (!stay.icu || m % 240 < 60)
          sc.add(VITAL_KIND.TEMP!, t, round(rVit.normalClipped(VITALS.TEMP!.mean, VITALS.TEMP!.sd, VITALS.TEMP!.min, VITALS.TEMP!.max), 1));
        if (stay.icu) sc.add(VITAL_KIND.FIO2!, t, Math.round(rVit.normalClipped(VITALS.FIO2!.mean, VITALS.FIO2!.sd, 21, 60)));
      }
      // Daily encounter diagnoses (re-documented problems of this stay) and orders.
      for (const ci of stayDx) {
        const t = d + rOrd.int(8 * 60, 20 * 60) * MINUTE;
        if (t >= stay.s && t <= stay.e && rOrd.chance(0.75)) sc.add(CONDITION_BASE + ci, t, isLast || CONDITIONS[ci]!.chronic ? 1 : 0, 1);
      }
      const nMeds = rOrd.int(2, 7);
      for (let i = 0; i < nMeds; i++) {
        const t = d + rOrd.int(0, 1439) * MINUTE;
        if (t >= stay.s && t <= stay.e) sc.add(MEDICATION_BASE + rOrd.pick(INPATIENT_MEDS), t, isLast ? rOrd.weighted([1, 0, 2], [6, 3, 1]) : 0);
      }
      // Daily procedures (nursing, lines, monitoring, visits).
      const nProc = rOrd.int(15, 45);
      for (let i = 0; i < nProc; i++) {
        const t = d + rOrd.int(6 * 60, 22 * 60) * MINUTE;
        if (t >= stay.s && t <= stay.e) sc.add(PROCEDURE_BASE + rOrd.pick(INPATIENT_PROCS), t, 0);
      }
      if (rOrd.chance(0.2)) {
        const t = d + rOrd.int(8 * 60, 20 * 60) * MINUTE;
        if (t >= stay.s && t <= stay.e) sc.add(PROCEDURE_BASE + rOrd.pick(IMAGING_PROCS), t, 0);
      }
    }
  }

  // Outpatient visits.
  let v = start + rPlan.int(5, 90) * DAY;
  while (v < lastStart - 3 * DAY) {
    const t = minuteFloor(dayStart(v) + rPlan.int(8 * 60, 17 * 60) * MINUTE);
    v += Math.round(rPlan.int(30, 120) / scale) * DAY;
    if (stays.some((x) => t >= x.s - DAY && t <= x.e + DAY)) continue;
    sc.newBlock();
    const sys = Math.round(rVit.normalClipped(130, 15, 90, 190));
    sc.add(BP_KIND, t, sys, Math.round(rVit.normalClipped(sys * 0.6, 7, 50, 110)));
    for (const vv of ['HEARTRATE', 'SPO2', 'RESP', 'TEMP'] as const)
      sc.add(VITAL_KIND[vv]!, t, round(rVit.normalClipped(VITALS[vv]!.mean, VITALS[vv]!.sd * 0.7, VITALS[vv]!.min, VITALS[vv]!.max), VITALS[vv]!.decimals));
    const lab = t + rLab.int(10, 50) * MINUTE;
    if (rLab.chance(0.6)) for (const code of ['NA', 'K', 'CL', 'CO2', 'BUN', 'CR', 'GLU', 'CA'] as const) emitLab(code, lab, rLab);
    if (rLab.chance(0.4)) for (const code of ['HGB', 'HCT', 'WBC', 'PLT'] as const) emitLab(code, lab, rLab);
    if (rLab.chance(0.1)) emitLab('MG', lab, rLab);
    if (rLab.chance(diabetic ? 0.6 : 0.12)) emitLab('A1C', lab, rLab, round(a1cBase + rLab.normal(0, 0.35), 1));
    sc.add(PROCEDURE_BASE + rOrd.pick(VISIT_PROCS.slice(0, 2)), t, 0);
    if (rOrd.chance(0.25)) sc.add(PROCEDURE_BASE + rOrd.pick(VISIT_PROCS), t + 15 * MINUTE, 0);
    if (rOrd.chance(0.25))
      sc.add(
        CONDITION_BASE +
          rOrd.weighted(
            ACUTE_CONDITIONS,
            ACUTE_CONDITIONS.map((x) => x.c.weight),
          ).i,
        t,
        0,
        1,
      );
    for (const ci of problems) if (rOrd.chance(0.6)) sc.add(CONDITION_BASE + ci, t + 5 * MINUTE, 1, 1);
    for (const m of chronicMeds) if (rOrd.chance(0.35)) sc.add(MEDICATION_BASE + m, t + 20 * MINUTE, 0);
  }

  // Planted facts and distractors, each in its own block (inserted at random positions).
  for (const [code, a] of Object.entries(anchors) as Array<[LabCode, CodeAnchor]>) {
    if (a.none) continue;
    const kind = code === 'GLU' ? POC_GLU_KIND : LAB_KIND[code];
    for (const pt of a.points) {
      sc.newBlock();
      sc.add(kind, Date.parse(pt.time), pt.value, rIns.int(code === 'GLU' ? 1 : 30, code === 'GLU' ? 6 : 150));
    }
    const b = bounds[code]!;
    const ref = Number.isFinite(b.beforeMs) ? b.beforeMs : a.points.length ? Date.parse(a.points[a.points.length - 1]!.time) : NOW_MS;
    // An older reading that disagrees with the planted one ("older low value behind a newer normal one"),
    // and one just before the bound (outside the 24 h window for window-bounded codes).
    const older = minuteFloor(ref - rIns.int(1, 6) * DAY - rIns.int(0, 600) * MINUTE);
    const justBefore = ref - rIns.int(1, 90) * MINUTE;
    sc.newBlock();
    if (older >= start) sc.add(kind, older, distractorValue(code, a, rIns), 60);
    if (justBefore >= start && allowed(code, justBefore)) sc.add(kind, justBefore, distractorValue(code, a, rIns), 45);
  }

  // Insertion order: blocks shuffled (not chronological), rows within a block in generation order.
  const order = rIns.shuffle(Array.from({ length: sc.blocks }, (_, i) => i));
  const rank = new Int32Array(sc.blocks);
  order.forEach((b, i) => (rank[b] = i));
  const idx = Array.from({ length: sc.kind.length }, (_, i) => i);
  idx.sort((x, y) => rank[sc.block[x]!]! - rank[sc.block[y]!]! || x - y);
  const perCode = new Map<number, number>();
  const before = hist.cols.n;
  for (const i of idx) {
    const kind = sc.kind[i]!;
    const n = (perCode.get(kind) ?? 0) + 1;
    if (n > 5000) continue; // the grader reads at most one page of 5000 per (patient, code)
    perCode.set(kind, n);
    hist.cols.push(kind, p, sc.time[i]!, sc.val[i]!, sc.val2[i]!);
  }
  hist.summaries.push({ id: patient.id, records: hist.cols.n - before, stays: stays.length, diabetic });
}

const isTaskLabCode = (code: string): code is TaskLabCode => (TASK_LAB_CODES as readonly string[]).includes(code);

function distractorValue(code: LabCode, a: CodeAnchor, r: Rng): number {
  const planted = a.points.length ? a.points[a.points.length - 1]!.value : undefined;
  if (!isTaskLabCode(code)) {
    const d = a.distractor;
    if (!d) throw new RangeError(`anchors for ${code} need a distractor rule`);
    const [lo, hi] = planted !== undefined && planted < d.threshold ? d.above : d.below;
    return round(r.float(lo, hi), LABS[code].decimals);
  }
  switch (code) {
    case 'MG':
      return planted !== undefined && planted <= 1.9 ? round(r.float(2.0, 2.4), 1) : round(r.float(1.2, 1.8), 1);
    case 'K':
      return planted !== undefined && planted < 3.5 ? round(r.float(3.8, 4.6), 1) : round(r.float(2.9, 3.4), 1);
    case 'GLU':
      return Math.round(r.chance(0.5) ? r.float(58, 69) : r.float(190, 320));
    case 'A1C':
      return round(r.float(5.0, 9.5), 1);
  }
}

function minuteFloor(ms: number): number {
  return Math.floor(ms / MINUTE) * MINUTE;
}

/** Visible for tests: the kind table size (stable across runs). */
export const KIND_COUNT = KINDS.length;
