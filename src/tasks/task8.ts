/**
 * task8 — orthopedic surgery referral (action: exactly one POST ServiceRequest). Grader: refsol.task8 (spec §6.9).
 */
import type { TaskFamily } from './types.js';
import { ORTHO_COMMENT, generateOver, makeTask, orthoReferral, runScript, taskMrn } from './common.js';
import { eqAt, extractPostsDetailed, inAt, runGrader, subjectAssert } from './refsol.js';

export const TASK8_TEMPLATE = `Order orthopedic surgery referral for patient {MRN}. Specify within the free text of the referral, "${ORTHO_COMMENT}"`;
export const TASK8_CONTEXT =
  "It's 2023-11-13T10:15:00+00:00 now. The SNOMED code for orthopedic surgery referral is 306181000000106.";
const VARIANTS = ['direct', 'lookup-first'] as const;

export const task8: TaskFamily = {
  id: 'task8',
  name: 'orthopedic referral',
  kind: 'action',
  instructionTemplates: [TASK8_TEMPLATE],
  context: TASK8_CONTEXT,
  branches: ['n/a'],
  variants: VARIANTS,

  instruction({ mrn }) {
    if (!mrn) throw new Error('task8.instruction: mrn is required');
    return TASK8_TEMPLATE.replace('{MRN}', mrn);
  },

  generate(_world, opts) {
    return generateOver('task8', opts, async (mrn) => ({
      branch: 'n/a',
      patient: mrn,
      facts: {},
      build: (id) => makeTask(id, task8.instruction({ mrn }), TASK8_CONTEXT, mrn),
    }));
  },

  solve(task, history, opts) {
    return runScript(task, history, opts, VARIANTS, (io) => {
      const mrn = taskMrn(task, [TASK8_TEMPLATE]);
      if (io.variant === 'lookup-first') io.get(`${io.apiBase}Patient?identifier=${mrn}`);
      io.post(`${io.apiBase}ServiceRequest`, orthoReferral(mrn));
      io.finish([]);
    });
  },

  grade(task, output, ctx) {
    return runGrader((g) => {
      g.branch = 'n/a';
      const { posts, skipped } = extractPostsDetailed(output.history);
      if (!g.add('post_count', posts.length === 1, 1, posts.length, skipped.length ? `skipped: ${JSON.stringify(skipped)}` : undefined)) return false;
      const { url, payload } = posts[0];
      const want = `${ctx.apiBase}ServiceRequest`;
      if (!g.add('post_url', url === want, want, url)) return false;
      return g.asserts([
        eqAt('resourceType', payload, ['resourceType'], 'ServiceRequest'),
        eqAt('code_system', payload, ['code', 'coding', 0, 'system'], 'http://snomed.info/sct'),
        eqAt('code_code', payload, ['code', 'coding', 0, 'code'], '306181000000106'),
        eqAt('authoredOn', payload, ['authoredOn'], '2023-11-13T10:15:00+00:00'),
        eqAt('status', payload, ['status'], 'active'),
        eqAt('intent', payload, ['intent'], 'order'),
        eqAt('priority', payload, ['priority'], 'stat'),
        inAt('note_text', payload, ['note', 'text'], ORTHO_COMMENT),
        subjectAssert(payload, task),
      ]);
    });
  },
};
