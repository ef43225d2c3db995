/**
 * task8 — orthopedic surgery referral (action: exactly one POST ServiceRequest). Grader: the official `refsol.py` task8
 * (docs/tasks.md).
 */
import { ORTHO_COMMENT, orthoReferral, singlePostFamily } from './common.js';
import { eqAt, inAt, subjectAssert } from './refsol.js';

export const TASK8_TEMPLATE = `Order orthopedic surgery referral for patient {MRN}. Specify within the free text of the referral, "${ORTHO_COMMENT}"`;
export const TASK8_CONTEXT = "It's 2023-11-13T10:15:00+00:00 now. The SNOMED code for orthopedic surgery referral is 306181000000106.";

export const task8 = singlePostFamily({
  id: 'task8',
  name: 'orthopedic referral',
  template: TASK8_TEMPLATE,
  context: TASK8_CONTEXT,
  paraphrases: [
    'Place an orthopedic surgery referral for patient {MRN}. Put this in the referral free text: "Situation: acute left knee injury, Background: radiology report indicates ACL tear. Assessment: ACL tear grade II. Recommendation: request for Orthopedic service to evaluate and provide management recommendations."',
    'Refer patient {MRN} to orthopedic surgery, with the free-text note "Situation: acute left knee injury, Background: radiology report indicates ACL tear. Assessment: ACL tear grade II. Recommendation: request for Orthopedic service to evaluate and provide management recommendations."',
  ],
  remainderRank: 4,
  resource: 'ServiceRequest',
  payload: orthoReferral,
  asserts: (payload, task) => [
    eqAt('resourceType', payload, ['resourceType'], 'ServiceRequest'),
    eqAt('code_system', payload, ['code', 'coding', 0, 'system'], 'http://snomed.info/sct'),
    eqAt('code_code', payload, ['code', 'coding', 0, 'code'], '306181000000106'),
    eqAt('authoredOn', payload, ['authoredOn'], '2023-11-13T10:15:00+00:00'),
    eqAt('status', payload, ['status'], 'active'),
    eqAt('intent', payload, ['intent'], 'order'),
    eqAt('priority', payload, ['priority'], 'stat'),
    inAt('note_text', payload, ['note', 'text'], ORTHO_COMMENT),
    subjectAssert(payload, task),
  ],
});
