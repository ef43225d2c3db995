/**
 * The clinical suite's splits (docs/tasks.md, "The clinical suite"): one world, two disjoint sets of patients.
 *
 * - The world: the synthetic cohort `CLINICAL_WORLD` (seed, size) with every suite family's planting
 *   (`suitePlantings`), recorded in each task record as `ehrgym_world: {name: "synthetic", seed, patients, suite,
 *   fingerprint}`.
 * - `test`: frozen and shipped (`data/ehrgym-clinical/test.json` + `manifest.json`), on the cohort patients whose index
 *   is `< 2 (mod 5)`, `TEST_PER_FAMILY` tasks per family spread evenly over its branches, instructions by the family's
 *   own template. Made by `node --import tsx scripts/gen-clinical.ts`; `test/suite-splits.test.ts` regenerates it and
 *   compares bytes.
 * - `train`: the other patients (never a test patient), the family's paraphrased instructions only (never the test
 *   template), ids from `<family>_1001`; what the environment server and the factory use.
 */
import { createHash } from 'node:crypto';
import { rngFor } from '../../worlds/prng.js';
import { loadWorld, type World } from '../../worlds/index.js';
import { createFhirHandler } from '../../fhir/server.js';
import { handlerTransport } from '../../fhir/client.js';
import { OFFICIAL_API_BASE } from '../../fhir/types.js';
import { CLINICAL_SUITE, suiteFamilies, suitePlantings } from '../registry.js';
import { buildTaskSet, renderTaskFile } from '../taskset.js';
import type { TaskWorld } from '../loader.js';
import type { FamilyId, GeneratedTask, TaskFamily, WorldAccess } from '../types.js';

/**
 * Bumped whenever the frozen test split's content changes (a family added, a generator changed). v4: vitals answers
 * carry the blood pressure charted before the set.
 */
export const SUITE_VERSION = 'ehrgym-clinical-v4';
/**
 * Label of the generators' random streams (with the seed, split, family and branch). Unchanged since v3: a version
 * that only rewords a family's instruction or answer keeps every other task, and every task on its patient; a version
 * that changes which patients a family draws changes it.
 */
export const SUITE_STREAMS = 'ehrgym-clinical-v3';
/** The clinical world. */
export const CLINICAL_WORLD = { name: 'synthetic', seed: 11, patients: 200, suite: CLINICAL_SUITE } as const;
/** Seed of the generators' random streams (per family and branch). */
export const GENERATOR_SEED = 20231113;
/** Test tasks per family: 13 families × 28 = 364 ≥ 300. */
export const TEST_PER_FAMILY = 28;
/** Train tasks asked per family (fewer when the train patients cannot fill a branch). */
export const TRAIN_PER_FAMILY = 60;
/** First id of a train task (`warfarin_1001`), after every test id. */
export const TRAIN_FIRST_ID = 1001;

export type SuiteSplitName = 'test' | 'train';

/** Which split a cohort patient (by index) belongs to. */
export function splitOfPatient(index: number): SuiteSplitName {
  return index % 5 < 2 ? 'test' : 'train';
}

/** The patients of a split, in cohort order. */
export function splitPatients(patientIds: readonly string[], split: SuiteSplitName): string[] {
  return patientIds.filter((_, i) => splitOfPatient(i) === split);
}

export interface SuiteSplitOptions {
  split: SuiteSplitName;
  /** The world's patient ids in cohort order. */
  patientIds: readonly string[];
  perFamily?: number;
  seed?: number;
  suite?: string;
}

/**
 * Generate a split: each family of the suite over the split's patients, branches balanced. Train tasks take a
 * paraphrase of the instruction (chosen per task by a seeded stream); test tasks keep the template.
 */
