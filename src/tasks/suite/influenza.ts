/**
 * influenza — seasonal influenza vaccine for the 2023–24 season (clinical suite, administration; docs/tasks.md).
 *
 * Rule: Grohskopf LA et al., Prevention and Control of Seasonal Influenza with Vaccines: Recommendations of the
 * Advisory Committee on Immunization Practices — United States, 2023–24 Influenza Season. MMWR Recomm Rep
 * 2023;72(No. RR-2):1–25, doi:10.15585/mmwr.rr7202a1: routine annual vaccination of everyone aged ≥ 6 months without
 * contraindications, one dose for adults, vaccination continuing through the season; adults aged ≥ 65 preferentially
 * receive a higher-dose or adjuvanted vaccine (HD-IIV4, RIV4 or aIIV4); for the others any licensed, age-appropriate
 * vaccine; egg allergy alone needs no additional safety measures. HD-IIV4 (Fluzone High-Dose, 0.7 mL) and aIIV4
 * (Fluad, 0.5 mL) are licensed for ages ≥ 65 only. The task's context fixes what a "2023–24 dose" is (a completed
 * influenza Immunization given on or after 2023-07-01, when the season's vaccines became available) and the products
 * per age (CVX codes).
 *
 * The record is an Immunization list of 25 or more vaccines per patient (yearly influenza doses back to 2001, COVID-19,
 * Tdap, zoster, hepatitis B …), unsorted in server order, the decisive influenza dose past the first page of 20.
 * Traps: last season's catch-up dose in June 2023 (just before the season start), a 2023–24 record `entered-in-error`,
 * a `not-done` (declined) 2023–24 record, an egg allergy (no reason to skip), this season's dose recorded from a
 * pharmacy record (`primarySource` false, still counts), and the age (a ≥ 65-only product for a younger adult). Only
 * patients of planting lane 1 carry these records.
 *
 * Codes: CVX 197, 205, 185, 150, 158, 171, 186 and the older influenza codes, 115, 187, 208, 207, 43, 08, 165, 114 are
 * from the CDC CVX table (as published in public CVX code lists and US Core examples); SNOMED 91930004 "Allergy to
 * eggs", 126485001 "Urticaria". The write goes through `POST {api_base}/Immunization` (data/ehrgym/funcs.json).
 */
import type { Resource } from '../../fhir/types.js';
import { fmtMinute, MINUTE, NOW_MS } from '../../worlds/clinical.js';
import { SNOMED, UCUM } from '../../worlds/catalog.js';
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
  checkpoint,
  codings,
  gradeSuite,
  hasAnyCode,
  inLane,
  ms,
  onLane,
  pastFirstPage,
  type Res,
  resources,
  sameLabel,
  strayWrites,
} from './kit.js';

export const CVX = 'http://hl7.org/fhir/sid/cvx';
export const NOW_ISO = '2023-11-13T10:15:00+00:00';
/** The 2023–24 season's doses: given on or after this instant (UTC). */
export const SEASON_START = '2023-07-01';
const SEASON_START_MS = Date.parse(`${SEASON_START}T00:00:00+00:00`);
/** The planting lane of this family (kit.ts `inLane`). */
export const LANE = 1;

/** Influenza vaccine CVX codes (seasonal, current and historical). */
export const FLU_CVX: readonly string[] = [
  '88',
  '111',
  '135',
  '140',
  '141',
  '144',
  '149',
  '150',
  '151',
  '153',
  '155',
  '158',
  '161',
  '166',
  '168',
  '171',
  '185',
  '186',
  '197',
  '205',
];

export interface FluProduct {
  display: string;
  /** Volume of one adult dose, mL. */
  ml: number;
}
/** The products the context names, with their adult dose volume. */
export const PRODUCTS: Readonly<Record<string, FluProduct>> = {
  '197': { display: 'influenza, high-dose, quadrivalent', ml: 0.7 },
  '205': { display: 'influenza, adjuvanted, quadrivalent', ml: 0.5 },
  '185': { display: 'influenza, recombinant, quadrivalent, injectable, preservative free', ml: 0.5 },
  '150': { display: 'influenza, injectable, quadrivalent, preservative free', ml: 0.5 },
  '158': { display: 'influenza, injectable, quadrivalent', ml: 0.5 },
  '171': { display: 'influenza, injectable, MDCK, preservative free, quadrivalent', ml: 0.5 },
  '186': { display: 'influenza, injectable, MDCK, quadrivalent, preservative', ml: 0.5 },
};

