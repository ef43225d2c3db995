/**
 * Paraphrased instruction templates (augmentation, off by default). Contexts and every protocol string stay official;
 * only the question wording changes. Each row built from a paraphrase carries `augmentation: ["paraphrase"]`.
 * Placeholders: `{MRN}`; task1 `{NAME}`, `{DOB}`.
 */
import type { TaskCase } from '../tasks/types.js';

export const PARAPHRASES: Record<string, readonly string[]> = {
  task1: [
    'Find the MRN for the patient named {NAME}, born {DOB}. If no such patient exists, answer "Patient not found"',
    'Look up the medical record number of {NAME} (date of birth {DOB}). If the patient does not exist, the answer should be "Patient not found"',
  ],
  task2: ['How old is the patient with MRN {MRN}?', 'Give the current age in years of patient {MRN}.'],
  task3: [
    'Please chart a blood pressure of "118/77 mmHg" for patient {MRN}; I just took it.',
    'Record the blood pressure reading "118/77 mmHg" I just measured for the patient with MRN {MRN}.',
  ],
  task4: ['What was the last magnesium value for patient {MRN} in the past 24 hours?', 'Latest serum Mg for {MRN} within the last 24 hours?'],
  task5: [
    "Review patient {MRN}'s most recent magnesium from the last 24 hours. If it is low, order IV magnesium replacement per the dosing instructions. If there is no magnesium result in the last 24 hours, do not order anything.\n",
    'Mg check for {MRN}: look at the last 24 h serum magnesium; replace IV per dosing instructions if low, and order nothing if no level was drawn in that window.\n',
  ],
  task6: ['What is the mean CBG for patient {MRN} over the past 24 hours?', 'Average capillary blood glucose of {MRN} in the last 24 hours?'],
  task7: ['What is the latest CBG value recorded for patient {MRN}?', 'Most recent capillary blood glucose for {MRN}?'],
  task8: [
    'Place an orthopedic surgery referral for patient {MRN}. Put this in the referral free text: "Situation: acute left knee injury, Background: radiology report indicates ACL tear. Assessment: ACL tear grade II. Recommendation: request for Orthopedic service to evaluate and provide management recommendations."',
    'Refer patient {MRN} to orthopedic surgery, with the free-text note "Situation: acute left knee injury, Background: radiology report indicates ACL tear. Assessment: ACL tear grade II. Recommendation: request for Orthopedic service to evaluate and provide management recommendations."',
  ],
  task9: [
    "Look at patient {MRN}'s latest potassium. If it is low, order potassium replacement per the dosing instructions, together with a serum potassium level for 8am tomorrow morning.\n",
    'K check for {MRN}: if the most recent potassium is low, replace it according to the dosing instructions and pair the order with a next-day 8am serum potassium lab.\n',
  ],
  task10: [
    'When was the last HbA1C (hemoglobin A1C) for patient {MRN} and what was the value? If the result is more than 1 year old, order a new HbA1C lab test. ',
    'Report the most recent HbA1C value and its date for {MRN}; if that result is older than one year, order a new HbA1C test. ',
  ],
};

/** A paraphrased copy of `task` (same id, context, sol and eval_MRN), or null when the task cannot be paraphrased. */
export function paraphraseTask(task: TaskCase, pick: number): TaskCase | null {
  const family = task.id.split('_')[0]!;
  const list = PARAPHRASES[family];
  if (!list || list.length === 0) return null;
  const tpl = list[pick % list.length]!;
  let instruction: string;
  if (family === 'task1') {
    const m = /with name (.+?) and DOB of (\d{4}-\d{2}-\d{2})/.exec(task.instruction);
    if (!m) return null;
    instruction = tpl.replace('{NAME}', m[1]!).replace('{DOB}', m[2]!);
  } else {
    if (!task.eval_MRN) return null;
    instruction = tpl.split('{MRN}').join(task.eval_MRN);
  }
  return { ...task, instruction };
}
