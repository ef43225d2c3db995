/**
 * The `medagentbench` replica world: the 500 Patient resources of the official server's `Patient?_count=500` page
 * (exact JSON, server order; data/medagentbench/patients.ndjson) plus seeded clinical history for the 100 cohort
 * patients (positions 0–99), planted so that the official grader's reference answers of all 300 tasks come out as in
 * expected_answers_v2.DERIVED.json (anchors in data/medagentbench/anchors.json, see scripts/derive-anchors.ts).
 * Non-cohort patients (positions 100–499) are demographics only.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Resource } from '../fhir/types.js';
import type { StoreLoader } from '../fhir/store-api.js';
import { generateClinical, type ClinicalHistory, type LabAnchors } from './clinical.js';

/** Generator version: bump when generated content changes (part of the world fingerprint). */
export const MEDAGENTBENCH_GENERATOR_VERSION = 'medagentbench-v1';
/** First numeric id of generated clinical records (HAPI-style server ids). */
export const MEDAGENTBENCH_FIRST_ID = 1000;

export function dataPath(...parts: string[]): string {
  return fileURLToPath(new URL(`../../data/${parts.join('/')}`, import.meta.url));
}

export interface AnchorsFile {
  now: string;
  cohort: string[];
  patients: Record<string, LabAnchors>;
}

let patientsCache: Resource[] | undefined;
/** The 500 replica Patient resources in server order (fresh copies). */
export function replicaPatients(): Resource[] {
  patientsCache ??= readFileSync(dataPath('medagentbench', 'patients.ndjson'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Resource);
  return patientsCache.map((p) => structuredClone(p));
}

let anchorsCache: AnchorsFile | undefined;
export function replicaAnchors(): AnchorsFile {
  anchorsCache ??= JSON.parse(readFileSync(dataPath('medagentbench', 'anchors.json'), 'utf8')) as AnchorsFile;
  return anchorsCache;
}

/** All 500 replica MRNs (Patient ids) in server order. */
export function replicaMrns(): string[] {
  return replicaPatients().map((p) => p.id!);
}

let evalCache: string[] | undefined;
/** The 98 distinct `eval_MRN`s of the official 300-task set (sorted), read from the shipped task file. */
export function evaluationMrns(): string[] {
  if (!evalCache) {
    const tasks = JSON.parse(readFileSync(dataPath('medagentbench', 'test_data_v2.json'), 'utf8')) as Array<{ eval_MRN?: string }>;
    evalCache = [...new Set(tasks.map((t) => t.eval_MRN).filter((m): m is string => typeof m === 'string'))].sort();
  }
  return [...evalCache];
}

export interface ReplicaBuild {
  patients: Resource[];
  clinical: ClinicalHistory;
}

/** Build the replica content (no store involved). */
export function buildReplica(): ReplicaBuild {
  const patients = replicaPatients();
  const anchors = replicaAnchors();
  const cohort = patients.slice(0, 100);
  if (cohort.map((p) => p.id).join() !== anchors.cohort.join()) throw new Error('anchors.json cohort does not match patients.ndjson');
  const clinical = generateClinical(
    cohort.map((p) => ({ id: p.id!, birthDate: p.birthDate, gender: p.gender, anchors: anchors.patients[p.id!] })),
    {
      streamPrefix: MEDAGENTBENCH_GENERATOR_VERSION,
      firstId: MEDAGENTBENCH_FIRST_ID,
      lastUpdatedBaseMs: Date.parse('2024-12-30T19:10:12.000+00:00'),
      scale: 1,
    },
  );
  return { patients, clinical };
}

/** Fill a store with the replica world. Patients first (server order), then the clinical records. */
export function loadReplica(store: StoreLoader): ReplicaBuild {
  const build = buildReplica();
  for (const p of build.patients) store.add(p);
  build.clinical.load(store);
  return build;
}