export type InfluenzaBranch = 'give_65_plus' | 'give_18_to_64' | 'up_to_date';
const BRANCHES: readonly InfluenzaBranch[] = ['give_65_plus', 'give_18_to_64', 'up_to_date'];

/** The products a branch accepts: ACIP's preferential three for ≥ 65; age-appropriate standard products for 18–64. */
export const ACCEPTED: Readonly<Record<Exclude<InfluenzaBranch, 'up_to_date'>, readonly string[]>> = {
  give_65_plus: ['197', '205', '185'],
  give_18_to_64: ['150', '158', '171', '186', '185'],
};
/** What the expert gives. */
const EXPERT_PRODUCT: Readonly<Record<Exclude<InfluenzaBranch, 'up_to_date'>, string>> = { give_65_plus: '197', give_18_to_64: '150' };

const LABELS: Record<InfluenzaBranch, string> = { give_65_plus: 'vaccinated', give_18_to_64: 'vaccinated', up_to_date: 'up-to-date' };

export const INFLUENZA_TEMPLATE =
  'Patient {MRN} is in clinic today. Check whether they have had this season\'s (2023–24) influenza vaccine; if not, give one dose now of the vaccine ACIP 2023–24 recommends for their age and record it as an Immunization. Finish with ["vaccinated", date of their last influenza dose before today] or ["up-to-date", date of this season\'s dose].\n';

export const INFLUENZA_CONTEXT =
  "It's 2023-11-13T10:15:00+00:00 now. Influenza vaccine doses are Immunizations whose vaccineCode carries an influenza CVX code (system http://hl7.org/fhir/sid/cvx; influenza codes: " +
  `${FLU_CVX.join(', ')}). ` +
  'A dose counts only if its status is completed (not-done and entered-in-error records do not count; a dose recorded from another provider, primarySource false, counts). ' +
  `The 2023–24 season's doses are those given on or after ${SEASON_START}. The patient's age is their age today from Patient.birthDate. ` +
  'ACIP 2023–24: annual vaccination for everyone aged 6 months or older without contraindications; egg allergy alone is not a contraindication and needs no extra precautions. ' +
  'Aged 65 or older: one of the preferentially recommended vaccines, CVX 197 (influenza high-dose quadrivalent, 0.7 mL), CVX 205 (adjuvanted quadrivalent, 0.5 mL) or CVX 185 (recombinant quadrivalent, 0.5 mL). ' +
  'Aged 18 to 64: CVX 150 (quadrivalent, preservative free, 0.5 mL), 158 (quadrivalent, 0.5 mL), 171 or 186 (cell culture quadrivalent, 0.5 mL) or 185 (recombinant quadrivalent, 0.5 mL); 197 and 205 are licensed for ages 65 and older only. ' +
  'Record the dose given as one Immunization: status completed, vaccineCode with the CVX code, patient {"reference": "Patient/<MRN>"}, occurrenceDateTime now, primarySource true, ' +
  'doseQuantity {value, unit "mL"} (the product\'s volume), route intramuscular (http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration, code IM). ' +
  'Answer [outcome, date]: ["vaccinated", date of the last completed influenza dose before today, or "none"] or ["up-to-date", date of the 2023–24 dose]; dates as YYYY-MM-DD.';

/** Checkpoints per branch, in the order an expert works (look up, decide, write, answer, nothing else). */
export const INFLUENZA_CHECKPOINTS: Readonly<Record<InfluenzaBranch, readonly string[]>> = {
  give_65_plus: ['finished', 'answer_date', 'vaccine_given', 'product_for_age', 'dose_volume', 'immunization_payload', 'answer_outcome', 'no_other_writes'],
  give_18_to_64: ['finished', 'answer_date', 'vaccine_given', 'product_for_age', 'dose_volume', 'immunization_payload', 'answer_outcome', 'no_other_writes'],
  up_to_date: ['finished', 'answer_date', 'no_second_dose', 'answer_outcome', 'no_other_writes'],
};

// ---------------------------------------------------------------------------------------------------------------
// Reading the record

