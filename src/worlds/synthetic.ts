/**
 * The `synthetic` world: a seeded cohort of N patients (MRNs `S9xxxxxx`, never colliding with the replica's 500),
 * gender-coherent names from committed lists, fictional phones (555-01XX) and example.org e-mails, with clinical
 * history from the same generator as the replica and **planted facts** that cover every task branch on purpose:
 *
 * - MG (tasks 4/5): none at all, only older than 24 h (incl. a reading at 24 h 01 min), and latest-in-24 h values at
 *   the dosing boundaries 1.9, 1.5, 1.0, 0.9 plus normal values, incl. readings exactly 24 h 00 min and 23 h 59 min old;
 * - K (task 9): none, 3.5 (no order), 3.4, 3.1, 2.8 (orders), normal values, a month-old latest value;
 * - GLU (tasks 6/7): none, latest older than 24 h, 24 h series of 1–6 readings with non-integer means, a reading
 *   exactly 24 h old (counts) and one 24 h 01 min old (does not);
 * - A1C (task 10): none, 364 d, exactly 365 d (no order), 366 d, fresh, two years old;
 * - task 1: near-duplicate patients (same name with DOB ± 1–3 days, or same DOB with another name).
 *
 * Scenario lists are dealt round-robin from a seeded offset, so any cohort at least as large as the longest list
 * covers every scenario. Same seed and size → byte-identical resources.
 */
import type { Resource } from '../fhir/types.js';
import type { StoreLoader } from '../fhir/store-api.js';
import { type Rng, hash32, rngFor } from './prng.js';
import {
  DAY,
  MINUTE,
  NOW_MS,
  fmtInstant,
  fmtMinute,
  generateClinical,
  type ClinicalHistory,
  type CodeAnchor,
  type LabAnchors,
  type LabDistractor,
} from './clinical.js';
import { FAMILY, FEMALE_GIVEN, MALE_GIVEN, STREETS, TOWNS } from './names.js';
import { LABS, TASK_LAB_CODES, type LabCode, type TaskLabCode } from './catalog.js';

export const SYNTHETIC_GENERATOR_VERSION = 'synthetic-v1';
export const SYNTHETIC_FIRST_ID = 1000;
/** About 5,900 resources per patient: 500 patients ≈ 3 M resources ≈ 1 GB of heap. */
export const MAX_SYNTHETIC_PATIENTS = 500;
const WINDOW_START = NOW_MS - DAY;

export type MgBranch = 'none' | 'stale' | 'normal' | 'low_mild' | 'low_moderate' | 'low_severe';
export type KBranch = 'none' | 'normal' | 'low';
export type GluBranch = 'none' | 'stale' | 'window';
export type A1cBranch = 'none' | 'fresh' | 'stale';
/** Age of the decisive reading at a window or one-year boundary. */
export type Edge = '23h59' | '24h00' | '24h01' | '364d' | '365d' | '366d';

export interface TimedValue {
  value: number;
  /** effectiveDateTime exactly as served. */
  time: string;
}

/** What the grader-relevant data of one synthetic patient is, by construction. */
export interface PlantedFacts {
  mrn: string;
  given: string;
  family: string;
  birthDate: string;
  gender: 'male' | 'female';
  /** Whole years on 2023-11-13 (grader rule). */
  age: number;
  mg: { branch: MgBranch; edge?: Edge; latest24h: TimedValue | null };
  k: { branch: KBranch; latest: TimedValue | null };
  glu: { branch: GluBranch; edge?: Edge; latest: TimedValue | null; mean24h: number | null; count24h: number };
  a1c: { branch: A1cBranch; edge?: Edge; latest: TimedValue | null };
  /** Labs planted on request beyond the four task codes (`PlantRequest.extra`), by code; absent when none were. */
  labs?: Record<string, LabFacts>;
  /** MRN of a patient with the same name and a DOB 1–3 days apart, or the same DOB and another name. */
  nearDuplicateOf?: string;
  nearDuplicateKind?: 'same-name-dob-shifted' | 'same-dob-other-name';
}

