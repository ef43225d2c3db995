/**
 * task7 — most recent CBG, any date (query). Grader: the official `refsol.py` task7 (docs/tasks.md).
 */
import type { TaskFamily } from './types.js';
import { generateOver, latestLab, latestReading, lookupFirst, makeTask, mrnDetector, mrnInstruction, mrnPlaceholders, runScript, taskMrn } from './common.js';
import { pyEquals } from './pysem.js';
import { getLabHistory, latestReference, runGrader, scanLatest } from './refsol.js';

export const TASK7_TEMPLATE = 'What is the most recent CBG of the patient {MRN}?';
export const TASK7_CONTEXT = 'It\'s 2023-11-13T10:15:00+00:00 now. The code for CBG is "GLU"';
const VARIANTS = ['scan', 'sorted', 'lookup-first'] as const;

export function task7Reference(getRes: unknown): { ref: unknown[]; branch: string; time: unknown } {
  return latestReference(scanLatest(getRes));
}

export const task7: TaskFamily<'task7'> = {
  id: 'task7',
  name: 'latest CBG',
  kind: 'query',
  instructionTemplates: [TASK7_TEMPLATE],
  context: TASK7_CONTEXT,
  branches: ['data_present', 'data_absent'],
  variants: VARIANTS,
  turns: { min: 2, max: 2 },
  recordKey: 'eval_MRN',
  paraphrases: ['What is the latest CBG value recorded for patient {MRN}?', 'Most recent capillary blood glucose for {MRN}?'],
  placeholders: mrnPlaceholders,
  planted: { labs: ['GLU'] },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: {
    remainderRank: 9,
    reusePatients: false,
    branchOf: (f) => (f.glu.latest ? 'data_present' : 'data_absent'),
    boundaryTags: (f) => (f.glu.edge ? [`GLU@${f.glu.edge}`] : []),
  },

  instruction: mrnInstruction('task7', TASK7_TEMPLATE),

  generate(world, opts) {
    return generateOver('task7', opts, async (mrn) => {
      const r = latestReference(await latestLab(world, mrn, 'GLU'));
      return {
        branch: r.branch,
        patient: mrn,
        facts: { reference: r.ref, effectiveDateTime: r.time },
        build: (id) => makeTask(id, task7.instruction({ mrn }), TASK7_CONTEXT, mrn),
      };
    });
  },

  solve(task, history, opts) {
    return runScript(task, history, opts, VARIANTS, (io) => {
      const mrn = taskMrn(task, [TASK7_TEMPLATE]);
      lookupFirst(io, mrn);
      const r = latestReading(io, mrn, 'GLU');
      io.finish([r ? r.value : -1]);
    });
  },

  grade(task, output, ctx) {
    return runGrader(async (g) => {
      if (!g.noPost(output.history)) return false;
      const r = task7Reference(await getLabHistory(ctx, task, 'GLU'));
      g.branch = r.branch;
      g.reference = r.ref;
      return g.answer(output.result, (l) => pyEquals(r.ref, l), r.ref);
    });
  },
};