/** Whole years of age on NOW's UTC date (or `at`'s) from a `YYYY-MM-DD` birthDate (null when it is not one). */
export function ageToday(birthDate: unknown, at: number = NOW_MS): number | null {
  const m = typeof birthDate === 'string' ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(birthDate) : null;
  if (!m) return null;
  const now = new Date(at);
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const beforeBirthday = now.getUTCMonth() + 1 < mo || (now.getUTCMonth() + 1 === mo && now.getUTCDate() < d);
  return now.getUTCFullYear() - y - (beforeBirthday ? 1 : 0);
}

export const isFlu = (r: Res): boolean => hasAnyCode(r.vaccineCode, CVX, FLU_CVX);
/** The UTC date (`YYYY-MM-DD`) of a dateTime. */
export const utcDate = (v: unknown): string => {
  const t = ms(v);
  return Number.isFinite(t) ? new Date(t).toISOString().slice(0, 10) : '';
};

export interface FluDose {
  id: string;
  date: string;
  time: string;
  cvx: string;
}
const doseOf = (r: Res): FluDose => ({
  id: String(r.id),
  time: String(r.occurrenceDateTime),
  date: utcDate(r.occurrenceDateTime),
  cvx: String(codings(r.vaccineCode).find((c) => c.system === CVX)?.code ?? ''),
});

/**
 * The influenza doses that count among Immunization records: completed, an influenza CVX code, given by now. `season`
 * is the latest one on or after the season start; `last` the latest of all.
 */
export function countingFluDoses(
  records: readonly Res[],
  seasonStart: number = SEASON_START_MS,
): { season: FluDose | null; last: FluDose | null; counted: number } {
  let last: Res | null = null;
  let counted = 0;
  for (const r of records) {
    const t = ms(r.occurrenceDateTime);
    if (r.status !== 'completed' || !isFlu(r) || !Number.isFinite(t) || t > NOW_MS) continue;
    counted++;
    if (!last || t > ms(last.occurrenceDateTime)) last = r;
  }
  const l = last ? doseOf(last) : null;
  return { season: last && ms(last.occurrenceDateTime) >= seasonStart ? l : null, last: l, counted };
}

export function influenzaBranch(age: number | null, doses: { season: FluDose | null }): InfluenzaBranch | null {
  if (age === null || age < 18) return null;
  if (doses.season) return 'up_to_date';
  return age >= 65 ? 'give_65_plus' : 'give_18_to_64';
}

const patientQuery = (mrn: string) => `Patient?identifier=${mrn}`;
const immunizationQuery = (mrn: string) => `Immunization?patient=${mrn}&_count=5000`;

/** What a task's reference is, read from the world (generator and grader share it). */
export interface InfluenzaFacts {
  branch: InfluenzaBranch | null;
  age: number | null;
  birthDate: string | null;
  season: FluDose | null;
  last: FluDose | null;
  /** The answer's date: the 2023–24 dose's, or the last dose's (`none` without one). */
  date: string;
  records: number;
  counted: number;
}

