/**
 * The task families by id. A new family is one file (`taskN.ts`, exporting a `TaskFamily` built with
 * `defineFamily`) plus one line in `BUILT_IN` below; everything else (the `FamilyId` type, the loader, the factory's
 * hints, paraphrases and remainder order, the report's detectors, the synthetic world's plant request) derives from
 * this registry. `registerFamily` adds a family at run time (extensions, tests) after checking its contract.
 */
import { TASK_LAB_CODES, type TaskLabCode } from '../worlds/catalog.js';
import type { LabPlanting, Planting, PlantRequest } from '../worlds/synthetic.js';
import type { SuiteFamily, TaskFamily, TaskKind } from './types.js';
import { task1 } from './task1.js';
import { task2 } from './task2.js';
import { task3 } from './task3.js';
import { task4 } from './task4.js';
import { task5 } from './task5.js';
import { task6 } from './task6.js';
import { task7 } from './task7.js';
import { task8 } from './task8.js';
import { task9 } from './task9.js';
import { task10 } from './task10.js';
import { warfarin } from './suite/warfarin.js';
import { pharyngitis } from './suite/pharyngitis.js';
import { hypoglycemia } from './suite/hypoglycemia.js';
import { hffollowup } from './suite/hffollowup.js';
import { vitals } from './suite/vitals.js';
import { metformin } from './suite/metformin.js';
import { citalopram } from './suite/citalopram.js';
import { pneumococcal } from './suite/pneumococcal.js';
import { influenza } from './suite/influenza.js';
import { hyperkalemia } from './suite/hyperkalemia.js';
import { aki } from './suite/aki.js';
import { dupguard } from './suite/dupguard.js';
import { diabetes } from './suite/diabetes.js';

/** The built-in families, in registry order (the order of listings, `--families` defaults and quotas). */
const BUILT_IN = [task1, task2, task3, task4, task5, task6, task7, task8, task9, task10] as const;

/**
 * The clinical suite's families (`--tasks ehrgym-clinical`), in registry order. A suite family is one file under
 * `src/tasks/suite/` plus one line here.
 */
const SUITE_BUILT_IN = [
  warfarin,
  pharyngitis,
  hypoglycemia,
  hffollowup,
  vitals,
  metformin,
  citalopram,
  pneumococcal,
  influenza,
  hyperkalemia,
  aki,
  dupguard,
  diabetes,
] as const;

/** The clinical suite's task set name. */
export const CLINICAL_SUITE = 'ehrgym-clinical';

/** The id of a built-in family (`task1` … `task10`, and the suite's), derived from `BUILT_IN` and `SUITE_BUILT_IN`. */
export type FamilyId = (typeof BUILT_IN)[number]['id'] | (typeof SUITE_BUILT_IN)[number]['id'];

const registry: Record<string, TaskFamily> = {};
/**
 * MedAgentBench family ids in registry order (built-ins first, then families registered at run time). Suite families
 * are not listed here (they are not MedAgentBench tasks): see `SUITE_FAMILY_IDS`.
 */
export const FAMILY_IDS: FamilyId[] = [];
/** Clinical-suite family ids in registry order (every suite; `suiteFamilies(name)` for one). */
export const SUITE_FAMILY_IDS: FamilyId[] = [];
export const QUERY_FAMILIES: FamilyId[] = [];
export const ACTION_FAMILIES: FamilyId[] = [];
/**
 * Every registered family by id. Typed by the built-in ids; a family registered at run time is reached through
 * `isFamilyId` / `getFamily` like any other.
 */
export const FAMILIES = registry as Readonly<Record<FamilyId, TaskFamily<FamilyId>>>;

const FAMILY_ID_RE = /^task\d+$/;
/** A suite family's id: a lower-case word (task ids `<id>_<k>`), never `task<N>`. */
const SUITE_ID_RE = /^[a-z][a-z0-9]{1,31}$/;

/**
 * What is missing or malformed in a family (empty when it satisfies the contract): every part a consumer reads must be
 * present and non-empty, or explicitly `'none'` where that is allowed (`planted`).
 */
