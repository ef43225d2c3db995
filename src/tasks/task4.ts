/**
 * task4 — most recent magnesium within the last 24 h (query). Grader: refsol.task4 (spec §6.5).
 */
import type { TaskFamily } from './types.js';
import { generateOver, labsLast24h, makeTask, runScript, taskMrn } from './common.js';
import { pyCompare, pyDictGet, pyEquals, pyFromIsoFormat, pyIter, pyPath } from './pysem.js';
import { CUTOFF_24H, evalMrn, getJsonData, labUrl, runGrader, scanLatest } from './refsol.js';

export const TASK4_TEMPLATE = 'What\u2019s the most recent magnesium level of the patient {MRN} within last 24 hours?';
export const TASK4_CONTEXT =
  'It\'s 2023-11-13T10:15:00+00:00 now. The code for magnesium is "MG". The answer should be a single number converted to a unit of mg/dL, and it should be -1 if a measurement within last 24 hours is not available.';
const VARIANTS = ['scan', 'sorted', 'lookup-first'] as const;

/** The grader's reference for a MG bundle: `[latest value within 24 h]` or `[-1]`. */
export function task4Reference(getRes: unknown): { ref: unknown[]; branch: string; time: unknown } {
  const s = scanLatest(getRes, CUTOFF_24H);
  return { ref: [s.value !== null ? s.value : -1], branch: s.value !== null ? 'data_present' : 'data_absent', time: s.time };
}

/** Latest value from a `_sort=-date&_count=1` bundle, kept only if inside the window (solver `sorted` path). */
export function firstInWindow(bundle: unknown, since?: ReturnType<typeof pyFromIsoFormat>): { value: unknown; time: unknown } | null {
  const [first] = pyIter(pyDictGet(bundle, 'entry', []));
  if (first === undefined) return null;
  const time = pyPath(first, 'resource', 'effectiveDateTime');
  if (since && !pyCompare(pyFromIsoFormat(time), '>=', since)) return null;
  return { value: pyPath(first, 'resource', 'valueQuantity', 'value'), time };
}

export const task4: TaskFamily = {
  id: 'task4',
  name: 'latest magnesium within 24 h',
  kind: 'query',
  instructionTemplates: [TASK4_TEMPLATE],
  context: TASK4_CONTEXT,
  branches: ['data_present', 'data_absent'],
  variants: VARIANTS,

  instruction({ mrn }) {
    if (!mrn) throw new Error('task4.instruction: mrn is required');
    return TASK4_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(world, opts) {
    return generateOver('task4', opts, async (mrn) => {
      const r = task4Reference(await labsLast24h(world, mrn, 'MG'));
      return {
        branch: r.branch,
        patient: mrn,
        facts: { reference: r.ref, effectiveDateTime: r.time },
        build: (id) => makeTask(id, task4.instruction({ mrn }), TASK4_CONTEXT, mrn),
      };
    });
  },

  solve(task, history, opts) {
    return runScript(task, history, opts, VARIANTS, (io) => {
      const mrn = taskMrn(task, [TASK4_TEMPLATE]);
      if (io.variant === 'lookup-first') io.get(`${io.apiBase}Patient?identifier=${mrn}`);
      if (io.variant === 'sorted') {
        const hit = firstInWindow(io.get(`${io.apiBase}Observation?patient=${mrn}&code=MG&_sort=-date&_count=1`), CUTOFF_24H);
        io.finish([hit ? hit.value : -1]);
      }
      io.finish(task4Reference(io.get(`${io.apiBase}Observation?patient=${mrn}&code=MG&_count=5000`)).ref);
    });
  },

  grade(task, output, ctx) {
    return runGrader(async (g) => {
      if (!g.noPost(output.history)) return false;
      const r = task4Reference(await getJsonData(ctx.fhir, labUrl(ctx.apiBase, evalMrn(task), 'MG')));
      g.branch = r.branch;
      g.reference = r.ref;
      return g.answer(output.result, (l) => pyEquals(r.ref, l), r.ref);
    });
  },
};