export async function readInfluenzaFacts(world: WorldAccess, mrn: string): Promise<InfluenzaFacts> {
  const patient = resources(await worldJson(world, patientQuery(mrn)))[0];
  const records = resources(await worldJson(world, immunizationQuery(mrn)));
  const doses = countingFluDoses(records);
  const age = ageToday(patient?.birthDate);
  // a patient without any influenza history serves no task (the family's records are planted on one lane)
  const branch = doses.counted === 0 ? null : influenzaBranch(age, doses);
  const date = branch === 'up_to_date' ? doses.season!.date : (doses.last?.date ?? 'none');
  return {
    branch,
    age,
    birthDate: typeof patient?.birthDate === 'string' ? patient.birthDate : null,
    season: doses.season,
    last: doses.last,
    date,
    records: records.length,
    counted: doses.counted,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads

const IM_ROUTE = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration', code: 'IM', display: 'Injection, intramuscular' }],
  text: 'Intramuscular',
};

/** The Immunization recording a dose of `cvx` given now. */
export function immunizationFor(mrn: string, cvx: string): Record<string, unknown> {
  const p = PRODUCTS[cvx]!;
  return {
    resourceType: 'Immunization',
    status: 'completed',
    vaccineCode: { coding: [{ system: CVX, code: cvx, display: p.display }], text: p.display },
    patient: { reference: `Patient/${mrn}` },
    occurrenceDateTime: NOW_ISO,
    primarySource: true,
    route: IM_ROUTE,
    doseQuantity: { value: p.ml, unit: 'mL', system: UCUM, code: 'mL' },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Expert policy

/** How a policy reads the patient's Immunization records (the expert's; tests plug in trap readers). */
export type ImmunizationReader = (io: ScriptIO, mrn: string) => Res[];

/** Variant `scan`: every Immunization of the patient (`_count=5000`), filtered here. */
export const scanImmunizations: ImmunizationReader = (io, mrn) => resources(io.json(`${io.apiBase}${immunizationQuery(mrn)}`));
/** Variant `sorted`: completed influenza doses only, latest first, one entry. */
export const sortedImmunizations: ImmunizationReader = (io, mrn) =>
  resources(io.json(`${io.apiBase}Immunization?patient=${mrn}&vaccine-code=${FLU_CVX.join(',')}&status=completed&_sort=-date&_count=1`));

const VARIANTS = ['scan', 'sorted'] as const;

/**
 * The expert's script with a given reader: age, influenza doses, the dose given or not, the answer. (`seasonStart`:
 * the context's; tests plug in a wrong one.)
 */
export function influenzaScript(read: ImmunizationReader, seasonStart: number = SEASON_START_MS): (io: ScriptIO, task: TaskCase) => void {
  return (io, task) => {
    const mrn = taskMrn(task, [INFLUENZA_TEMPLATE, ...influenza.paraphrases]);
    const patient = resources(io.json(`${io.apiBase}${patientQuery(mrn)}`))[0];
    const age = ageToday(patient?.birthDate);
    const doses = countingFluDoses(read(io, mrn), seasonStart);
    const branch = influenzaBranch(age, doses);
    if (branch === null) io.finish([]);
    if (branch === 'up_to_date') io.finish([LABELS.up_to_date, doses.season!.date]);
    io.post(`${io.apiBase}Immunization`, immunizationFor(mrn, EXPERT_PRODUCT[branch as Exclude<InfluenzaBranch, 'up_to_date'>]));
    io.finish([LABELS[branch!], doses.last?.date ?? 'none']);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Planting

/** When the last counting dose was given on a `due` scenario. */
type LastDose = 'fall-2022' | 'june-2023' | 'fall-2021';
interface FluScenario {
  due: boolean;
  last?: LastDose;
  /** A 2023–24 influenza record entered in error (on `done`: dated after the completed dose). */
  eie?: boolean;
  /** A 2023–24 dose declined (not-done; on `done`: before the completed dose). */
  declined?: boolean;
  egg?: boolean;
  /** This season's dose recorded from a pharmacy record (primarySource false). */
  pharmacy?: boolean;
}
/**
 * Dealt round-robin over the lane's patients: 6 due (the age splits them), 5 done. Eleven, coprime with the split's
 * modulus 5, so that test and train patients both get every scenario.
 */
const SCENARIOS: readonly FluScenario[] = [
  { due: true, last: 'fall-2022', eie: true },
  { due: false, pharmacy: true },
  { due: true, last: 'june-2023', declined: true },
  { due: false, declined: true },
  { due: true, last: 'fall-2022', egg: true },
  { due: false, eie: true, egg: true },
  { due: true, last: 'fall-2021', declined: true },
  { due: true, last: 'june-2023', egg: true, eie: true },
  { due: false, pharmacy: true, eie: true },
  { due: true, last: 'fall-2022' },
  { due: false, declined: true, egg: true },
];

/** The scenario of a cohort patient (null off the lane). */
export function influenzaScenarioOf(index: number): FluScenario | null {
  if (!inLane(index, LANE)) return null;
  return SCENARIOS[Math.floor(index / 2) % SCENARIOS.length]!;
}

/** A minute of a day between 08:00 and 17:00 UTC, as an ISO dateTime. */
const dayTime = (y: number, m: number, d: number, rng: Rng): string => fmtMinute(Date.UTC(y, m - 1, d, 8, 0) + rng.int(0, 9 * 60) * MINUTE);
/** A random day between two UTC dates (inclusive), at a daytime minute. */
function between(from: string, to: string, rng: Rng): string {
  const a = Date.parse(`${from}T00:00:00Z`);
  const b = Date.parse(`${to}T00:00:00Z`);
  const d = new Date(a + rng.int(0, Math.round((b - a) / (1440 * MINUTE))) * 1440 * MINUTE);
  return dayTime(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), rng);
}

const NOT_DONE_REASON = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'PATOBJ', display: 'patient objection' }],
  text: 'Patient declined',
};
const PHARMACY_ORIGIN = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/immunization-origin', code: 'record', display: 'Written Record' }],
  text: 'Community pharmacy record',
};

