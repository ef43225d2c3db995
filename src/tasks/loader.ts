/**
 * Task-set loading: the shipped official files (`medagentbench-v1`, `medagentbench-v2`) or any file of the same
 * format (a JSON array of `{id, instruction, context, [sol], [eval_MRN]}`), validated with clear errors.
 *
 * The world a file was generated on travels inside it: every record of a generated file carries the same extra key
 * `ehrgym_world: {name, [seed], [patients], fingerprint}` (the official loader reads only the keys it knows, so the
 * file stays an official task file). A file without it (the official ones) means the MedAgentBench replica.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TaskCase } from './types.js';
import { FAMILIES, FAMILY_IDS, isFamilyId, SUITE_FAMILY_IDS } from './registry.js';

/** The world a task file was generated on (`ehrgym_world` on each record). */
export interface TaskWorld {
  /** `synthetic`, `medagentbench`, … */
  name: string;
  /** Synthetic world: its seed and number of patients. */
  seed?: number;
  patients?: number;
  /**
   * Synthetic world: the suite whose families' plantings the world carries (`ehrgym-clinical`: the clinical world,
   * `loadWorld({ plantings: suitePlantings(suite) })`); absent for the plain synthetic world.
   */
  suite?: string;
  /** The world's fingerprint (`World.fingerprint`, as recorded in run manifests). */
  fingerprint?: string;
}

/** The record key carrying the world. */
export const WORLD_KEY = 'ehrgym_world';

/** What a file without a world record means: the MedAgentBench replica. */
export const REPLICA_WORLD: TaskWorld = { name: 'medagentbench' };

export interface TaskSet {
  /** `medagentbench-v2`, or the file's base name without extension. */
  name: string;
  /** Absolute path of the file read. */
  path: string;
  /** The records in file order, with their key order preserved. */
  tasks: TaskCase[];
  /** sha256 (hex) of the file's bytes. */
  sha256: string;
  rawText: string;
  /** The world recorded in the file; absent for files without a record (the official ones: the replica). */
  world?: TaskWorld;
}

const DATA_DIR = fileURLToPath(new URL('../../data/', import.meta.url));

/** The built-in task sets (files under `data/`). */
export const KNOWN_TASK_SETS: Readonly<Record<string, string>> = {
  'medagentbench-v1': 'medagentbench/test_data_v1.json',
  'medagentbench-v2': 'medagentbench/test_data_v2.json',
  // the clinical suite's frozen test split (src/tasks/suite/splits.ts, scripts/gen-clinical.ts)
  'ehrgym-clinical': 'ehrgym-clinical/test.json',
};

export class TaskSetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskSetError';
  }
}

const ID_RE = /^([a-z][a-z0-9]*)_(\d+)$/;

/** Validate parsed records; `where` names the file in messages. */
export function validateTasks(data: unknown, where: string): TaskCase[] {
  if (!Array.isArray(data)) throw new TaskSetError(`${where}: expected a JSON array of task records, got ${data === null ? 'null' : typeof data}`);
  const seen = new Set<string>();
  data.forEach((rec, i) => {
    const at = `${where}: record ${i}`;
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) throw new TaskSetError(`${at}: not an object`);
    const r = rec as Record<string, unknown>;
    if (typeof r.id !== 'string') throw new TaskSetError(`${at}: "id" must be a string`);
    const m = ID_RE.exec(r.id);
    if (!m) throw new TaskSetError(`${at}: id "${r.id}" is not of the form <family>_<k> (task<N>_<k>, warfarin_<k>)`);
    if (!isFamilyId(m[1])) {
      const known = /^task\d+$/.test(m[1]) ? FAMILY_IDS : SUITE_FAMILY_IDS;
      throw new TaskSetError(`${at} (id "${r.id}"): unknown task family "${m[1]}" (known: ${known.join(', ')})`);
    }
    if (seen.has(r.id)) throw new TaskSetError(`${at}: duplicate id "${r.id}"`);
    seen.add(r.id);
    for (const k of ['instruction', 'context'] as const) {
      if (typeof r[k] !== 'string') throw new TaskSetError(`${at} (id "${r.id}"): "${k}" must be a string`);
    }
    if ('sol' in r && !(Array.isArray(r.sol) && r.sol.every((s) => typeof s === 'string'))) {
      throw new TaskSetError(`${at} (id "${r.id}"): "sol" must be an array of strings`);
    }
    if ('eval_MRN' in r && typeof r.eval_MRN !== 'string') {
      throw new TaskSetError(`${at} (id "${r.id}"): "eval_MRN" must be a string`);
    }
    if (WORLD_KEY in r) {
      const problem = worldProblem(r[WORLD_KEY]);
      if (problem) throw new TaskSetError(`${at} (id "${r.id}"): "${WORLD_KEY}" ${problem}`);
    }
    const key = FAMILIES[m[1]].recordKey;
    if (!(key in r)) throw new TaskSetError(`${at} (id "${r.id}"): ${m[1]} records need "${key}"`);
  });
  return data as TaskCase[];
}

