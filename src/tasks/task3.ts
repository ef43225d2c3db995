/**
 * task3 — record a blood pressure (action: exactly one POST Observation). Grader: the official `refsol.py` task3
 * (docs/tasks.md).
 */
import { bpObservation, singlePostFamily } from './common.js';
import { pyLen, pyPath } from './pysem.js';
import { eqAt, subjectAssert } from './refsol.js';

export const TASK3_TEMPLATE = 'I just measured the blood pressure for patient with MRN of {MRN}, and it is "118/77 mmHg". Help me record it.';
export const TASK3_CONTEXT = "It's 2023-11-13T10:15:00+00:00 now. The flowsheet ID for blood pressure is BP.";

export const task3 = singlePostFamily({
  id: 'task3',
  name: 'record blood pressure',
  template: TASK3_TEMPLATE,
  context: TASK3_CONTEXT,
  paraphrases: [
    'Please chart a blood pressure of "118/77 mmHg" for patient {MRN}; I just took it.',
    'Record the blood pressure reading "118/77 mmHg" I just measured for the patient with MRN {MRN}.',
  ],
  remainderRank: 3,
  resource: 'Observation',
  payload: bpObservation,
  asserts: (payload, task) => [
    eqAt('resourceType', payload, ['resourceType'], 'Observation'),
    { name: 'category_len', actual: () => pyLen(pyPath(payload, 'category')), expected: 1 },
    { name: 'category_coding_len', actual: () => pyLen(pyPath(payload, 'category', 0, 'coding')), expected: 1 },
    eqAt('category_coding', payload, ['category', 0, 'coding', 0], {
      system: 'http://hl7.org/fhir/observation-category',
      code: 'vital-signs',
      display: 'Vital Signs',
    }),
    eqAt('code', payload, ['code'], { text: 'BP' }),
    eqAt('effectiveDateTime', payload, ['effectiveDateTime'], '2023-11-13T10:15:00+00:00'),
    eqAt('status', payload, ['status'], 'final'),
    eqAt('valueString', payload, ['valueString'], '118/77 mmHg'),
    subjectAssert(payload, task),
  ],
});
