/**
 * task3 — record a blood pressure (action: exactly one POST Observation). Grader: refsol.task3 (spec §6.4).
 */
import type { TaskFamily } from './types.js';
import { bpObservation, generateOver, makeTask, runScript, taskMrn } from './common.js';
import { pyLen, pyPath } from './pysem.js';
import { eqAt, extractPostsDetailed, runGrader, subjectAssert } from './refsol.js';

export const TASK3_TEMPLATE =
  'I just measured the blood pressure for patient with MRN of {MRN}, and it is "118/77 mmHg". Help me record it.';
export const TASK3_CONTEXT = "It's 2023-11-13T10:15:00+00:00 now. The flowsheet ID for blood pressure is BP.";
const VARIANTS = ['direct', 'lookup-first'] as const;

export const task3: TaskFamily = {
  id: 'task3',
  name: 'record blood pressure',
  kind: 'action',
  instructionTemplates: [TASK3_TEMPLATE],
  context: TASK3_CONTEXT,
  branches: ['n/a'],
  variants: VARIANTS,

  instruction({ mrn }) {
    if (!mrn) throw new Error('task3.instruction: mrn is required');
    return TASK3_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(_world, opts) {
    return generateOver('task3', opts, async (mrn) => ({
      branch: 'n/a',
      patient: mrn,
      facts: {},
      build: (id) => makeTask(id, task3.instruction({ mrn }), TASK3_CONTEXT, mrn),
    }));
  },

  solve(task, history, opts) {
    return runScript(task, history, opts, VARIANTS, (io) => {
      const mrn = taskMrn(task, [TASK3_TEMPLATE]);
      if (io.variant === 'lookup-first') io.get(`${io.apiBase}Patient?identifier=${mrn}`);
      io.post(`${io.apiBase}Observation`, bpObservation(mrn));
      io.finish([]);
    });
  },

  grade(task, output, ctx) {
    return runGrader((g) => {
      g.branch = 'n/a';
      const { posts, skipped } = extractPostsDetailed(output.history);
      if (!g.add('post_count', posts.length === 1, 1, posts.length, skipped.length ? `skipped: ${JSON.stringify(skipped)}` : undefined)) return false;
      const { url, payload } = posts[0];
      if (!g.add('post_url', url === `${ctx.apiBase}Observation`, `${ctx.apiBase}Observation`, url)) return false;
      return g.asserts([
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
      ]);
    });
  },
};

