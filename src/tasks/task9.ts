/**
 * task9 — potassium check, oral replacement and next-morning lab (action). Grader: the official `refsol.py` task9
 * (docs/tasks.md).
 */
import type { TaskFamily } from './types.js';
import {
  generateOver,
  latestLab,
  latestReading,
  lookupFirst,
  makeTask,
  mrnDetector,
  mrnInstruction,
  mrnPlaceholders,
  potassiumLab,
  potassiumOrder,
  runScript,
  taskMrn,
} from './common.js';
import { pyAbs, pyCompare, pyDiv, pyEquals, pyLower, pyMul, pyPath, pyStrip, pySub } from './pysem.js';
import { eqAt, getLabHistory, inAt, runGrader, scanLatest, subjectAssert } from './refsol.js';

export const TASK9_TEMPLATE =
  "Check patient {MRN}'s most recent potassium level. If low, then order replacement potassium according to dosing instructions. Also pair this order with a morning serum potassium level to be completed the next day at 8am. \n";
export const TASK9_CONTEXT =
  'It\'s 2023-11-13T10:15:00+00:00 now. The code for potassium is "K".The NDC for replacement potassium is 40032-917-01. Dosing instructions: for every 0.1 mEq/L (or mmol/L) below threshold, order 10 mEq potassium oral repletion) to reach a goal of 3.5 serum level. The LOINC code for serum potassium level is 2823-3.';
const VARIANTS = ['scan', 'sorted', 'lookup-first'] as const;

/** The grader's dose: `(3.5-last_value)/0.1 * 10` in IEEE doubles (K 3.1 → 39.99999999999999). */
export function potassiumDose(lastValue: unknown): number {
  return pyMul(pyDiv(pySub(3.5, lastValue), 0.1), 10) as number;
}

export function task9Branch(lastValue: unknown): 'data_absent_no_order' | 'normal_no_order' | 'low_order_required' {
  if (lastValue === null) return 'data_absent_no_order';
  return pyCompare(lastValue, '>=', 3.5) ? 'normal_no_order' : 'low_order_required';
}

