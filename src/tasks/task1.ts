/**
 * task1 — patient lookup by name and DOB (query). Grader: the official `refsol.py` task1 (docs/tasks.md).
 */
import type { GeneratedTask, TaskCase, TaskFamily, WorldAccess } from './types.js';
import { SolverError, generateOver, makeTask, matchTemplate, runScript, shuffled, worldGet } from './common.js';
import { pyDictGet, pyEquals, pyFromIsoFormat, pyGetItem, pyIter } from './pysem.js';
import { runGrader } from './refsol.js';

export const TASK1_TEMPLATE =
  'What\u2019s the MRN of the patient with name {NAME} and DOB of {DOB}? If the patient does not exist, the answer should be "Patient not found"';
/** The form used by the official "Patient not found" cases (ASCII apostrophe). */
export const TASK1_TEMPLATE_ASCII =
  'What\'s the MRN of the patient with name {NAME} and DOB of {DOB}? If the patient does not exist, the answer should be "Patient not found"';
export const TASK1_CONTEXT = '';
export const NOT_FOUND = 'Patient not found';

const VARIANTS = ['given-family', 'name'] as const;
const NAME_TOKEN = /^[A-Za-z][A-Za-z'-]*$/;

/** Display name of a Patient resource as the task files write it: given names then family, space-separated. */
export function displayName(patient: unknown): string | null {
  try {
    const name = pyGetItem(pyGetItem(patient, 'name'), 0);
    const given = pyIter(pyDictGet(name, 'given', [])).map(String);
    const family = pyDictGet(name, 'family', null);
    if (typeof family !== 'string' || given.length === 0) return null;
    return [...given, family].join(' ');
  } catch {
    return null;
  }
}

/** The MRN of a Patient resource: the identifier typed MR, else the first identifier, else the id. */
export function mrnOf(patient: unknown): string {
  const ids = (patient as { identifier?: unknown[] }).identifier ?? [];
  const typed = ids.find((i: any) => i?.type?.coding?.some((c: any) => c?.code === 'MR'));
  const any = (typed ?? ids[0]) as { value?: string } | undefined;
  return any?.value ?? String((patient as { id?: string }).id);
}

function entries(bundle: unknown): unknown[] {
  return pyIter(pyDictGet(bundle, 'entry', [])).map((e) => pyGetItem(e, 'resource'));
}

function parse(task: TaskCase): { name: string; dob: string } {
  for (const t of [TASK1_TEMPLATE, TASK1_TEMPLATE_ASCII]) {
    const m = matchTemplate(t, task.instruction);
    if (m) return { name: m.NAME, dob: m.DOB };
  }
  throw new SolverError(`${task.id}: instruction does not match the task1 template`);
}

/** Exact (name, DOB) matches among the world's patients born on `dob`. */
async function exactMatches(world: WorldAccess, name: string, dob: string): Promise<string[]> {
  const bundle = await worldGet(world, `Patient?birthdate=${dob}&_count=5000`);
  return entries(bundle)
    .filter((p) => displayName(p) === name && pyEquals(pyDictGet(p, 'birthDate', null), dob))
    .map(mrnOf);
}

function shiftDate(iso: string, days: number): string {
  return pyFromIsoFormat(iso)
    .plusUs(BigInt(days) * 86_400_000_000n)
    .isoformat()
    .slice(0, 10);
}

async function demographics(world: WorldAccess, mrn: string): Promise<{ name: string; dob: string } | null> {
  const bundle = await worldGet(world, `Patient?identifier=${mrn}`);
  const [p] = entries(bundle);
  if (!p) return null;
  const name = displayName(p);
  const dob = pyDictGet(p, 'birthDate', null);
  if (!name || typeof dob !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(dob)) return null;
  if (!name.split(' ').every((t) => NAME_TOKEN.test(t))) return null;
  return { name, dob };
}

export const task1: TaskFamily<'task1'> = {
  id: 'task1',
  name: 'patient lookup by name and DOB',
  kind: 'query',
  instructionTemplates: [TASK1_TEMPLATE, TASK1_TEMPLATE_ASCII],
  context: TASK1_CONTEXT,
  branches: ['patient_found', 'no_mrn'],
  variants: VARIANTS,
  turns: { min: 2, max: 2 },
  recordKey: 'sol',
  paraphrases: [
    'Find the MRN for the patient named {NAME}, born {DOB}. If no such patient exists, answer "Patient not found"',
    'Look up the medical record number of {NAME} (date of birth {DOB}). If the patient does not exist, the answer should be "Patient not found"',
  ],
  placeholders(task) {
    const m = /with name (.+?) and DOB of (\d{4}-\d{2}-\d{2})/.exec(task.instruction);
    return m ? { NAME: m[1]!, DOB: m[2]! } : null;
  },
  // "Patient not found" cases need patients with the same name and a nearby DOB, or the same DOB and another name
  planted: { nearDuplicates: true },
  detector: { mrnInInstruction: false, answerIsMrn: true, retrievedValue: true, latestValue: false },
  // near-duplicates of a patient are separate instances, so a patient may serve several
  factory: { remainderRank: 5, reusePatients: true, branchOf: () => null, boundaryTags: () => [] },

  instruction({ name, dob, notFound }) {
    if (!name || !dob) throw new Error('task1.instruction: name and dob are required');
    return (notFound ? TASK1_TEMPLATE_ASCII : TASK1_TEMPLATE).replace('{NAME}', name).replace('{DOB}', dob);
  },

  async generate(world, opts): Promise<GeneratedTask[]> {
    // Each candidate becomes a found case, or (about one in four, or when asked) a near-duplicate that does not exist:
    // the same name with the DOB shifted by 1–3 days, or another candidate's given name with the same DOB.
    const donors = shuffled(opts.patients, opts.rng);
    let donorIdx = 0;
    return generateOver('task1', opts, async (mrn) => {
      const demo = await demographics(world, mrn);
      if (!demo) return null;
      const wantMissing = opts.branch === 'no_mrn' || (opts.branch === undefined && opts.rng.next() < 0.25);
      if (!wantMissing) {
        const found = await exactMatches(world, demo.name, demo.dob);
        if (found.length !== 1 || found[0] !== mrn) return null; // ambiguous or not searchable: unusable
        return {
          branch: 'patient_found',
          patient: mrn,
          facts: { name: demo.name, dob: demo.dob, mrn },
          build: (id) => makeTask(id, task1.instruction({ name: demo.name, dob: demo.dob }), TASK1_CONTEXT, mrn, [mrn]),
        };
      }
      let name = demo.name;
      let dob = demo.dob;
      let perturbation: string;
      if (opts.rng.next() < 0.6) {
        const shift = (1 + Math.floor(opts.rng.next() * 3)) * (opts.rng.next() < 0.5 ? -1 : 1);
        dob = shiftDate(demo.dob, shift);
        perturbation = `dob_shift:${shift}`;
      } else {
        let other: { name: string; dob: string } | null = null;
        for (let k = 0; k < donors.length && !other; k++) {
          const cand = donors[donorIdx++ % donors.length];
          if (cand === mrn) continue;
          const d = await demographics(world, cand);
          if (d && d.name.split(' ')[0] !== demo.name.split(' ')[0]) other = d;
        }
        if (!other) return null;
        const parts = demo.name.split(' ');
        name = [other.name.split(' ')[0], ...parts.slice(1)].join(' ');
        perturbation = 'given_swap';
      }
      if ((await exactMatches(world, name, dob)).length !== 0) return null;
      return {
        branch: 'no_mrn',
        patient: null,
        facts: { name, dob, nearDuplicateOf: mrn, perturbation },
        build: (id) => makeTask(id, task1.instruction({ name, dob, notFound: true }), TASK1_CONTEXT, null, [NOT_FOUND]),
      };
    });
  },

  solve(task, history, opts) {
    return runScript(task, history, opts, VARIANTS, (io) => {
      const { name, dob } = parse(task);
      const tokens = name.split(' ');
      const url =
        io.variant === 'name'
          ? `${io.apiBase}Patient?${tokens.map((t) => `name=${t}`).join('&')}&birthdate=${dob}`
          : `${io.apiBase}Patient?given=${tokens[0]}&family=${tokens[tokens.length - 1]}&birthdate=${dob}`;
      const bundle = io.get(url);
      const matches = entries(bundle).filter((p) => displayName(p) === name && pyDictGet(p, 'birthDate', null) === dob);
      io.finish([matches.length > 0 ? mrnOf(matches[0]) : NOT_FOUND]);
    });
  },

  grade(task, output) {
    return runGrader((g) => {
      const sol = (task as { sol?: unknown }).sol;
      g.branch = Array.isArray(sol) && sol[0] === NOT_FOUND ? 'no_mrn' : 'patient_found';
      if (!g.noPost(output.history)) return false;
      const refSol = pyGetItem(task, 'sol');
      g.reference = refSol;
      return g.answer(output.result, (l) => pyEquals(refSol, l), refSol);
    });
  },
};