export async function buildSuiteSplit(world: WorldAccess, opts: SuiteSplitOptions): Promise<GeneratedTask[]> {
  const seed = opts.seed ?? GENERATOR_SEED;
  const families = suiteFamilies(opts.suite ?? CLINICAL_SUITE);
  const built = await buildTaskSet(world, {
    families: families.map((f) => f.id as FamilyId),
    patients: splitPatients(opts.patientIds, opts.split),
    perFamily: opts.perFamily ?? (opts.split === 'test' ? TEST_PER_FAMILY : TRAIN_PER_FAMILY),
    balance: 'balanced',
    rngFor: (family, branch) => rngFor(SUITE_STREAMS, seed, opts.split, family, branch),
    startIndex: opts.split === 'test' ? 1 : TRAIN_FIRST_ID,
  });
  if (opts.split === 'test') return built.tasks;
  return built.tasks.map((g) => trainParaphrase(g, families.find((f) => g.task.id.startsWith(`${f.id}_`))!, [SUITE_STREAMS, seed, 'paraphrase', g.task.id]));
}

/**
 * A train task's instruction: one of its family's paraphrases (never the test template), chosen by a seeded stream
 * keyed by `key`, with the task's placeholders filled in. The environment's train split and the factory use it.
 */
export function trainParaphrase(g: GeneratedTask, family: TaskFamily, key: ReadonlyArray<string | number>): GeneratedTask {
  const rng = rngFor(...key);
  const p = family.paraphrases[Math.floor(rng.next() * family.paraphrases.length)]!;
  const values = family.placeholders(g.task) ?? { MRN: g.patient ?? '' };
  return { ...g, task: { ...g.task, instruction: p.replace(/\{([A-Z]+)\}/g, (m, k: string) => values[k] ?? m) } };
}

/** The shipped files of the test split: the task file (official format) and its manifest. */
export function renderTestSplit(tasks: readonly GeneratedTask[], world: TaskWorld): { taskFile: string; manifest: string } {
  const taskFile = renderTaskFile(tasks, world);
  const counts: Record<string, Record<string, number>> = {};
  for (const t of tasks) {
    const fam = t.task.id.slice(0, t.task.id.indexOf('_'));
    counts[fam] ??= {};
    counts[fam][t.branch] = (counts[fam][t.branch] ?? 0) + 1;
  }
  const manifest = {
    suite: world.suite,
    version: SUITE_VERSION,
    split: 'test',
    command: 'node --import tsx scripts/gen-clinical.ts',
    generatorSeed: GENERATOR_SEED,
    world: { name: world.name, seed: world.seed, patients: world.patients, suite: world.suite, fingerprint: world.fingerprint },
    patients: 'cohort index < 2 (mod 5); train uses the others',
    perFamily: TEST_PER_FAMILY,
    tasks: tasks.length,
    branches: counts,
    file: 'test.json',
    sha256: createHash('sha256').update(taskFile).digest('hex'),
  };
  return { taskFile, manifest: `${JSON.stringify(manifest, null, 2)}\n` };
}

/** The clinical world loaded in-process, with read access (and scratch sessions) under the official api_base. */
export interface ClinicalWorld {
  world: World;
  /** What generators and graders read through (`openSession` gives end-state grading its scratch sessions). */
  access: WorldAccess;
  /** The record a task file of this world carries (`ehrgym_world`). */
  record: TaskWorld;
}

/** Load the clinical world (default `CLINICAL_WORLD`; tests pass a smaller cohort). */
export async function openClinicalWorld(opts: { seed?: number; patients?: number; suite?: string } = {}): Promise<ClinicalWorld> {
  const seed = opts.seed ?? CLINICAL_WORLD.seed;
  const patients = opts.patients ?? CLINICAL_WORLD.patients;
  const suite = opts.suite ?? CLINICAL_SUITE;
  const world = await loadWorld({ world: 'synthetic', seed, patients, plantings: suitePlantings(suite) });
  const handle = createFhirHandler(world.store);
  const apiBase = OFFICIAL_API_BASE;
  let n = 0;
  const access: WorldAccess = {
    apiBase,
    fhir: handlerTransport(handle),
    openSession: async (name) => {
      const id = `${name}.${++n}`;
      return { transport: handlerTransport(handle, { session: id }), close: async () => void world.store.dropSession(id) };
    },
  };
  return { world, access, record: { name: 'synthetic', seed, patients, suite, fingerprint: world.fingerprint } };
}