function worldProblem(w: unknown): string | undefined {
  if (typeof w !== 'object' || w === null || Array.isArray(w)) return 'must be an object';
  const o = w as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name === '') return 'needs a "name"';
  for (const k of ['seed', 'patients'] as const) {
    if (k in o && !(typeof o[k] === 'number' && Number.isInteger(o[k]) && (o[k] as number) >= 0)) return `"${k}" must be a non-negative integer`;
  }
  if ('fingerprint' in o && typeof o.fingerprint !== 'string') return '"fingerprint" must be a string';
  if ('suite' in o && (typeof o.suite !== 'string' || o.suite === '')) return '"suite" must be a non-empty string';
  return undefined;
}

const sameWorld = (a: TaskWorld, b: TaskWorld): boolean =>
  a.name === b.name && a.seed === b.seed && a.patients === b.patients && a.suite === b.suite && a.fingerprint === b.fingerprint;

/** The world recorded on validated records: the same on every record, or on none. */
export function recordedWorld(tasks: readonly TaskCase[], where: string): TaskWorld | undefined {
  let first: TaskWorld | undefined;
  tasks.forEach((t, i) => {
    const w = (t as unknown as Record<string, unknown>)[WORLD_KEY] as TaskWorld | undefined;
    if (i === 0) first = w;
    else if ((w === undefined) !== (first === undefined) || (w && first && !sameWorld(w, first))) {
      throw new TaskSetError(`${where}: record ${i} (id "${t.id}") has another "${WORLD_KEY}" than record 0: one file holds tasks of one world`);
    }
  });
  return (
    first && {
      name: first.name,
      seed: first.seed,
      patients: first.patients,
      ...(first.suite !== undefined ? { suite: first.suite } : {}),
      fingerprint: first.fingerprint,
    }
  );
}

/** `synthetic seed 1 (100 patients)`, `medagentbench (the replica)`. */
export function describeWorld(w: TaskWorld): string {
  if (w.name === 'medagentbench') return 'medagentbench (the replica)';
  const extra = [
    w.seed !== undefined ? ` seed ${w.seed}` : '',
    w.patients !== undefined ? ` (${w.patients} patients)` : '',
    w.suite !== undefined ? ` with the ${w.suite} plantings` : '',
  ].join('');
  return `${w.name}${extra}`;
}

/** How a task set is named in messages: its built-in name, or the file as given. */
export function taskSetLabel(set: Pick<TaskSet, 'name' | 'path'>): string {
  return KNOWN_TASK_SETS[set.name] !== undefined ? set.name : set.path;
}

/** Requested world flags (`--world`, `--seed`, `--patients`), all optional. */
export interface WorldRequest {
  world?: string;
  seed?: number;
  patients?: number;
}

/**
 * The world to run or grade `set` on: the recorded one (the replica for files without a record), unless flags ask for
 * another, which is refused with one line naming both. Returns `loadWorld` options; the synthetic defaults are
 * `defaults.seed` / `defaults.patients`.
 */
