/**
 * The factory's view of the modules below it (worlds, fhir, tasks). Kept in one place so the pipeline can be driven
 * with the real modules (default) or with test doubles.
 */
import type { FhirStore } from '../fhir/store.js';
import type { GradeResult, GraderContext, HistoryItem, TaskCase, TaskFamily, TaskOutput } from '../tasks/types.js';

export interface LoadedWorld {
  name: string;
  seed: number | null;
  patients: number | null;
  fingerprint: string;
  store: FhirStore;
  /** Patient MRNs of the world, in world order. */
  mrns: string[];
}

export interface FactoryDeps {
  loadWorld(name: string, seed: number, patients: number | null): Promise<LoadedWorld>;
  families(): readonly TaskFamily[];
  loadTaskSet(name: string): { name: string; cases: TaskCase[]; sha256: string };
  /** MRNs every evaluation task set of the replica uses (excluded from training patients on that world). */
  evaluationMrns(): string[];
  /** Patient resources of evaluation MRNs (for the name+DOB pollution check). */
  evaluationPatients(mrns: Set<string>): Array<{ mrn: string; given: string[]; family: string; birthDate: string }>;
  solverVersion: string;
  graderVersion: string;
}

export type { GradeResult, GraderContext, HistoryItem, TaskCase, TaskFamily, TaskOutput };
