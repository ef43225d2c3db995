/**
 * Building new task sets from the generators: per-family quotas spread evenly over the family's branches
 * (`balanced`) or following the world's own branch mix (`natural`), written in the official file format.
 */
import type { FamilyId, GeneratedTask, RandomSource, WorldAccess } from './types.js';
import { FAMILIES } from './registry.js';
import { pyJsonDumps } from './pysem.js';
import { WORLD_KEY, type TaskWorld } from './loader.js';

export type BalanceMode = 'balanced' | 'natural';
export const BALANCE_MODES: readonly BalanceMode[] = ['balanced', 'natural'];

export interface BuildTaskSetOptions {
  families: readonly FamilyId[];
  /** Candidate patients (MRNs). */
  patients: readonly string[];
  /** Instances per family. */
  perFamily: number;
  balance: BalanceMode;
  /** Random stream per (family, branch); same streams → same set. */
  rngFor: (family: FamilyId, branch: string) => RandomSource;
  /** Number of each family's first id (`taskN_<startIndex>`); default 1. */
  startIndex?: number;
}

export interface BuiltTaskSet {
  tasks: GeneratedTask[];
  /** Instances per family and branch, and what could not be filled. */
  summary: Array<{ family: FamilyId; branch: string; wanted: number; got: number }>;
}

/** Generate a task set over a world. Ids are `taskN_1…` per family, in family then branch order. */
export async function buildTaskSet(world: WorldAccess, opts: BuildTaskSetOptions): Promise<BuiltTaskSet> {
  const tasks: GeneratedTask[] = [];
  const summary: BuiltTaskSet['summary'] = [];
  for (const id of opts.families) {
    const fam = FAMILIES[id];
    let next = opts.startIndex ?? 1;
    if (opts.balance === 'natural' || fam.branches.length === 1) {
      const got = await fam.generate(world, { rng: opts.rngFor(id, '*'), patients: opts.patients, count: opts.perFamily, startIndex: next });
      tasks.push(...got);
      summary.push({ family: id, branch: '*', wanted: opts.perFamily, got: got.length });
      continue;
    }
    const n = fam.branches.length;
    for (const [i, branch] of fam.branches.entries()) {
      const wanted = Math.floor(opts.perFamily / n) + (i < opts.perFamily % n ? 1 : 0);
      if (wanted === 0) continue;
      const got = await fam.generate(world, { rng: opts.rngFor(id, branch), patients: opts.patients, branch, count: wanted, startIndex: next });
      next += got.length;
      tasks.push(...got);
      summary.push({ family: id, branch, wanted, got: got.length });
    }
  }
  return { tasks, summary };
}

/**
 * The task file text: Python `json.dumps(list)` of the records, like the official files (no trailing newline). With
 * `world`, every record ends with the key `ehrgym_world` recording it (see loader.ts).
 */
export function renderTaskFile(tasks: readonly GeneratedTask[], world?: TaskWorld): string {
  if (!world) return pyJsonDumps(tasks.map((t) => t.task));
  const w: Record<string, unknown> = { name: world.name };
  if (world.seed !== undefined) w.seed = world.seed;
  if (world.patients !== undefined) w.patients = world.patients;
  if (world.suite !== undefined) w.suite = world.suite;
  if (world.fingerprint !== undefined) w.fingerprint = world.fingerprint;
  return pyJsonDumps(tasks.map((t) => ({ ...t.task, [WORLD_KEY]: w })));
}

/** One JSON line per task with its branch, patient and facts (a sidecar for reports). */
export function renderFactsJsonl(tasks: readonly GeneratedTask[]): string {
  return tasks
    .map((t) => JSON.stringify({ id: t.task.id, branch: t.branch, patient: t.patient, facts: t.facts }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)))
    .map((l) => `${l}\n`)
    .join('');
}