/** What was planted for a requested extra lab: the scenario's branch and edge, the latest reading, the latest in 24 h. */
export interface LabFacts {
  branch: string;
  edge?: Edge;
  latest: TimedValue | null;
  latest24h: TimedValue | null;
}

/** One planted scenario of a lab: the readings (age in minutes before NOW, value) and the bound on all others. */
export interface LabScenario {
  branch: string;
  edge?: Edge;
  /** Planted readings as [ageMinutes, value]. */
  points: Array<[number, number]>;
  /** Other readings must be older than this age in minutes (default: the newest point; 24 h for window series). */
  boundAgeMin?: number;
  none?: boolean;
}

const H = 60;
const D = 1440;
const MG_SCENARIOS: LabScenario[] = [
  { branch: 'none', points: [], none: true },
  { branch: 'stale', edge: '24h01', points: [[D + 1, 1.6]], boundAgeMin: D },
  { branch: 'stale', points: [[2 * D + 5 * H, 1.4]], boundAgeMin: D },
  { branch: 'low_mild', points: [[5 * H + 10, 1.9]] },
  { branch: 'low_mild', points: [[3 * H + 40, 1.5]] },
  { branch: 'low_moderate', points: [[6 * H + 5, 1.0]] },
  { branch: 'low_severe', points: [[4 * H + 15, 0.9]] },
  { branch: 'low_moderate', points: [[2 * H + 50, 1.3]] },
  { branch: 'normal', points: [[5 * H + 45, 2.0]] },
  { branch: 'normal', points: [[7 * H + 20, 2.3]] },
  { branch: 'low_mild', edge: '24h00', points: [[D, 1.8]] },
  { branch: 'normal', edge: '23h59', points: [[D - 1, 2.1]] },
];
const K_SCENARIOS: LabScenario[] = [
  { branch: 'none', points: [], none: true },
  { branch: 'normal', points: [[5 * H + 20, 3.5]] },
  { branch: 'low', points: [[4 * H + 35, 3.4]] },
  { branch: 'low', points: [[6 * H + 10, 3.1]] },
  { branch: 'low', points: [[D + 3 * H, 2.8]] },
  { branch: 'normal', points: [[5 * H, 3.6]] },
  { branch: 'normal', points: [[4 * H + 50, 4.0]] },
  { branch: 'normal', points: [[2 * D + 6 * H, 4.4]] },
  { branch: 'normal', points: [[3 * H + 25, 5.1]] },
  { branch: 'normal', points: [[32 * D + 2 * H, 3.9]] },
];
const A1C_SCENARIOS: LabScenario[] = [
  { branch: 'none', points: [], none: true },
  { branch: 'fresh', edge: '364d', points: [[364 * D, 6.8]] },
  { branch: 'fresh', edge: '365d', points: [[365 * D, 7.1]] },
  { branch: 'stale', edge: '366d', points: [[366 * D, 5.9]] },
  { branch: 'fresh', points: [[20 * D + 7 * H, 8.2]] },
  { branch: 'stale', points: [[2 * 365 * D + 11 * H, 6.1]] },
  { branch: 'fresh', points: [[91 * D + 3 * H, 5.4]] },
];
const GLU_SCENARIOS: LabScenario[] = [
  { branch: 'none', points: [], none: true },
  { branch: 'stale', points: [[D + 2 * H + 10, 142]] },
  {
    branch: 'window',
    points: [
      [20 * H, 104],
      [12 * H + 30, 131],
      [3 * H + 15, 118],
    ],
    boundAgeMin: D,
  },
  { branch: 'window', points: [[2 * H + 40, 97]], boundAgeMin: D },
  {
    branch: 'window',
    edge: '24h00',
    points: [
      [D, 210],
      [18 * H, 180],
      [11 * H, 166],
      [6 * H, 149],
      [H + 30, 158],
    ],
    boundAgeMin: D,
  },
  {
    branch: 'window',
    edge: '24h01',
    points: [
      [D + 1, 64],
      [21 * H, 88],
      [14 * H + 20, 93],
      [9 * H, 101],
      [2 * H + 5, 95],
    ],
    boundAgeMin: D,
  },
  {
    branch: 'window',
    points: [
      [22 * H, 245],
      [18 * H, 212],
      [13 * H, 187],
      [9 * H, 230],
      [5 * H, 198],
      [H, 176],
    ],
    boundAgeMin: D,
  },
  {
    branch: 'window',
    points: [
      [15 * H + 45, 73],
      [4 * H + 25, 84],
    ],
    boundAgeMin: D,
  },
];