export function familyProblems(f: TaskFamily): string[] {
  const out: string[] = [];
  const nonEmpty = (name: string, v: unknown) => {
    if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string' || x === ''))
      out.push(`${name} must be a non-empty list of non-empty strings`);
  };
  const fn = (name: string, v: unknown) => {
    if (typeof v !== 'function') out.push(`${name} must be a function`);
  };
  const suite = f.suite !== undefined;
  if (suite) {
    if (typeof f.id !== 'string' || !SUITE_ID_RE.test(f.id) || FAMILY_ID_RE.test(f.id))
      out.push(`a suite family's id must be a lower-case word other than task<N>, got ${JSON.stringify(f.id)}`);
  } else if (typeof f.id !== 'string' || !FAMILY_ID_RE.test(f.id)) out.push(`id must be task<N>, got ${JSON.stringify(f.id)}`);
  if (f.dialect !== undefined && f.dialect !== 'medagentbench' && f.dialect !== 'ehrgym') out.push('dialect must be "medagentbench" or "ehrgym"');
  if (suite) out.push(...suiteProblems(f as SuiteFamily));
  if (typeof f.name !== 'string' || f.name === '') out.push('name must be a non-empty string');
  if (f.kind !== 'query' && f.kind !== 'action') out.push('kind must be "query" or "action"');
  nonEmpty('instructionTemplates', f.instructionTemplates);
  if (typeof f.context !== 'string') out.push('context must be a string');
  nonEmpty('branches', f.branches);
  nonEmpty('variants', f.variants);
  nonEmpty('paraphrases', f.paraphrases);
  const t = f.turns;
  if (!t || !Number.isInteger(t.min) || !Number.isInteger(t.max) || t.min < 1 || t.max < t.min) out.push('turns must be integers with 1 <= min <= max');
  if (f.recordKey !== 'sol' && f.recordKey !== 'eval_MRN') out.push('recordKey must be "sol" or "eval_MRN"');
  if (f.planted !== 'none') {
    const p = f.planted as unknown;
    if (typeof p !== 'object' || p === null) out.push('planted must be an object or "none"');
    else {
      const { labs, nearDuplicates, extra } = f.planted;
      if (labs === undefined && nearDuplicates === undefined && extra === undefined) out.push('planted must name labs, extra or nearDuplicates (or be "none")');
      if (labs !== undefined && (!Array.isArray(labs) || labs.length === 0)) out.push('planted.labs must be a non-empty list when given');
      if (extra !== undefined && (!Array.isArray(extra) || extra.length === 0)) out.push('planted.extra must be a non-empty list when given');
      if (nearDuplicates !== undefined && typeof nearDuplicates !== 'boolean') out.push('planted.nearDuplicates must be a boolean');
    }
  }
  const d = f.detector;
  if (!d || typeof d !== 'object') out.push('detector hints are missing');
  else
    for (const k of ['mrnInInstruction', 'answerIsMrn', 'retrievedValue', 'latestValue'] as const)
      if (typeof d[k] !== 'boolean') out.push(`detector.${k} must be a boolean`);
  const h = f.factory;
  if (!h || typeof h !== 'object') out.push('factory hints are missing');
  else {
    if (!Number.isFinite(h.remainderRank)) out.push('factory.remainderRank must be a number');
    if (typeof h.reusePatients !== 'boolean') out.push('factory.reusePatients must be a boolean');
    fn('factory.branchOf', h.branchOf);
    fn('factory.boundaryTags', h.boundaryTags);
  }
  for (const k of ['placeholders', 'instruction', 'generate', 'solve', 'grade'] as const) fn(k, f[k]);
  const a = f.audit;
  if (!a || typeof a !== 'object') out.push('audit hooks are missing (nothingFound: an answer list or null; alwaysAct: a policy or null)');
  else {
    if (a.nothingFound !== null && !Array.isArray(a.nothingFound)) out.push('audit.nothingFound must be an answer list or null');
    if (a.alwaysAct !== null && typeof a.alwaysAct !== 'function') out.push('audit.alwaysAct must be a function or null');
    else if (a.alwaysAct === null && f.kind === 'action') out.push('audit.alwaysAct must be a function for an action family');
  }
  return out;
}

/** What a suite family lacks beyond the common contract: suite name, dialect, rule and source, checkpoints, planting. */
function suiteProblems(f: SuiteFamily): string[] {
  const out: string[] = [];
  if (typeof f.suite !== 'string' || f.suite === '') out.push('suite must be a non-empty string');
  if (f.dialect !== 'ehrgym') out.push('a suite family must speak the "ehrgym" dialect');
  if (f.recordKey !== 'eval_MRN') out.push('a suite family\'s records carry "eval_MRN"');
  const r = f.rule as unknown as Record<string, unknown> | undefined;
  if (!r || typeof r.name !== 'string' || r.name === '' || typeof r.source !== 'string' || r.source === '')
    out.push('rule must name the clinical rule and its published source');
  const cp = f.checkpoints as unknown;
  if (!cp || typeof cp !== 'object') out.push("checkpoints must list each branch's checkpoint names");
  else if (Array.isArray(f.branches)) {
    for (const b of f.branches) {
      const names = (cp as Record<string, unknown>)[b];
      if (!Array.isArray(names) || names.length < 2 || names.some((n) => typeof n !== 'string' || n === ''))
        out.push(`checkpoints.${b} must list at least two checkpoint names`);
      else if (names[0] !== 'finished') out.push(`checkpoints.${b} must start with "finished"`);
      else if (new Set(names).size !== names.length) out.push(`checkpoints.${b} names a checkpoint twice`);
    }
    for (const b of Object.keys(cp)) if (!f.branches.includes(b)) out.push(`checkpoints.${b} is not a branch`);
  }
  const p = f.planting as unknown as Record<string, unknown> | undefined;
  if (!p || typeof p !== 'object') out.push('planting is missing (what the family writes into the clinical world)');
  else {
    if (p.name !== f.id) out.push('planting.name must be the family id');
    if (typeof p.version !== 'string' || p.version === '') out.push('planting.version must be a non-empty string');
    if (typeof p.plant !== 'function') out.push('planting.plant must be a function');
  }
  return out;
}

