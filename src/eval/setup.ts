/**
 * Wiring used by the CLI commands `eval` and `grade`: task sets, the FHIR backend (embedded world or external
 * server) and the official grader, with input problems turned into `EvalError`s that name the flag or file.
 */
import { OFFICIAL_API_BASE } from '../fhir/types.js';
import { checkWorldFingerprint, loadTaskSet, TaskSetError, worldForTaskSet, type TaskSet as LoadedTaskSet, type WorldRequest } from '../tasks/loader.js';
import { gradeOutput as officialGrade } from '../tasks/grade.js';
import { plantRequest, suitePlantings } from '../tasks/registry.js';
import { DEFAULT_SYNTHETIC_PATIENTS, DEFAULT_SYNTHETIC_SEED, loadWorld, type World, type WorldName } from '../worlds/index.js';
import { embeddedBackend, externalBackend, checkFhirServer, withSlash, type FhirBackend } from './backend.js';
import { EvalError, type Grader, type TaskSet } from './run.js';

/** The official grader (refsol port): `task error` outputs are graded too, `None` results are not. */
export const officialGrader: Grader = (task, output, ctx) => officialGrade(task, output, ctx);

/** A task set as the CLI opens it: what a run needs, plus where it came from and the world it records. */
export type OpenedTaskSet = TaskSet & Pick<LoadedTaskSet, 'path' | 'world'>;

export function openTaskSet(nameOrFile: string): OpenedTaskSet {
  try {
    const t = loadTaskSet(nameOrFile);
    return { name: t.name, tasks: t.tasks, sha256: t.sha256, path: t.path, ...(t.world ? { world: t.world } : {}) };
  } catch (err) {
    if (err instanceof TaskSetError) throw new EvalError(`--tasks: ${err.message}`);
    throw err;
  }
}

/**
 * The embedded world to run or grade `set` on: the one its file records (the replica for the official files), or the
 * one `--world`/`--seed`/`--patients` name when they agree with it; a mismatch is an EvalError naming both.
 */
export function worldOfTaskSet(set: OpenedTaskSet, req: WorldRequest): Pick<BackendChoice, 'world' | 'seed' | 'patients' | 'suite'> {
  try {
    return worldForTaskSet(set, req, { seed: DEFAULT_SYNTHETIC_SEED, patients: DEFAULT_SYNTHETIC_PATIENTS });
  } catch (err) {
    if (err instanceof TaskSetError) throw new EvalError(err.message);
    throw err;
  }
}

/** Refuse an embedded world whose fingerprint differs from the one the task file records. */
export function checkTaskSetWorld(set: OpenedTaskSet, backend: FhirBackend): void {
  if (!('fingerprint' in backend.world)) return; // an external server: nothing to compare
  try {
    checkWorldFingerprint(set, backend.world);
  } catch (err) {
    if (err instanceof TaskSetError) throw new EvalError(`--tasks: ${err.message}`);
    throw err;
  }
}

export function checkApiBase(apiBase: string | undefined): string {
  const base = apiBase ?? OFFICIAL_API_BASE;
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    throw new EvalError(`--api-base: not an absolute URL: ${base}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new EvalError(`--api-base: not an http(s) URL: ${base}`);
  return base;
}

export interface BackendChoice {
  apiBase: string;
  /** External server; otherwise the embedded world. */
  fhirUrl?: string;
  world?: string;
  /** Synthetic world: seed and number of patients. */
  seed?: number;
  patients?: number;
  /** Synthetic world: the suite whose plantings it carries (the clinical world of `ehrgym-clinical`). */
  suite?: string;
  /** Live POSTs write into sessions that must be dropped on an external ehrgym server. */
  live?: boolean;
}

const worlds = new Map<string, Promise<World>>();

/**
 * Worlds are immutable after loading (episodes write to sessions that are dropped), so one process builds each
 * world once, however many runs or regrades it performs.
 */
function worldOnce(name: WorldName, seed?: number, patients?: number, suite?: string): Promise<World> {
  const key = JSON.stringify([name, seed ?? null, patients ?? null, suite ?? null]);
  let w = worlds.get(key);
  if (!w) {
    w = (async () =>
      loadWorld({
        world: name,
        ...(seed !== undefined ? { seed } : {}),
        ...(patients !== undefined ? { patients } : {}),
        plant: plantRequest(),
        ...(suite !== undefined ? { plantings: suitePlantings(suite) } : {}),
      }))();
    worlds.set(key, w);
    w.catch(() => worlds.delete(key));
  }
  return w;
}

/** The FHIR backend of a run: the embedded world in-process, or an external server (checked with GET metadata). */
export async function openBackend(choice: BackendChoice): Promise<FhirBackend> {
  if (choice.fhirUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(choice.fhirUrl);
    } catch {
      throw new EvalError(`--fhir-url: not an absolute URL: ${choice.fhirUrl}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new EvalError(`--fhir-url: not an http(s) URL: ${choice.fhirUrl}`);
    const backend = externalBackend(withSlash(choice.fhirUrl), choice.apiBase, { dropSessions: choice.live });
    try {
      await checkFhirServer(backend.base, choice.apiBase);
    } catch (err) {
      const msg = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      throw new EvalError(`--fhir-url: FHIR server ${choice.fhirUrl} not usable (${msg})`);
    }
    return backend;
  }
  const name = (choice.world ?? 'medagentbench') as WorldName;
  let world;
  try {
    world = await worldOnce(name, choice.seed, choice.patients, choice.suite);
  } catch (err) {
    if (err instanceof RangeError) throw new EvalError(`--world: ${err.message}`);
    throw err;
  }
  return embeddedBackend(
    world.store,
    {
      name: world.name,
      ...(world.seed !== undefined ? { seed: world.seed, patients: world.patientIds.length } : {}),
      fingerprint: world.fingerprint,
    },
    choice.apiBase,
  );
}