function toAnchor(s: LabScenario, source: string): CodeAnchor {
  if (s.none) return { points: [], none: true, sources: [source] };
  const points = s.points
    .map(([age, value]) => ({ value, time: fmtMinute(NOW_MS - age * MINUTE) }))
    .sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  const boundAge = s.boundAgeMin ?? Math.min(...s.points.map(([a]) => a));
  return { points, before: fmtMinute(NOW_MS - boundAge * MINUTE), sources: [source] };
}

function latestOf(a: CodeAnchor, from = -Infinity): TimedValue | null {
  let best: TimedValue | null = null;
  for (const p of a.points) if (Date.parse(p.time) >= from && (!best || p.time > best.time)) best = { value: p.value, time: p.time };
  return best;
}

export function ageOn20231113(birthDate: string): number {
  const [y, m, d] = birthDate.split('-').map(Number) as [number, number, number];
  return 2023 - y - (m > 11 || (m === 11 && d > 13) ? 1 : 0);
}

/**
 * What a caller needs planted, declared by the task families (`TaskFamily.planted`, merged by the task registry's
 * `plantRequest()`): the task lab codes whose boundary scenarios their branches rely on, and near-duplicate patients.
 * The synthetic world (`synthetic-v1`) plants its whole catalogue below whatever is asked, so its bytes and
 * fingerprint never depend on which families are registered; a request it cannot honour is refused.
 */
export interface PlantRequest {
  labs: readonly TaskLabCode[];
  nearDuplicates: boolean;
  /**
   * Labs to plant beyond the four task codes, with their scenarios (declared by the families that read them). They
   * are dealt like the built-in ones, after them, so a world without extras is unchanged; their facts are
   * `PlantedFacts.labs[code]`.
   */
  extra?: readonly LabPlanting[];
}

/** A lab planted on request: a catalogue lab (`LABS`) other than the task codes, its scenarios and distractor rule. */
export interface LabPlanting {
  code: LabCode;
  scenarios: readonly LabScenario[];
  distractor: LabDistractor;
}

/** Everything the synthetic world plants: MG, K, GLU and A1C scenarios and near-duplicate patients. */
export const PLANTABLE: PlantRequest = { labs: TASK_LAB_CODES, nearDuplicates: true };

/** Refuse a plant request the synthetic world cannot honour (RangeError naming the lab code). */
export function checkPlantRequest(req: PlantRequest): void {
  for (const code of req.labs) {
    if (!(PLANTABLE.labs as readonly string[]).includes(code)) {
      throw new RangeError(
        `the synthetic world cannot plant lab "${code}" from its catalogue (plantable: ${PLANTABLE.labs.join(', ')}; other labs come with their scenarios as extra plantings)`,
      );
    }
  }
  const seen = new Set<string>();
  for (const x of req.extra ?? []) {
    if (!Object.hasOwn(LABS, x.code)) throw new RangeError(`extra planting: "${x.code}" is not a lab of the catalogue`);
    if ((TASK_LAB_CODES as readonly string[]).includes(x.code)) throw new RangeError(`extra planting: ${x.code} is planted by the world itself`);
    if (seen.has(x.code)) throw new RangeError(`extra planting: ${x.code} is planted twice`);
    seen.add(x.code);
    if (x.scenarios.length === 0) throw new RangeError(`extra planting: ${x.code} has no scenarios`);
    for (const s of x.scenarios) {
      if (!s.none && s.points.length === 0) throw new RangeError(`extra planting: a ${x.code} scenario (${s.branch}) has no readings`);
      for (const [age] of s.points)
        if (!(Number.isInteger(age) && age >= 0)) throw new RangeError(`extra planting: ${x.code} reading age ${age} must be whole minutes before NOW`);
    }
  }
}