export function worldForTaskSet(
  set: Pick<TaskSet, 'name' | 'path' | 'world'>,
  req: WorldRequest,
  defaults: { seed: number; patients: number },
): { world: string; seed?: number; patients?: number; suite?: string } {
  const recorded = set.world ?? REPLICA_WORLD;
  const name = req.world ?? recorded.name;
  const flags = [
    req.world !== undefined ? `--world ${req.world}` : '',
    req.seed !== undefined ? `--seed ${req.seed}` : '',
    req.patients !== undefined ? `--patients ${req.patients}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  if (name !== 'synthetic' && (req.seed !== undefined || req.patients !== undefined)) {
    throw new TaskSetError(`--seed and --patients apply to the synthetic world only (world is ${name})`);
  }
  const wanted: TaskWorld =
    name === 'synthetic'
      ? {
          name,
          seed: req.seed ?? (recorded.name === 'synthetic' ? recorded.seed : undefined) ?? defaults.seed,
          patients: req.patients ?? (recorded.name === 'synthetic' ? recorded.patients : undefined) ?? defaults.patients,
        }
      : { name };
  const recordedFull: TaskWorld =
    recorded.name === 'synthetic'
      ? { name: 'synthetic', seed: recorded.seed ?? defaults.seed, patients: recorded.patients ?? defaults.patients }
      : { name: recorded.name };
  if (wanted.name !== recordedFull.name || wanted.seed !== recordedFull.seed || wanted.patients !== recordedFull.patients) {
    throw new TaskSetError(
      `${flags}: the tasks of ${taskSetLabel(set)} were made on world ${describeWorld(recordedFull)}, not ${describeWorld(wanted)} (drop the flag to use the recorded world)`,
    );
  }
  const suite = recorded.name === 'synthetic' && recorded.suite !== undefined ? { suite: recorded.suite } : {};
  return name === 'synthetic' ? { world: name, seed: wanted.seed, patients: wanted.patients, ...suite } : { world: name };
}

/** Refuse a world whose fingerprint differs from the one recorded in the task file (one line naming both). */
export function checkWorldFingerprint(set: Pick<TaskSet, 'name' | 'path' | 'world'>, world: { fingerprint: string }): void {
  const rec = set.world?.fingerprint;
  if (rec === undefined || rec === world.fingerprint) return;
  throw new TaskSetError(
    `the tasks of ${taskSetLabel(set)} were made on world ${describeWorld(set.world!)} with fingerprint ${rec.slice(0, 12)}, but that world now has fingerprint ${world.fingerprint.slice(0, 12)} (another ehrgym version?): regenerate the task file`,
  );
}

/** Resolve a set name or a path to a file path. */
export function resolveTaskSet(nameOrPath: string): { name: string; path: string } {
  const known = KNOWN_TASK_SETS[nameOrPath];
  if (known) return { name: nameOrPath, path: DATA_DIR + known };
  if (existsSync(nameOrPath)) return { name: basename(nameOrPath, extname(nameOrPath)), path: nameOrPath };
  throw new TaskSetError(`unknown task set "${nameOrPath}": not a file and not one of ${Object.keys(KNOWN_TASK_SETS).join(', ')}`);
}

/** Load and validate a task set. Throws `TaskSetError` with a message naming the set or file. */
export function loadTaskSet(nameOrPath: string): TaskSet {
  const { name, path } = resolveTaskSet(nameOrPath);
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new TaskSetError(`cannot read task file ${path}: ${(e as Error).message}`);
  }
  const rawText = buf.toString('utf8');
  let data: unknown;
  try {
    data = JSON.parse(rawText);
  } catch (e) {
    throw new TaskSetError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  const tasks = validateTasks(data, path);
  const world = recordedWorld(tasks, path);
  return { name, path, tasks, sha256: createHash('sha256').update(buf).digest('hex'), rawText, ...(world ? { world } : {}) };
}
