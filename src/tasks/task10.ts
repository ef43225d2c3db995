/**
 * task10 — last HbA1c with its time, and a new order when absent or older than a year (action). Grader: the official
 * `refsol.py` task10 (docs/tasks.md).
 */
import type { TaskFamily } from './types.js';
import {
  a1cOrder,
  generateOver,
  latestLab,
  latestReading,
  lookupFirst,
  makeTask,
  mrnDetector,
  mrnInstruction,
  mrnPlaceholders,
  runScript,
  taskMrn,
} from './common.js';
import { type PyDateTime, pyCompare, pyEquals, pyFromIsoFormat } from './pysem.js';
import { ONE_YEAR_AGO, eqAt, getLabHistory, runGrader, scanLatest, subjectAssert } from './refsol.js';

export const TASK10_TEMPLATE =
  'What\u2019s the last HbA1C (hemoglobin A1C) value in the chart for patient {MRN} and when was it recorded? If the lab value result date is greater than 1 year old, order a new HbA1C lab test. ';
export const TASK10_CONTEXT =
  'It\'s 2023-11-13T10:15:00+00:00 now. The code for HbA1C is "A1C". The LOINC code for ordering HbA1C lab is: 4548-4. The answer should be [-1] if a measurement is not available.';
const VARIANTS = ['scan', 'sorted', 'lookup-first'] as const;

export type Task10Branch = 'data_absent_order_required' | 'stale_order_required' | 'fresh_report_value';

/** Branch from the latest A1C: none → order; strictly before 2022-11-13T10:15:00+00:00 → order; else report. */
export function task10Branch(value: unknown, meas: PyDateTime | null): Task10Branch {
  if (value === null) return 'data_absent_order_required';
  return pyCompare(meas, '<', ONE_YEAR_AGO) ? 'stale_order_required' : 'fresh_report_value';
}

export const task10: TaskFamily<'task10'> = {
  id: 'task10',
  name: 'HbA1c check and conditional order',
  kind: 'action',
  instructionTemplates: [TASK10_TEMPLATE],
  context: TASK10_CONTEXT,
  branches: ['data_absent_order_required', 'stale_order_required', 'fresh_report_value'],
  variants: VARIANTS,
  turns: { min: 2, max: 3 },
  recordKey: 'eval_MRN',
  paraphrases: [
    'When was the last HbA1C (hemoglobin A1C) for patient {MRN} and what was the value? If the result is more than 1 year old, order a new HbA1C lab test. ',
    'Report the most recent HbA1C value and its date for {MRN}; if that result is older than one year, order a new HbA1C test. ',
  ],
  placeholders: mrnPlaceholders,
  planted: { labs: ['A1C'] },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: {
    remainderRank: 2,
    reusePatients: false,
    branchOf: (f) => (f.a1c.branch === 'none' ? 'data_absent_order_required' : f.a1c.branch === 'stale' ? 'stale_order_required' : 'fresh_report_value'),
    boundaryTags: (f) => (f.a1c.edge ? [`A1C@${f.a1c.edge}`] : []),
  },

  instruction: mrnInstruction('task10', TASK10_TEMPLATE),

  generate(world, opts) {
    return generateOver('task10', opts, async (mrn) => {
      const s = await latestLab(world, mrn, 'A1C');
      const branch = task10Branch(s.value, s.meas);
      return {
        branch,
        patient: mrn,
        facts: { lastValue: s.value, effectiveDateTime: s.time },
        build: (id) => makeTask(id, task10.instruction({ mrn }), TASK10_CONTEXT, mrn),
      };
    });
  },

  solve(task, history, opts) {
    return runScript(task, history, opts, VARIANTS, (io) => {
      const mrn = taskMrn(task, [TASK10_TEMPLATE]);
      lookupFirst(io, mrn);
      const { value, time } = latestReading(io, mrn, 'A1C') ?? { value: null, time: null };
      const branch = task10Branch(value, value === null ? null : pyFromIsoFormat(time));
      if (branch !== 'fresh_report_value') io.post(`${io.apiBase}ServiceRequest`, a1cOrder(mrn));
      io.finish(value === null ? [-1] : [value, time]);
    });
  },

  grade(task, output, ctx) {
    return runGrader(async (g) => {
      const s = scanLatest(await getLabHistory(ctx, task, 'A1C'));
      const ref = s.value === null ? [-1] : [s.value, s.time];
      g.reference = ref;
      if (s.value === null || pyCompare(s.meas, '<', ONE_YEAR_AGO)) {
        g.branch = s.value === null ? 'data_absent_order_required' : 'stale_order_required';
        const post = g.onePost(output.history, `${ctx.apiBase}ServiceRequest`);
        if (!post) return false;
        const { payload } = post;
        const ok = g.asserts([
          eqAt('resourceType', payload, ['resourceType'], 'ServiceRequest'),
          eqAt('code_system', payload, ['code', 'coding', 0, 'system'], 'http://loinc.org'),
          eqAt('code_code', payload, ['code', 'coding', 0, 'code'], '4548-4'),
          eqAt('authoredOn', payload, ['authoredOn'], '2023-11-13T10:15:00+00:00'),
          eqAt('status', payload, ['status'], 'active'),
          eqAt('intent', payload, ['intent'], 'order'),
          eqAt('priority', payload, ['priority'], 'stat'),
          subjectAssert(payload, task),
        ]);
        if (!ok) return false;
      } else {
        g.branch = 'fresh_report_value';
        if (!g.noPost(output.history)) return false;
      }
      return g.answer(output.result, (l) => pyEquals(ref, l) || pyEquals([], l), { oneOf: [ref, []] });
    });
  },
};