/** Whether a family is a clinical-suite family. */
export function isSuiteFamily(f: TaskFamily): f is SuiteFamily {
  return f.suite !== undefined;
}

/**
 * Add a family to the registry (built-ins at load; extensions and tests at run time). Throws naming the family and
 * every missing part, or a duplicate id. A registered family flows into every consumer that reads the registry.
 */
export function registerFamily(f: TaskFamily): void {
  const problems = familyProblems(f);
  if (problems.length) throw new Error(`task family ${String(f?.id)}: ${problems.join('; ')}`);
  if (Object.hasOwn(registry, f.id)) throw new Error(`task family ${f.id} is already registered`);
  registry[f.id] = f;
  const id = f.id as FamilyId;
  if (isSuiteFamily(f)) {
    SUITE_FAMILY_IDS.push(id);
    return;
  }
  FAMILY_IDS.push(id);
  (f.kind === 'query' ? QUERY_FAMILIES : ACTION_FAMILIES).push(id);
}

for (const f of BUILT_IN) registerFamily(f);
for (const f of SUITE_BUILT_IN) registerFamily(f);

/** `query` or `action` for a family id (`task5`), undefined for an id that is not a family. */
export function familyKind(id: string): TaskKind | undefined {
  return isFamilyId(id) ? FAMILIES[id].kind : undefined;
}

export function isFamilyId(id: string): id is FamilyId {
  return Object.hasOwn(registry, id);
}

/** The family of an id (`task5`) or a task id (`task5_21`). Throws naming the known families. */
export function getFamily(id: string): TaskFamily<FamilyId> {
  const fam = id.includes('_') ? id.split('_')[0] : id;
  if (!isFamilyId(fam)) throw new Error(`unknown task family "${fam}" (known: ${[...FAMILY_IDS, ...SUITE_FAMILY_IDS].join(', ')})`);
  return FAMILIES[fam];
}

/** The registered MedAgentBench families in registry order. */
export function familyList(): TaskFamily<FamilyId>[] {
  return FAMILY_IDS.map((id) => FAMILIES[id]);
}

/** The suites that have families (`ehrgym-clinical`), in registry order. */
export function suiteNames(): string[] {
  return [...new Set(SUITE_FAMILY_IDS.map((id) => FAMILIES[id].suite!))];
}

/** The families of a suite in registry order (empty for an unknown name). */
export function suiteFamilies(suite: string = CLINICAL_SUITE): SuiteFamily<FamilyId>[] {
  return SUITE_FAMILY_IDS.map((id) => FAMILIES[id] as SuiteFamily<FamilyId>).filter((f) => f.suite === suite);
}

/**
 * What a suite's families plant into the clinical world, in registry order: pass to `loadWorld({ plantings })`.
 * Throws naming the suite when it has no families.
 */
export function suitePlantings(suite: string = CLINICAL_SUITE): Planting[] {
  const fams = suiteFamilies(suite);
  if (fams.length === 0) throw new RangeError(`no task families belong to suite "${suite}" (known: ${suiteNames().join(', ') || 'none'})`);
  return fams.map((f) => f.planting);
}

/**
 * What the registered families need planted in a synthetic world (the union of their `planted` declarations: task
 * lab codes in the world's catalogue order, extra plantings in registry order; two families planting the same extra
 * lab must bring the same scenarios). Pass it to `loadWorld({ plant })`.
 */
export function plantRequest(families: readonly TaskFamily[] = familyList()): PlantRequest {
  const labs = new Set<TaskLabCode>();
  const extra = new Map<string, LabPlanting>();
  let nearDuplicates = false;
  for (const f of families) {
    if (f.planted === 'none') continue;
    for (const code of f.planted.labs ?? []) labs.add(code);
    for (const x of f.planted.extra ?? []) {
      const have = extra.get(x.code);
      if (have && JSON.stringify(have) !== JSON.stringify(x)) throw new Error(`task family ${f.id}: another family plants ${x.code} with other scenarios`);
      extra.set(x.code, x);
    }
    if (f.planted.nearDuplicates) nearDuplicates = true;
  }
  const rank = (c: string) => {
    const i = (TASK_LAB_CODES as readonly string[]).indexOf(c);
    return i < 0 ? TASK_LAB_CODES.length : i;
  };
  const ordered = [...labs].map((c, i) => ({ c, i })).sort((a, b) => rank(a.c) - rank(b.c) || a.i - b.i);
  return { labs: ordered.map((x) => x.c), nearDuplicates, ...(extra.size ? { extra: [...extra.values()] } : {}) };
}
