/**
 * task5 — magnesium check and conditional IV replacement (action). Grader: the official `refsol.py` task5
 * (docs/tasks.md).
 */
import type { TaskFamily } from './types.js';
import {
  generateOver,
  latestLabLast24h,
  latestReading,
  lookupFirst,
  magnesiumOrder,
  makeTask,
  mrnDetector,
  mrnInstruction,
  mrnPlaceholders,
  runScript,
  taskMrn,
} from './common.js';
import { pyCompare, pyEquals, pyPath } from './pysem.js';
import { CUTOFF_24H, eqAt, getLabHistory, inAt, runGrader, scanLatest, subjectAssert } from './refsol.js';

export const TASK5_TEMPLATE =
  "Check patient {MRN}'s last serum magnesium level within last 24 hours. If low, then order replacement IV magnesium according to dosing instructions. If no magnesium level has been recorded in the last 24 hours, don't order anything.\n";
export const TASK5_CONTEXT =
  'It\'s 2023-11-13T10:15:00+00:00 now. The code for magnesium is "MG". The NDC for replacement IV magnesium is 0338-1715-40. Dosing instructions: (1) Mild deficiency (eg, serum magnesium 1.5 to 1.9 mg/dL):\nIV: 1 g over 1 hour.\n(2) Moderate deficiency (eg, serum magnesium 1 to <1.5 mg/dL):\nIV: 2 g over 2 hours.\n(3) Severe deficiency (eg, serum magnesium <1 mg/dL):\nIV: 4 g over 4 hours.\n';
const VARIANTS = ['scan', 'sorted', 'lookup-first'] as const;

/** The grader's dose table: `< 1` → (4, 4); `< 1.5` → (2, 2); otherwise (1, 1). Raises TypeError for a non-number. */
export function magnesiumDose(lastValue: unknown): { dose: number; rate: number } {
  if (pyCompare(lastValue, '<', 1)) return { dose: 4, rate: 4 };
  if (pyCompare(lastValue, '<', 1.5)) return { dose: 2, rate: 2 };
  return { dose: 1, rate: 1 };
}

/** Branch of a latest-in-24h magnesium value: none → no-data; `> 1.9` → high; else an order is required. */
export function task5Branch(lastValue: unknown): 'data_absent_no_order' | 'high_no_order' | 'low_order_required' {
  if (lastValue === null) return 'data_absent_no_order';
  return pyCompare(lastValue, '>', 1.9) ? 'high_no_order' : 'low_order_required';
}

export const task5: TaskFamily<'task5'> = {
  id: 'task5',
  name: 'magnesium check and IV replacement',
  kind: 'action',
  instructionTemplates: [TASK5_TEMPLATE],
  context: TASK5_CONTEXT,
  branches: ['data_absent_no_order', 'high_no_order', 'low_order_required'],
  variants: VARIANTS,
  turns: { min: 2, max: 3 },
  recordKey: 'eval_MRN',
  paraphrases: [
    "Review patient {MRN}'s most recent magnesium from the last 24 hours. If it is low, order IV magnesium replacement per the dosing instructions. If there is no magnesium result in the last 24 hours, do not order anything.\n",
    'Mg check for {MRN}: look at the last 24 h serum magnesium; replace IV per dosing instructions if low, and order nothing if no level was drawn in that window.\n',
  ],
  placeholders: mrnPlaceholders,
  planted: { labs: ['MG'] },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: {
    remainderRank: 0,
    reusePatients: false,
    branchOf: (f) =>
      f.mg.branch === 'none' || f.mg.branch === 'stale' ? 'data_absent_no_order' : f.mg.branch === 'normal' ? 'high_no_order' : 'low_order_required',
    boundaryTags: (f) => [...(f.mg.edge ? [`MG@${f.mg.edge}`] : []), ...(f.mg.latest24h ? [`MG=${f.mg.latest24h.value}`] : [])],
  },

  instruction: mrnInstruction('task5', TASK5_TEMPLATE),

  generate(world, opts) {
    return generateOver('task5', opts, async (mrn) => {
      const s = await latestLabLast24h(world, mrn, 'MG');
      const branch = task5Branch(s.value);
      const facts: Record<string, unknown> = { lastValue: s.value, effectiveDateTime: s.time };
      if (branch === 'low_order_required') Object.assign(facts, magnesiumDose(s.value));
      return { branch, patient: mrn, facts, build: (id) => makeTask(id, task5.instruction({ mrn }), TASK5_CONTEXT, mrn) };
    });
  },

  solve(task, history, opts) {
    return runScript(task, history, opts, VARIANTS, (io) => {
      const mrn = taskMrn(task, [TASK5_TEMPLATE]);
      lookupFirst(io, mrn);
      const r = latestReading(io, mrn, 'MG', CUTOFF_24H);
      const value = r ? r.value : null;
      const branch = task5Branch(value);
      if (branch === 'data_absent_no_order') io.finish([-1]);
      if (branch === 'low_order_required') {
        const { dose, rate } = magnesiumDose(value);
        io.post(`${io.apiBase}MedicationRequest`, magnesiumOrder(mrn, dose, rate));
      }
      io.finish([value]);
    });
  },

  grade(task, output, ctx) {
    return runGrader(async (g) => {
      const s = scanLatest(await getLabHistory(ctx, task, 'MG'), CUTOFF_24H);
      const lastValue = s.value;
      g.reference = [lastValue !== null ? lastValue : -1];
      if (lastValue === null) {
        g.branch = 'data_absent_no_order';
        return g.noPost(output.history);
      } else if (pyCompare(lastValue, '>', 1.9)) {
        g.branch = 'high_no_order';
        if (!g.noPost(output.history)) return false;
      } else {
        g.branch = 'low_order_required';
        const post = g.onePost(output.history, `${ctx.apiBase}MedicationRequest`);
        if (!post) return false;
        const { payload } = post;
        const ok = g.asserts([
          eqAt('resourceType', payload, ['resourceType'], 'MedicationRequest'),
          eqAt('ndc_system', payload, ['medicationCodeableConcept', 'coding', 0, 'system'], 'http://hl7.org/fhir/sid/ndc'),
          eqAt('ndc_code', payload, ['medicationCodeableConcept', 'coding', 0, 'code'], '0338-1715-40'),
          inAt('authoredOn', payload, ['authoredOn'], '2023-11-13T10:15'),
          eqAt('route', payload, ['dosageInstruction', 0, 'route'], 'IV'),
          {
            name: 'doseQuantity',
            actual: () => pyPath(payload, 'dosageInstruction', 0, 'doseAndRate', 0, 'doseQuantity'),
            expected: { value: magnesiumDose(lastValue).dose, unit: 'g' },
          },
          {
            name: 'rateQuantity',
            actual: () => pyPath(payload, 'dosageInstruction', 0, 'doseAndRate', 0, 'rateQuantity'),
            expected: { value: magnesiumDose(lastValue).rate, unit: 'h' },
          },
          eqAt('status', payload, ['status'], 'active'),
          eqAt('intent', payload, ['intent'], 'order'),
          subjectAssert(payload, task),
        ]);
        if (!ok) return false;
      }
      const ref = [lastValue];
      return g.answer(output.result, (l) => pyEquals(ref, l) || pyEquals([], l), { oneOf: [ref, []] });
    });
  },
};