/** A cohort patient as a planting sees it. */
export interface PlantPatient {
  /** Position in the cohort (0-based). */
  index: number;
  mrn: string;
  birthDate: string;
  gender: 'male' | 'female';
  /**
   * The id the world gives the first resource this call returns (the k-th gets `nextId + k`), so that planted
   * resources can reference each other (a Slot its Schedule, an Appointment its Slot).
   */
  nextId: number;
}

/**
 * Records a caller plants into the synthetic world beside the cohort (the clinical suite's families: INR series and
 * warfarin orders, allergies, schedules …). Worlds do not know task families; the task layer passes these down
 * through `loadWorld({ plantings })`. `plant` is called once per patient, in cohort order, with a random stream of its
 * own (seeded by the world seed, the planting's name and the patient's index); it returns resources without ids,
 * which the world numbers in order after the cohort's clinical records. Same seed, size and plantings → the same
 * bytes; the world's fingerprint records each planting's name and version.
 */
export interface Planting {
  /** Unique name (the family id). */
  name: string;
  /** Bumped whenever what `plant` returns changes (part of the fingerprint). */
  version: string;
  plant(patient: PlantPatient, rng: Rng): Resource[];
}

/** A planting's resources get `meta.lastUpdated` from this instant on (one millisecond apart, in order). */
const PLANTED_LAST_UPDATED_MS = Date.parse('2024-12-30T19:30:00.000+00:00');

/**
 * Run the plantings over the cohort and add their resources to the store, numbered from `firstId`; returns how many
 * were added. A resource that carries an id, or a planting named twice, is refused (RangeError).
 */
export function loadPlantings(store: StoreLoader, build: SyntheticBuild, seed: number, plantings: readonly Planting[], firstId: number): number {
  const names = new Set<string>();
  let next = firstId;
  for (const p of plantings) {
    if (names.has(p.name)) throw new RangeError(`planting "${p.name}" is given twice`);
    names.add(p.name);
    build.facts.forEach((f, index) => {
      const rng = rngFor(SYNTHETIC_GENERATOR_VERSION, seed, 'planting', p.name, index);
      for (const r of p.plant({ index, mrn: f.mrn, birthDate: f.birthDate, gender: f.gender, nextId: next }, rng)) {
        if (r.id !== undefined) throw new RangeError(`planting "${p.name}" returned a ${r.resourceType} with an id (the world numbers them)`);
        const n = next++;
        store.add({
          resourceType: r.resourceType,
          id: String(n),
          meta: { versionId: '1', lastUpdated: fmtInstant(PLANTED_LAST_UPDATED_MS + (n - firstId)) },
          ...Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'resourceType' && k !== 'meta')),
        });
      }
    });
  }
  return next - firstId;
}

export interface SyntheticOptions {
  seed: number;
  patients: number;
  /** What the task families need planted (checked; default: everything plantable). */
  plant?: PlantRequest;
  /** MRNs to avoid (default: none beyond the S9 range rule; loadWorld passes the replica's 500). */
  avoidMrns?: Iterable<string>;
}

export interface SyntheticBuild {
  patients: Resource[];
  facts: PlantedFacts[];
  clinical: ClinicalHistory;
}

const RACES = [
  ['2106-3', 'White'],
  ['2054-5', 'Black or African American'],
  ['2028-9', 'Asian'],
  ['2131-1', 'Other'],
  ['1002-5', 'American Indian or Alaska Native'],
] as const;
const ETHNICITIES = [
  ['2186-5', 'Non-Hispanic'],
  ['2135-2', 'Hispanic or Latino'],
] as const;

