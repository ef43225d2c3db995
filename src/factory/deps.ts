/**
 * The factory's view of the modules below it (worlds, fhir, tasks). Kept in one place so the pipeline can be driven
 * with the real modules (default) or with test doubles.
 */
import type { FhirStore } from '../fhir/store.js';
import {
  loadWorld,
  evaluationMrns as replicaEvaluationMrns,
  WORLD_NAMES,
  DEFAULT_SYNTHETIC_PATIENTS,
  type PlantedFacts,
  type WorldName,
} from '../worlds/index.js';
import { replicaPatients } from '../worlds/medagentbench.js';
import { FAMILY_IDS, FAMILIES, GRADER_VERSION, SOLVER_VERSION, loadTaskSet as loadTasks, plantRequest } from '../tasks/index.js';
import { suiteFamilies, suitePlantings } from '../tasks/registry.js';
import { CLINICAL_WORLD, splitPatients } from '../tasks/suite/splits.js';
import type { GradeResult, GraderContext, HistoryItem, TaskCase, TaskFamily, TaskOutput } from '../tasks/types.js';

export interface LoadedWorld {
  name: string;
  seed: number | null;
  patients: number | null;
  fingerprint: string;
  store: FhirStore;
  /** Patient MRNs of the world, in world order. */
  mrns: string[];
  /** Synthetic worlds: the planted facts per patient (used only to order generator candidates). */
  facts?: PlantedFacts[];
  /** The suite whose plantings the world carries (its train patients only in `mrns`). */
  suite?: string;
}

export interface FactoryDeps {
  /**
   * A world by name; with `suite`, that suite's clinical world (its fixed seed and size; `seed` and `patients` are
   * ignored), whose `mrns` are the train split's patients only.
   */
  loadWorld(name: string, seed: number, patients: number | null, suite?: string): Promise<LoadedWorld>;
  /** The families a corpus draws from: the ten MedAgentBench families, or a suite's. */
  families(suite?: string): readonly TaskFamily[];
  loadTaskSet(name: string): { name: string; cases: TaskCase[]; sha256: string };
  /** MRNs every evaluation task set of the replica uses (excluded from training patients on that world). */
  evaluationMrns(): string[];
  /** Patient resources of evaluation MRNs (for the name+DOB pollution check). */
  evaluationPatients(mrns: Set<string>): Array<{ mrn: string; given: string[]; family: string; birthDate: string }>;
  solverVersion: string;
  graderVersion: string;
}

export type { GradeResult, GraderContext, HistoryItem, TaskCase, TaskFamily, TaskOutput };

/** The default synthetic cohort size for `generate` (enough patients for balanced branches at --size 1530). */
export const DEFAULT_FACTORY_PATIENTS = DEFAULT_SYNTHETIC_PATIENTS;

/** The factory's dependencies on the real worlds and task families. */
export function realDeps(): FactoryDeps {
  return {
    async loadWorld(name, seed, patients, suite) {
      if (suite !== undefined) {
        if (name !== 'synthetic') throw new Error(`the ${suite} tasks live on their clinical world (synthetic), not "${name}"`);
        const w = await loadWorld({ world: 'synthetic', seed: CLINICAL_WORLD.seed, patients: CLINICAL_WORLD.patients, plantings: suitePlantings(suite) });
        return {
          name: w.name,
          seed: CLINICAL_WORLD.seed,
          patients: CLINICAL_WORLD.patients,
          fingerprint: w.fingerprint,
          store: w.store,
          mrns: splitPatients(w.patientIds, 'train'),
          suite,
        };
      }
      if (!(WORLD_NAMES as readonly string[]).includes(name)) throw new Error(`unknown world "${name}" (expected ${WORLD_NAMES.join(', ')})`);
      const synthetic = name === 'synthetic';
      const n = synthetic ? (patients ?? DEFAULT_FACTORY_PATIENTS) : null;
      const w = await loadWorld(synthetic ? { world: 'synthetic', seed, patients: n!, plant: plantRequest() } : { world: name as WorldName });
      return {
        name: w.name,
        seed: synthetic ? seed : null,
        patients: n,
        fingerprint: w.fingerprint,
        store: w.store,
        mrns: w.patientIds,
        ...(w.facts ? { facts: w.facts } : {}),
      };
    },
    families: (suite) => (suite === undefined ? FAMILY_IDS.map((id) => FAMILIES[id]) : suiteFamilies(suite)),
    loadTaskSet(name) {
      const s = loadTasks(name);
      return { name: s.name, cases: s.tasks, sha256: s.sha256 };
    },
    evaluationMrns: () => replicaEvaluationMrns(),
    evaluationPatients(mrns) {
      const out: Array<{ mrn: string; given: string[]; family: string; birthDate: string }> = [];
      for (const p of replicaPatients()) {
        if (!p.id || !mrns.has(p.id) || typeof p.birthDate !== 'string') continue;
        for (const n of (p.name ?? []) as Array<{ family?: string; given?: string[] }>) {
          if (n.family) out.push({ mrn: p.id, given: n.given ?? [], family: n.family, birthDate: p.birthDate });
        }
      }
      return out;
    },
    solverVersion: SOLVER_VERSION,
    graderVersion: GRADER_VERSION,
  };
}
