/**
 * Worlds: what the embedded FHIR server serves.
 *
 * - `medagentbench` (default): replica of the official MedAgentBench server (500 patients, ~590k clinical records,
 *   all 300 reference answers reproduced);
 * - `synthetic`: a seeded cohort (`seed`, `patients`) with planted facts covering every task branch;
 * - `empty`: nothing but what `imports` bring.
 *
 * Any world can take `imports` (FHIR Bundles / bulk NDJSON files or folders). The store is frozen when returned.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { FhirStore } from '../fhir/store.js';
import { MEDAGENTBENCH_NOW } from '../fhir/types.js';
import { loadReplica, MEDAGENTBENCH_FIRST_ID, MEDAGENTBENCH_GENERATOR_VERSION, replicaMrns, evaluationMrns } from './medagentbench.js';
import {
  loadPlantings,
  loadSynthetic,
  SYNTHETIC_FIRST_ID,
  SYNTHETIC_GENERATOR_VERSION,
  type PlantedFacts,
  type PlantRequest,
  type Planting,
} from './synthetic.js';
import { importFiles, listImportFiles, ImportError, type ImportReport } from './import.js';

export type WorldName = 'medagentbench' | 'synthetic' | 'empty';
export const WORLD_NAMES: readonly WorldName[] = ['medagentbench', 'synthetic', 'empty'];
export const DEFAULT_SYNTHETIC_SEED = 1;
/**
 * The synthetic cohort size whenever none is given (every CLI command, the eval default, the factory): 500, since a
 * smaller cohort cannot fill the default 1,530-row corpus's balanced branch quotas.
 */
export const DEFAULT_SYNTHETIC_PATIENTS = 500;

export interface LoadWorldOptions {
  world?: WorldName;
  /** Synthetic world only (default 1). */
  seed?: number;
  /** Synthetic world only (default DEFAULT_SYNTHETIC_PATIENTS, 500). */
  patients?: number;
  /** Synthetic world only: what the task families need planted (`plantRequest()` of the task registry); checked. */
  plant?: PlantRequest;
  /**
   * Synthetic world only: records planted beside the cohort (the clinical suite's families, `suitePlantings()` of the
   * task registry). None (the default) leaves the world byte-identical to the plain synthetic one.
   */
  plantings?: readonly Planting[];
  /** Files or folders to import (Bundles, NDJSON). */
  imports?: string[];
  /** Imports must resolve every reference (otherwise an ImportError lists the unresolved ones). */
  strict?: boolean;
  /** Skip Claim / ExplanationOfBenefit when importing. */
  skipBilling?: boolean;
  /** Shift imported dates by whole days so the latest falls on MedAgentBench's NOW day (not after NOW). */
  rebaseImports?: boolean;
  /** MedAgentBench compat codes on imported Observations (local `K`, `GLU`, `A1C`, `MG`, `BP`, …; see import.ts). */
  medagentbenchCodes?: boolean;
}

export interface World {
  name: WorldName;
  seed?: number;
  /** The frozen store (episodes write to sessions). */
  store: FhirStore;
  /**
   * Cheap deterministic identity: sha256 over world name, generator version, seed, patient count, resource counts
   * and the bytes of imported files. (For a full content hash use `store.fingerprint()`.)
   */
  fingerprint: string;
  /** Full content hash (sha256 over every base resource, `store.fingerprint()`), computed on first call and cached. */
  contentFingerprint(): string;
  /** Resources per type. */
  counts: Record<string, number>;
  /** Total resources. */
  total: number;
  importReport?: ImportReport;
  /** Synthetic world: planted facts per patient, in patient order. */
  facts?: PlantedFacts[];
  /** Patient ids (MRNs) in insertion order. */
  patientIds: string[];
}

export { evaluationMrns, replicaMrns };
export { importFiles, ImportError } from './import.js';
export type { ImportReport, ImportOptions } from './import.js';
export type { LabFacts, LabPlanting, LabScenario, PlantedFacts, PlantRequest, Planting, PlantPatient } from './synthetic.js';
export { PLANTABLE, checkPlantRequest } from './synthetic.js';

