/**
 * task2 — patient age in whole years on 2023-11-13 (query). Grader: the official `refsol.py` task2 (docs/tasks.md).
 */
import type { TaskFamily } from './types.js';
import { generateOver, makeTask, mrnDetector, mrnInstruction, mrnPlaceholders, plainFactoryHints, runScript, taskMrn } from './common.js';
import { type PyDateTime, pyEquals, pyPath, pyStrptimeYmd } from './pysem.js';
import { evalMrn, getJsonData, runGrader } from './refsol.js';

export const TASK2_TEMPLATE = "What's the age of the patient with MRN of {MRN}?";
export const TASK2_CONTEXT = "It's 2023-11-13T10:15:00+00:00 now, and the answer should be rounded down to an integer.";
const VARIANTS = ['identifier'] as const;

/** refsol.calculate_age: `today = datetime(2023,11,13)`. */
export function calculateAge(dob: PyDateTime): number {
  let age = 2023 - dob.year;
  if (11 < dob.month || (11 === dob.month && 13 < dob.day)) age -= 1;
  return age;
}

/** The grader's reference: `[calculate_age(strptime(entry[0].resource.birthDate))]` from `Patient?identifier=`. */
export function ageFromBundle(getRes: unknown): { birthDate: unknown; age: number } {
  const dobStr = pyPath(getRes, 'entry', 0, 'resource', 'birthDate');
  return { birthDate: dobStr, age: calculateAge(pyStrptimeYmd(dobStr)) };
}

export const task2: TaskFamily<'task2'> = {
  id: 'task2',
  name: 'patient age',
  kind: 'query',
  instructionTemplates: [TASK2_TEMPLATE],
  context: TASK2_CONTEXT,
  branches: ['n/a'],
  variants: VARIANTS,
  turns: { min: 2, max: 2 },
  recordKey: 'eval_MRN',
  paraphrases: ['How old is the patient with MRN {MRN}?', 'Give the current age in years of patient {MRN}.'],
  placeholders: mrnPlaceholders,
  // every patient has a birth date: any patient serves
  planted: 'none',
  detector: mrnDetector(),
  factory: plainFactoryHints(6),

  instruction: mrnInstruction('task2', TASK2_TEMPLATE),

  generate(world, opts) {
    return generateOver('task2', opts, async (mrn) => {
      let ref;
      try {
        ref = ageFromBundle(await getJsonData(world.fhir, `${world.apiBase}Patient?identifier=${mrn}&_format=json`));
      } catch {
        return null;
      }
      return {
        branch: 'n/a',
        patient: mrn,
        facts: { birthDate: ref.birthDate, age: ref.age },
        build: (id) => makeTask(id, task2.instruction({ mrn }), TASK2_CONTEXT, mrn),
      };
    });
  },

  solve(task, history, opts) {
    return runScript(task, history, opts, VARIANTS, (io) => {
      const mrn = taskMrn(task, [TASK2_TEMPLATE]);
      const bundle = io.get(`${io.apiBase}Patient?identifier=${mrn}`);
      io.finish([ageFromBundle(bundle).age]);
    });
  },

  grade(task, output, ctx) {
    return runGrader(async (g) => {
      g.branch = 'n/a';
      if (!g.noPost(output.history)) return false;
      const getRes = await getJsonData(ctx.fhir, `${ctx.apiBase}Patient?identifier=${evalMrn(task)}&_format=json`);
      const refSol = [ageFromBundle(getRes).age];
      g.reference = refSol;
      return g.answer(output.result, (l) => pyEquals(refSol, l), refSol);
    });
  },
};