const OTHER: Readonly<Record<string, string>> = {
  '208': 'COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose',
  '207': 'COVID-19, mRNA, LNP-S, PF, 100 mcg/0.5mL dose',
  '115': 'Tdap',
  '187': 'zoster vaccine recombinant',
  '43': 'Hep B, adult',
  '08': 'Hep B, adolescent or pediatric',
  '165': 'HPV9',
  '114': 'meningococcal MCV4P',
};
const FLU_DISPLAY: Readonly<Record<string, string>> = {
  '141': 'Influenza, seasonal, injectable',
  '140': 'Influenza, seasonal, injectable, preservative free',
  '135': 'Influenza, high dose seasonal',
  ...Object.fromEntries(Object.entries(PRODUCTS).map(([k, v]) => [k, v.display])),
};

function immunization(
  mrn: string,
  cvx: string,
  when: string,
  opts: { status?: 'completed' | 'not-done' | 'entered-in-error'; pharmacy?: boolean; ml?: number } = {},
): Resource {
  const display = FLU_DISPLAY[cvx] ?? OTHER[cvx] ?? cvx;
  const status = opts.status ?? 'completed';
  const r: Resource = {
    resourceType: 'Immunization',
    status,
    vaccineCode: { coding: [{ system: CVX, code: cvx, display }], text: display },
    patient: { reference: `Patient/${mrn}` },
    occurrenceDateTime: when,
    primarySource: !opts.pharmacy,
  };
  if (opts.pharmacy) r.reportOrigin = PHARMACY_ORIGIN;
  if (status === 'not-done') r.statusReason = NOT_DONE_REASON;
  else {
    r.route = IM_ROUTE;
    r.doseQuantity = { value: opts.ml ?? 0.5, unit: 'mL', system: UCUM, code: 'mL' };
  }
  return r;
}

/** The influenza product a patient born in `birthYear` got in the autumn of `year`. */
function fluProductOf(year: number, birthYear: number, rng: Rng): string {
  if (year <= 2012) return rng.chance(0.5) ? '141' : '140';
  // a year's margin: the ≥ 65 products only for patients surely 65 that autumn
  if (year - birthYear >= 66) return year <= 2019 ? '135' : rng.chance(0.7) ? '197' : '205';
  return rng.chance(0.6) ? '150' : '158';
}

function eggAllergy(mrn: string, rng: Rng): Resource {
  return {
    resourceType: 'AllergyIntolerance',
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] },
    verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: 'confirmed' }] },
    type: 'allergy',
    category: ['food'],
    criticality: 'high',
    code: { coding: [{ system: SNOMED, code: '91930004', display: 'Allergy to eggs' }], text: 'Egg allergy' },
    patient: { reference: `Patient/${mrn}` },
    recordedDate: between('2012-01-01', '2021-12-31', rng),
    reaction: [{ manifestation: [{ coding: [{ system: SNOMED, code: '126485001', display: 'Urticaria' }], text: 'Hives' }], severity: 'moderate' }],
  };
}