/** Build a world. Throws RangeError on bad options and ImportError on bad import files. */
export async function loadWorld(opts: LoadWorldOptions = {}): Promise<World> {
  const name = opts.world ?? 'medagentbench';
  if (!WORLD_NAMES.includes(name)) throw new RangeError(`unknown world "${String(name)}" (expected ${WORLD_NAMES.join(', ')})`);
  if (name !== 'synthetic' && (opts.seed !== undefined || opts.patients !== undefined)) {
    throw new RangeError(`seed and patients apply to the synthetic world only (world is ${name})`);
  }
  const store = new FhirStore();
  let nextId = 1;
  let facts: PlantedFacts[] | undefined;
  let seed: number | undefined;
  let patientIds: string[] = [];
  let version = 'empty-v1';
  const plantings = opts.plantings ?? [];
  if (plantings.length > 0 && name !== 'synthetic') throw new RangeError(`plantings apply to the synthetic world only (world is ${name})`);
  if (name === 'medagentbench') {
    const b = loadReplica(store);
    nextId = MEDAGENTBENCH_FIRST_ID + b.clinical.size;
    patientIds = b.patients.map((p) => p.id!);
    version = MEDAGENTBENCH_GENERATOR_VERSION;
  } else if (name === 'synthetic') {
    seed = opts.seed ?? DEFAULT_SYNTHETIC_SEED;
    const b = loadSynthetic(store, {
      seed,
      patients: opts.patients ?? DEFAULT_SYNTHETIC_PATIENTS,
      avoidMrns: replicaMrns(),
      ...(opts.plant ? { plant: opts.plant } : {}),
    });
    nextId = SYNTHETIC_FIRST_ID + b.clinical.size;
    nextId += loadPlantings(store, b, seed, plantings, nextId);
    facts = b.facts;
    patientIds = b.patients.map((p) => p.id!);
    version = SYNTHETIC_GENERATOR_VERSION;
  }
  const h = createHash('sha256').update(JSON.stringify({ name, version, seed: seed ?? null, patients: patientIds.length }));
  // extra lab plantings and suite plantings change the data: they are part of the identity (a world without them
  // hashes as before)
  const extra = name === 'synthetic' ? (opts.plant?.extra ?? []) : [];
  if (extra.length) h.update(JSON.stringify({ extraPlantings: extra }));
  if (plantings.length > 0) h.update(JSON.stringify({ plantings: plantings.map((p) => [p.name, p.version]) }));
  let importReport: ImportReport | undefined;
  if (opts.imports?.length) {
    const files = listImportFiles(opts.imports);
    importReport = importFiles(store, files, {
      firstId: nextId,
      skipBilling: opts.skipBilling,
      rebaseTo: opts.rebaseImports ? MEDAGENTBENCH_NOW : undefined,
      medagentbenchCodes: opts.medagentbenchCodes,
      exists: (type, id) => store.read(type, id) !== undefined,
    });
    if (opts.strict && importReport.unresolved.total > 0) {
      const u = importReport.unresolved;
      const ex = u.examples[0]!;
      throw new ImportError(
        `strict import: ${u.total} unresolved references (${u.dangling} dangling, ${u.conditional} conditional), e.g. ${ex.resource} ${ex.path} → ${ex.reference}`,
        ex.file,
        ex.line,
      );
    }
    for (const f of files)
      h.update(f.replace(/^.*[\\/]/, ''))
        .update('\u0000')
        .update(readFileSync(f));
    if (opts.skipBilling) h.update('skip-billing');
    if (opts.rebaseImports) h.update('rebase');
    if (opts.medagentbenchCodes) h.update('medagentbench-codes');
    patientIds = store.search('Patient', []).handles.map((hd) => store.idOf('Patient', hd));
  }
  store.freeze();
  const counts: Record<string, number> = {};
  for (const t of store.types().sort()) counts[t] = store.count(t);
  h.update(JSON.stringify(counts));
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  let content: string | undefined;
  return {
    name,
    seed,
    store,
    fingerprint: h.digest('hex'),
    contentFingerprint: () => (content ??= store.fingerprint()),
    counts,
    total,
    importReport,
    facts,
    patientIds,
  };
}
