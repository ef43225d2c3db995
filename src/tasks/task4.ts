/**
 * task4 — most recent magnesium within the last 24 h (query). Grader: the official `refsol.py` task4 (docs/tasks.md).
 */
import type { TaskFamily } from './types.js';
import { generateOver, labsLast24h, latestReading, lookupFirst, makeTask, mrnDetector, mrnInstruction, mrnPlaceholders, runScript, taskMrn } from './common.js';
import { pyEquals } from './pysem.js';
import { CUTOFF_24H, getLabHistory, latestReference, runGrader, scanLatest } from './refsol.js';

export const TASK4_TEMPLATE = 'What\u2019s the most recent magnesium level of the patient {MRN} within last 24 hours?';
export const TASK4_CONTEXT =
  'It\'s 2023-11-13T10:15:00+00:00 now. The code for magnesium is "MG". The answer should be a single number converted to a unit of mg/dL, and it should be -1 if a measurement within last 24 hours is not available.';
const VARIANTS = ['scan', 'sorted', 'lookup-first'] as const;

/** The grader's reference for a MG bundle: `[latest value within 24 h]` or `[-1]`. */
export function task4Reference(getRes: unknown): { ref: unknown[]; branch: string; time: unknown } {
  return latestReference(scanLatest(getRes, CUTOFF_24H));
}

export const task4: TaskFamily<'task4'> = {
  id: 'task4',
  name: 'latest magnesium within 24 h',
  kind: 'query',
  instructionTemplates: [TASK4_TEMPLATE],
  context: TASK4_CONTEXT,
  branches: ['data_present', 'data_absent'],
  variants: VARIANTS,
  turns: { min: 2, max: 2 },
  recordKey: 'eval_MRN',
  paraphrases: ['What was the last magnesium value for patient {MRN} in the past 24 hours?', 'Latest serum Mg for {MRN} within the last 24 hours?'],
  placeholders: mrnPlaceholders,
  planted: { labs: ['MG'] },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: {
    remainderRank: 7,
    reusePatients: false,
    branchOf: (f) => (f.mg.latest24h ? 'data_present' : 'data_absent'),
    boundaryTags: (f) => (f.mg.edge ? [`MG@${f.mg.edge}`] : []),
  },

  instruction: mrnInstruction('task4', TASK4_TEMPLATE),

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
      lookupFirst(io, mrn);
      const r = latestReading(io, mrn, 'MG', CUTOFF_24H);
      io.finish([r ? r.value : -1]);
    });
  },

  grade(task, output, ctx) {
    return runGrader(async (g) => {
      if (!g.noPost(output.history)) return false;
      const r = task4Reference(await getLabHistory(ctx, task, 'MG'));
      g.branch = r.branch;
      g.reference = r.ref;
      return g.answer(output.result, (l) => pyEquals(r.ref, l), r.ref);
    });
  },
};