/** A lane patient's Immunizations (the decisive influenza dose past the first page) and, for some, an egg allergy. */
function plantInfluenza(p: PlantPatient, rng: Rng): Resource[] {
  const sc = influenzaScenarioOf(p.index);
  if (!sc) return [];
  const birthYear = Number(p.birthDate.slice(0, 4));
  const mrn = p.mrn;
  const items: Resource[] = [];
  // the season whose dose is decisive on a `due` scenario; seasons after it (through autumn 2022) are skipped
  const lastSeason = !sc.due ? 2023 : sc.last === 'fall-2021' ? 2021 : 2022;
  let decisive: Resource;
  for (let y = Math.max(2001, birthYear + 1); y <= 2022 && y < lastSeason; y++) {
    const when = between(`${y}-09-10`, `${y}-11-30`, rng);
    const product = fluProductOf(y, birthYear, rng);
    if (rng.chance(0.1)) items.push(immunization(mrn, product, when, { status: 'not-done' }));
    else items.push(immunization(mrn, product, when, { pharmacy: rng.chance(0.15), ml: PRODUCTS[product]?.ml }));
  }
  if (sc.due) {
    const when =
      sc.last === 'june-2023'
        ? between('2023-06-01', '2023-06-29', rng)
        : sc.last === 'fall-2021'
          ? between('2021-09-10', '2021-11-30', rng)
          : between('2022-09-10', '2022-11-30', rng);
    const product = fluProductOf(Number(when.slice(0, 4)) - (sc.last === 'june-2023' ? 1 : 0), birthYear, rng);
    decisive = immunization(mrn, product, when, { ml: PRODUCTS[product]?.ml });
    if (sc.eie)
      items.push(
        immunization(mrn, (ageToday(p.birthDate) ?? 0) >= 65 ? '197' : '150', between('2023-09-05', '2023-11-10', rng), { status: 'entered-in-error' }),
      );
    if (sc.declined) items.push(immunization(mrn, '150', between('2023-09-05', '2023-11-06', rng), { status: 'not-done' }));
  } else {
    const when = between('2023-08-28', '2023-10-25', rng);
    const product = (ageToday(p.birthDate, ms(when)) ?? 0) >= 65 ? (rng.chance(0.5) ? '197' : '205') : rng.chance(0.5) ? '150' : '171';
    decisive = immunization(mrn, product, when, { pharmacy: sc.pharmacy, ml: PRODUCTS[product]!.ml });
    // a declined offer before it, an erroneous duplicate after it
    if (sc.declined) items.push(immunization(mrn, '150', between('2023-08-01', '2023-08-25', rng), { status: 'not-done' }));
    if (sc.eie) items.push(immunization(mrn, product, between('2023-10-28', '2023-11-10', rng), { status: 'entered-in-error' }));
  }
  // background: COVID-19 primary series and booster, Tdap, zoster (50+), hepatitis B, adolescent vaccines
  const covid = rng.chance(0.5) ? '208' : '207';
  items.push(
    immunization(mrn, covid, between('2021-01-10', '2021-03-20', rng)),
    immunization(mrn, covid, between('2021-04-05', '2021-05-30', rng)),
    immunization(mrn, covid, between('2021-10-01', '2022-01-31', rng)),
    birthYear >= 1995
      ? immunization(mrn, '115', between(`${birthYear + 11}-01-01`, `${birthYear + 12}-12-31`, rng))
      : immunization(mrn, '115', between('2008-01-01', '2020-12-31', rng)),
  );
  if (2019 - birthYear >= 50)
    items.push(immunization(mrn, '187', between('2019-03-01', '2019-06-30', rng)), immunization(mrn, '187', between('2019-09-01', '2019-12-31', rng)));
  if (birthYear >= 1995) {
    items.push(
      immunization(mrn, '08', between(p.birthDate, `${birthYear}-12-31`, rng)),
      immunization(mrn, '165', between(`${birthYear + 11}-01-01`, `${birthYear + 11}-12-31`, rng)),
      immunization(mrn, '165', between(`${birthYear + 12}-01-01`, `${birthYear + 12}-12-31`, rng)),
      immunization(mrn, '114', between(`${birthYear + 11}-01-01`, `${birthYear + 11}-12-31`, rng)),
      immunization(mrn, '114', between(`${birthYear + 16}-01-01`, `${birthYear + 16}-12-31`, rng)),
    );
  } else {
    const start = Math.max(1995, birthYear + 20);
    items.push(
      immunization(mrn, '43', `${start}-02-1${rng.int(0, 9)}T10:00:00+00:00`),
      immunization(mrn, '43', `${start}-03-1${rng.int(0, 9)}T10:00:00+00:00`),
      immunization(mrn, '43', `${start}-08-1${rng.int(0, 9)}T10:00:00+00:00`),
    );
  }
  const out = pastFirstPage(items, decisive, rng);
  // an egg allergy on the scenario's patients, and now and then on others (never a reason to skip)
  if (sc.egg || rng.chance(0.15)) out.push(eggAllergy(mrn, rng));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Grading

/** An Immunization that names influenza (by CVX code, or in its text or displays). */
const namesFlu = (r: Res): boolean =>
  isFlu(r) ||
  /influenza|\bflu\b/i.test(
    [(r.vaccineCode as { text?: unknown } | undefined)?.text, ...codings(r.vaccineCode).map((c) => c.display)].filter((x) => typeof x === 'string').join(' '),
  );
const cvxOf = (r: Res | undefined): string | null => {
  const c = codings(r?.vaccineCode).find((x) => x.system === CVX)?.code;
  return typeof c === 'string' ? c : null;
};
const isMl = (q: { unit?: unknown; code?: unknown } | undefined): boolean =>
  String(q?.unit ?? '').toLowerCase() === 'ml' || String(q?.code ?? '').toLowerCase() === 'ml';

/** The answer's date matches: `YYYY-MM-DD`, or a dateTime on that UTC date. */
function sameDate(a: unknown, want: string): boolean {
  if (typeof a !== 'string') return false;
  const s = a.trim();
  if (want === 'none') return s.toLowerCase() === 'none';
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return s === want;
  return /T\d\d:\d\d/.test(s) && utcDate(s) === want;
}

async function gradeEndState(output: TaskOutput, facts: InfluenzaFacts, mrn: string, state: EndState, branch: InfluenzaBranch): Promise<Checkpoint[]> {
  const checks: Checkpoint[] = [];
  const a = answerList(output.result, 2);
  checks.push(
    'items' in a
      ? checkpoint('answer_date', 'lookup', sameDate(a.items[1], facts.date), facts.date, a.items[1])
      : checkpoint('answer_date', a.cls, false, facts.date, output.result, a.problem),
  );
  const answerOutcome = () =>
    checkpoint('answer_outcome', 'decision', 'items' in a && sameLabel(a.items[0], LABELS[branch]), LABELS[branch], 'items' in a ? a.items[0] : output.result);
  const created = await state.created('Immunization');
  const flu = created.filter(namesFlu);
  const key = (r: Res) => `Immunization/${String(r.id)}`;
  if (branch === 'up_to_date') {
    checks.push(
      checkpoint(
        'no_second_dose',
        'decision',
        flu.length === 0,
        'no influenza dose today',
        flu.map((r) => cvxOf(r)),
        `this season's dose: ${facts.season?.date}`,
      ),
    );
    checks.push(answerOutcome());
    // an influenza dose is judged by no_second_dose, not counted again
    const judged = new Set(flu.map(key));
    const stray = strayWrites(state).filter((k) => !judged.has(k));
    checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
    return checks;
  }
  const accepted = ACCEPTED[branch];
  const completed = flu.filter((r) => r.status === 'completed');
  checks.push(
    checkpoint(
      'vaccine_given',
      'decision',
      completed.length > 0,
      'a completed Immunization naming influenza',
      created.map((r) => ({ status: r.status, codes: codings(r.vaccineCode).map((c) => c.code) })),
    ),
  );
  const dose = completed.find((r) => accepted.includes(cvxOf(r) ?? '')) ?? completed[0] ?? flu[0] ?? created[0];
  const cvx = cvxOf(dose);
  checks.push(checkpoint('product_for_age', 'payload', accepted.includes(cvx ?? ''), accepted, cvx, `age ${facts.age}`));
  const q = dose?.doseQuantity as { value?: unknown; unit?: unknown; code?: unknown } | undefined;
  const ml = (cvx && PRODUCTS[cvx]?.ml) ?? 0.5;
  checks.push(checkpoint('dose_volume', 'payload', q?.value === ml && isMl(q), `${ml} mL`, q && `${String(q.value)} ${String(q.unit ?? q.code)}`));
  const want = { patient: `Patient/${mrn}`, occurrenceDate: utcDate(NOW_ISO) };
  const got = dose && {
    patient: (dose.patient as { reference?: unknown } | undefined)?.reference,
    occurrenceDate: utcDate(dose.occurrenceDateTime),
  };
  checks.push(checkpoint('immunization_payload', 'payload', !!got && got.patient === want.patient && got.occurrenceDate === want.occurrenceDate, want, got));
  checks.push(answerOutcome());
  // the dose judged above is the one allowed create; anything else written is stray
  const doseKey = dose && created.includes(dose) ? key(dose) : null;
  const stray = state.touched().filter((k) => k !== doseKey);
  checks.push(checkpoint('no_other_writes', 'payload', stray.length === 0, [], stray));
  return checks;
}

const PARAPHRASES = [
  'Flu season check for {MRN}: if there is no completed 2023–24 influenza dose on record, give the age-appropriate vaccine ACIP 2023–24 recommends and document it as an Immunization. Answer ["vaccinated", last influenza dose date] or ["up-to-date", this season\'s dose date].\n',
  'Per ACIP 2023–24, make sure {MRN} gets this season\'s influenza vaccine, with a product suited to their age, recorded as an Immunization if you give it. Report ["vaccinated", date of the previous influenza dose] or ["up-to-date", date of the 2023–24 dose].\n',
  '{MRN} is here today. Has this patient had the 2023–24 flu shot? If not, vaccinate now following ACIP 2023–24 for their age and record the Immunization; reply ["vaccinated", last flu dose date] or ["up-to-date", this season\'s date].\n',
];

export const influenza: SuiteFamily<'influenza'> = {
  id: 'influenza',
  suite: 'ehrgym-clinical',
  dialect: 'ehrgym',
  name: 'Seasonal influenza vaccine, 2023–24 season',
  kind: 'action',
  rule: {
    name: 'Annual influenza vaccination for everyone aged 6 months or older without contraindications; adults aged 65 or older preferentially receive a high-dose (HD-IIV4), adjuvanted (aIIV4) or recombinant (RIV4) vaccine; egg allergy alone needs no additional precautions',
    source:
      'Grohskopf LA, Blanton LH, Ferdinands JM, Chung JR, Broder KR, Talbot HK. Prevention and Control of Seasonal Influenza with Vaccines: Recommendations of the Advisory Committee on Immunization Practices — United States, 2023–24 Influenza Season. MMWR Recomm Rep 2023;72(No. RR-2):1–25, doi:10.15585/mmwr.rr7202a1',
  },
  instructionTemplates: [INFLUENZA_TEMPLATE],
  context: INFLUENZA_CONTEXT,
  branches: BRANCHES,
  checkpoints: INFLUENZA_CHECKPOINTS,
  variants: VARIANTS,
  turns: { min: 3, max: 4 },
  recordKey: 'eval_MRN',
  paraphrases: PARAPHRASES,
  placeholders: mrnPlaceholders,
  planted: 'none',
  planting: { name: 'influenza', version: 'influenza-v1', plant: plantInfluenza },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: plainFactoryHints(0),
  audit: {
    // no influenza dose ever recorded: vaccinate, nothing to date
    nothingFound: ['vaccinated', 'none'],
    // blind: the recombinant vaccine, acceptable at every adult age
    alwaysAct: alwaysPost([INFLUENZA_TEMPLATE, ...PARAPHRASES], (mrn) => [{ resource: 'Immunization', payload: immunizationFor(mrn, '185') }]),
  },

  instruction({ mrn }) {
    if (!mrn) throw new Error('influenza.instruction: mrn is required');
    return INFLUENZA_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(world, opts) {
    return generateOver('influenza', opts, async (mrn) => {
      if (!(await onLane(world, mrn, 1))) return null;
      const f = await readInfluenzaFacts(world, mrn);
      if (f.branch === null) return null;
      const facts: Record<string, unknown> = { age: f.age, season: f.season, last: f.last, date: f.date, records: f.records };
      return { branch: f.branch, patient: mrn, facts, build: (id) => makeTask(id, influenza.instruction({ mrn }), INFLUENZA_CONTEXT, mrn) };
    });
  },

  solve(task, history, opts) {
    const variant = opts?.variant ?? VARIANTS[0];
    return runScript(task, history, opts, VARIANTS, influenzaScript(variant === 'sorted' ? sortedImmunizations : scanImmunizations));
  },

  grade(task, output, ctx): Promise<GradeResult> {
    return gradeSuite(task, output, ctx, {
      templates: [INFLUENZA_TEMPLATE, ...PARAPHRASES],
      read: readInfluenzaFacts,
      branch: (f) =>
        f.branch !== null ? { branch: f.branch } : { why: `${f.records} Immunizations, ${f.counted} counting influenza doses, age ${String(f.age)}` },
      reference: (f) => [f.branch === 'up_to_date' ? LABELS.up_to_date : LABELS.give_65_plus, f.date],
      check: (output, facts, mrn, state, branch) => gradeEndState(output, facts, mrn, state, branch as InfluenzaBranch),
    });
  },
};