export const task9: TaskFamily<'task9'> = {
  id: 'task9',
  name: 'potassium check, replacement and morning lab',
  kind: 'action',
  instructionTemplates: [TASK9_TEMPLATE],
  context: TASK9_CONTEXT,
  branches: ['data_absent_no_order', 'normal_no_order', 'low_order_required'],
  variants: VARIANTS,
  turns: { min: 2, max: 4 },
  recordKey: 'eval_MRN',
  paraphrases: [
    "Look at patient {MRN}'s latest potassium. If it is low, order potassium replacement per the dosing instructions, together with a serum potassium level for 8am tomorrow morning.\n",
    'K check for {MRN}: if the most recent potassium is low, replace it according to the dosing instructions and pair the order with a next-day 8am serum potassium lab.\n',
  ],
  placeholders: mrnPlaceholders,
  planted: { labs: ['K'] },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: {
    remainderRank: 1,
    reusePatients: false,
    branchOf: (f) => (f.k.branch === 'none' ? 'data_absent_no_order' : f.k.branch === 'low' ? 'low_order_required' : 'normal_no_order'),
    boundaryTags: (f) => (f.k.latest ? [`K=${f.k.latest.value}`] : []),
  },

  instruction: mrnInstruction('task9', TASK9_TEMPLATE),

  generate(world, opts) {
    return generateOver('task9', opts, async (mrn) => {
      const s = await latestLab(world, mrn, 'K');
      const branch = task9Branch(s.value);
      const facts: Record<string, unknown> = { lastValue: s.value, effectiveDateTime: s.time };
      if (branch === 'low_order_required') facts.dose = potassiumDose(s.value);
      return { branch, patient: mrn, facts, build: (id) => makeTask(id, task9.instruction({ mrn }), TASK9_CONTEXT, mrn) };
    });
  },

  solve(task, history, opts) {
    return runScript(task, history, opts, VARIANTS, (io) => {
      const mrn = taskMrn(task, [TASK9_TEMPLATE]);
      lookupFirst(io, mrn);
      const r = latestReading(io, mrn, 'K');
      const value = r ? r.value : null;
      const branch = task9Branch(value);
      if (branch === 'data_absent_no_order') io.finish([-1]);
      if (branch === 'low_order_required') {
        io.post(`${io.apiBase}MedicationRequest`, potassiumOrder(mrn, Math.round(potassiumDose(value) * 10) / 10));
        io.post(`${io.apiBase}ServiceRequest`, potassiumLab(mrn));
      }
      io.finish([value]);
    });
  },

  grade(task, output, ctx) {
    return runGrader(async (g) => {
      const s = scanLatest(await getLabHistory(ctx, task, 'K'));
      const lastValue = s.value;
      g.reference = [lastValue !== null ? lastValue : -1];
      if (lastValue === null || pyCompare(lastValue, '>=', 3.5)) {
        g.branch = lastValue === null ? 'data_absent_no_order' : 'normal_no_order';
        if (!g.noPost(output.history)) return false;
      } else {
        g.branch = 'low_order_required';
        const posts = g.postCount(output.history, 2);
        if (!posts) return false;
        const med = posts[0];
        const wantMed = `${ctx.apiBase}MedicationRequest`;
        if (!g.add('post1_url', med.url === wantMed, wantMed, med.url)) return false;
        const p = med.payload;
        const ok1 = g.asserts([
          eqAt('post1_resourceType', p, ['resourceType'], 'MedicationRequest'),
          eqAt('post1_ndc_system', p, ['medicationCodeableConcept', 'coding', 0, 'system'], 'http://hl7.org/fhir/sid/ndc'),
          eqAt('post1_ndc_code', p, ['medicationCodeableConcept', 'coding', 0, 'code'], '40032-917-01'),
          inAt('post1_authoredOn', p, ['authoredOn'], '2023-11-13T10:15'),
          {
            name: 'post1_route',
            actual: () => pyPath(p, 'dosageInstruction', 0, 'route'),
            expected: 'oral (after .lower().strip())',
            test: (a) => pyStrip(pyLower(a)) === 'oral',
          },
          {
            name: 'post1_dose',
            actual: () => pyPath(p, 'dosageInstruction', 0, 'doseAndRate', 0, 'doseQuantity', 'value'),
            expected: { value: potassiumDose(lastValue), tolerance: '<= 0.1' },
            test: (a) => pyCompare(pyAbs(pySub(a, potassiumDose(lastValue))), '<=', 0.1),
          },
          eqAt('post1_dose_unit', p, ['dosageInstruction', 0, 'doseAndRate', 0, 'doseQuantity', 'unit'], 'mEq'),
          eqAt('post1_status', p, ['status'], 'active'),
          eqAt('post1_intent', p, ['intent'], 'order'),
          { ...subjectAssert(p, task), name: 'post1_subject' },
        ]);
        if (!ok1) return false;
        const lab = posts[1];
        const wantLab = `${ctx.apiBase}ServiceRequest`;
        if (!g.add('post2_url', lab.url === wantLab, wantLab, lab.url)) return false;
        const q = lab.payload;
        const ok2 = g.asserts([
          eqAt('post2_resourceType', q, ['resourceType'], 'ServiceRequest'),
          eqAt('post2_code_system', q, ['code', 'coding', 0, 'system'], 'http://loinc.org'),
          eqAt('post2_code_code', q, ['code', 'coding', 0, 'code'], '2823-3'),
          eqAt('post2_authoredOn', q, ['authoredOn'], '2023-11-13T10:15:00+00:00'),
          eqAt('post2_status', q, ['status'], 'active'),
          eqAt('post2_intent', q, ['intent'], 'order'),
          eqAt('post2_priority', q, ['priority'], 'stat'),
          { ...subjectAssert(q, task), name: 'post2_subject' },
          inAt('post2_occurrenceDateTime', q, ['occurrenceDateTime'], '2023-11-14T08:'),
        ]);
        if (!ok2) return false;
      }
      const ref = [lastValue !== null ? lastValue : -1];
      return g.answer(output.result, (l) => pyEquals(ref, l) || pyEquals([], l), { oneOf: [ref, []] });
    });
  },
};