/** Build the synthetic cohort (no store involved). */
export function buildSynthetic(opts: SyntheticOptions): SyntheticBuild {
  const { seed, patients: n } = opts;
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  if (!Number.isInteger(n) || n < 1 || n > MAX_SYNTHETIC_PATIENTS)
    throw new RangeError(`patients must be an integer in 1..${MAX_SYNTHETIC_PATIENTS}, got ${n}`);
  if (opts.plant) checkPlantRequest(opts.plant);
  const avoid = new Set(opts.avoidMrns ?? []);
  const rng = rngFor(SYNTHETIC_GENERATOR_VERSION, seed, 'cohort');
  const offsets = {
    MG: rng.int(0, MG_SCENARIOS.length - 1),
    K: rng.int(0, K_SCENARIOS.length - 1),
    GLU: rng.int(0, GLU_SCENARIOS.length - 1),
    A1C: rng.int(0, A1C_SCENARIOS.length - 1),
  };
  const extra = opts.plant?.extra ?? [];
  const extraOffsets = extra.map((x) => rng.int(0, x.scenarios.length - 1));
  const used = new Set<string>();
  const patients: Resource[] = [];
  const facts: PlantedFacts[] = [];
  const anchorsList: LabAnchors[] = [];
  for (let i = 0; i < n; i++) {
    const r = rngFor(SYNTHETIC_GENERATOR_VERSION, seed, 'patient', i, 'demographics');
    let mrn: string;
    do mrn = `S9${String(r.int(0, 999_999)).padStart(6, '0')}`;
    while (used.has(mrn) || avoid.has(mrn));
    used.add(mrn);
    let gender: 'male' | 'female' = r.chance(0.5) ? 'female' : 'male';
    let given = r.pick(gender === 'female' ? FEMALE_GIVEN : MALE_GIVEN);
    let family = r.pick(FAMILY);
    const ageYears = Math.round(r.normalClipped(58, 19, 18, 95));
    const dobMs = Date.UTC(2023 - ageYears, 10, 13) - r.int(0, 364) * DAY;
    let birthDate = new Date(dobMs).toISOString().slice(0, 10);
    let nearDuplicateOf: string | undefined;
    let nearDuplicateKind: PlantedFacts['nearDuplicateKind'];
    if (i % 8 === 7) {
      const prev = facts[i - 1]!;
      nearDuplicateOf = prev.mrn;
      if ((i >> 3) % 2 === 0) {
        nearDuplicateKind = 'same-name-dob-shifted';
        ({ given, family, gender } = prev);
        const shift = r.int(1, 3) * (r.chance(0.5) ? 1 : -1);
        birthDate = new Date(Date.parse(`${prev.birthDate}T00:00:00Z`) + shift * DAY).toISOString().slice(0, 10);
      } else {
        nearDuplicateKind = 'same-dob-other-name';
        birthDate = prev.birthDate;
        while (family === prev.family) family = r.pick(FAMILY);
      }
    }
    const town = r.pick(TOWNS);
    const race = r.pick(RACES);
    const eth = r.weighted(ETHNICITIES, [0.8, 0.2]);
    const patient: Resource = {
      resourceType: 'Patient',
      id: mrn,
      meta: { versionId: '1', lastUpdated: fmtInstant(Date.parse('2024-12-30T19:05:40.000+00:00') + i * 11 + (hash32(mrn) % 7)), source: `#${sourceId(r)}` },
      extension: [
        {
          url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race',
          valueCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/v3/Race', code: race[0], display: race[1] }] },
        },
        {
          url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity',
          valueCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/v3/Ethnicity', code: eth[0], display: eth[1] }] },
        },
      ],
      identifier: [
        {
          use: 'usual',
          type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR', display: 'Medical Record Number' }] },
          value: mrn,
        },
      ],
      name: [{ use: 'official', family, given: [given] }],
      telecom: [
        { system: 'phone', value: `555-01${String(r.int(0, 99)).padStart(2, '0')}`, use: 'home' },
        { system: 'email', value: `${given}.${family}${r.int(1, 99)}@example.org`.toLowerCase(), use: 'home' },
      ],
      gender,
      birthDate,
      address: [
        {
          line: [`${r.int(1, 9999)} ${r.pick(STREETS)}`],
          city: town.city,
          state: town.state,
          postalCode: `${town.zip3}${String(r.int(0, 99)).padStart(2, '0')}`,
        },
      ],
    };
    const sc = {
      MG: MG_SCENARIOS[(i + offsets.MG) % MG_SCENARIOS.length]!,
      K: K_SCENARIOS[(i + offsets.K) % K_SCENARIOS.length]!,
      GLU: GLU_SCENARIOS[(i + offsets.GLU) % GLU_SCENARIOS.length]!,
      A1C: A1C_SCENARIOS[(i + offsets.A1C) % A1C_SCENARIOS.length]!,
    };
    const anchors: LabAnchors = {};
    for (const code of ['MG', 'K', 'GLU', 'A1C'] as TaskLabCode[])
      anchors[code] = toAnchor(sc[code], `${code}:${sc[code].branch}${sc[code].edge ? `@${sc[code].edge}` : ''}`);
    const labs: Record<string, LabFacts> = {};
    extra.forEach((x, k) => {
      const s = x.scenarios[(i + extraOffsets[k]!) % x.scenarios.length]!;
      const a = toAnchor(s, `${x.code}:${s.branch}${s.edge ? `@${s.edge}` : ''}`);
      anchors[x.code] = { ...a, distractor: x.distractor };
      labs[x.code] = { branch: s.branch, ...(s.edge ? { edge: s.edge } : {}), latest: latestOf(a), latest24h: latestOf(a, WINDOW_START) };
    });
    const gluWindow = anchors.GLU!.points.filter((p) => Date.parse(p.time) >= WINDOW_START);
    facts.push({
      mrn,
      given,
      family,
      birthDate,
      gender,
      age: ageOn20231113(birthDate),
      mg: { branch: sc.MG.branch as MgBranch, edge: sc.MG.edge, latest24h: latestOf(anchors.MG!, WINDOW_START) },
      k: { branch: sc.K.branch as KBranch, latest: latestOf(anchors.K!) },
      glu: {
        branch: sc.GLU.branch as GluBranch,
        edge: sc.GLU.edge,
        latest: latestOf(anchors.GLU!),
        mean24h: gluWindow.length ? gluWindow.reduce((s, p) => s + p.value, 0) / gluWindow.length : null,
        count24h: gluWindow.length,
      },
      a1c: { branch: sc.A1C.branch as A1cBranch, edge: sc.A1C.edge, latest: latestOf(anchors.A1C!) },
      ...(extra.length ? { labs } : {}),
      ...(nearDuplicateOf ? { nearDuplicateOf, nearDuplicateKind } : {}),
    });
    patients.push(patient);
    anchorsList.push(anchors);
  }
  const clinical = generateClinical(
    patients.map((p, i) => ({ id: p.id!, birthDate: p.birthDate, gender: p.gender, anchors: anchorsList[i] })),
    { streamPrefix: `${SYNTHETIC_GENERATOR_VERSION}|${seed}`, firstId: SYNTHETIC_FIRST_ID, lastUpdatedBaseMs: Date.parse('2024-12-30T19:10:12.000+00:00') },
  );
  return { patients, facts, clinical };
}

function sourceId(r: Rng): string {
  const a = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < 16; i++) s += a[r.int(0, 61)];
  return s;
}

/** Fill a store with a synthetic cohort. Patients first, then the clinical records. */
export function loadSynthetic(store: StoreLoader, opts: SyntheticOptions): SyntheticBuild {
  const build = buildSynthetic(opts);
  for (const p of build.patients) store.add(p);
  build.clinical.load(store);
  return build;
}
