/**
 * task6 — mean CBG over the last 24 h (query; answer within 0.1). Grader: the official `refsol.py` task6
 * (docs/tasks.md).
 */
import type { TaskFamily } from './types.js';
import { f, generateOver, labsLast24h, lookupFirst, makeTask, mrnDetector, mrnInstruction, mrnPlaceholders, runScript, taskMrn } from './common.js';
import { pyAbs, pyCompare, pyGetItem, pyLen, pySub } from './pysem.js';
import { CUTOFF_24H, getLabHistory, runGrader, scanMean } from './refsol.js';

export const TASK6_TEMPLATE = 'What is the average CBG of the patient {MRN} over the last 24 hours?';
export const TASK6_CONTEXT =
  'It\'s 2023-11-13T10:15:00+00:00 now. The code for CBG is "GLU". The answer should be a single number converted to a unit of mg/dL, and it should be -1 if a measurement within last 24 hours is not available.';
const VARIANTS = ['scan', 'lookup-first', 'window'] as const;
/** `window`: only the last 24 h (`date=ge` NOW − 24 h, `+` percent-encoded), so the observation stays short. */
const WINDOW_START = '2023-11-12T10:15:00%2B00:00';

export function task6Reference(getRes: unknown): { ref: unknown[]; branch: string; count: number } {
  const m = scanMean(getRes, CUTOFF_24H);
  return { ref: [m.mean], branch: m.count > 0 ? 'data_present' : 'data_absent', count: m.count };
}

export const task6: TaskFamily<'task6'> = {
  id: 'task6',
  name: 'mean CBG over 24 h',
  kind: 'query',
  instructionTemplates: [TASK6_TEMPLATE],
  context: TASK6_CONTEXT,
  branches: ['data_present', 'data_absent'],
  variants: VARIANTS,
  turns: { min: 2, max: 2 },
  recordKey: 'eval_MRN',
  paraphrases: ['What is the mean CBG for patient {MRN} over the past 24 hours?', 'Average capillary blood glucose of {MRN} in the last 24 hours?'],
  placeholders: mrnPlaceholders,
  planted: { labs: ['GLU'] },
  detector: mrnDetector(),
  factory: {
    remainderRank: 8,
    reusePatients: false,
    branchOf: (f) => (f.glu.count24h > 0 ? 'data_present' : 'data_absent'),
    boundaryTags: (f) => (f.glu.edge ? [`GLU@${f.glu.edge}`] : []),
  },

  instruction: mrnInstruction('task6', TASK6_TEMPLATE),

  generate(world, opts) {
    return generateOver('task6', opts, async (mrn) => {
      const r = task6Reference(await labsLast24h(world, mrn, 'GLU'));
      return {
        branch: r.branch,
        patient: mrn,
        facts: { reference: r.ref, count: r.count },
        build: (id) => makeTask(id, task6.instruction({ mrn }), TASK6_CONTEXT, mrn),
      };
    });
  },

  solve(task, history, opts) {
    return runScript(task, history, opts, VARIANTS, (io) => {
      const mrn = taskMrn(task, [TASK6_TEMPLATE]);
      lookupFirst(io, mrn);
      const query = io.variant === 'window' ? `code=GLU&date=ge${WINDOW_START}&_count=5000` : 'code=GLU&_count=5000';
      const r = task6Reference(io.get(`${io.apiBase}Observation?patient=${mrn}&${query}`));
      if (r.count === 0) io.finish([-1]);
      // a clinician reports the mean to two decimals (always within the grader's 0.1)
      io.finish([f(Math.round((r.ref[0] as number) * 100) / 100)]);
    });
  },

  grade(task, output, ctx) {
    return runGrader(async (g) => {
      if (!g.noPost(output.history)) return false;
      const r = task6Reference(await getLabHistory(ctx, task, 'GLU'));
      g.branch = r.branch;
      g.reference = r.ref;
      return g.answer(output.result, (l) => pyLen(l) === 1 && pyCompare(pyAbs(pySub(pyGetItem(l, 0), r.ref[0])), '<', 0.1), {
        value: r.ref[0],
        tolerance: '< 0.1',
      });
    });
  },
};
