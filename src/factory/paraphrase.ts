/**
 * Paraphrased instruction templates (augmentation, off by default). Contexts and every protocol string stay official;
 * only the question wording changes. Each row built from a paraphrase carries `augmentation: ["paraphrase"]`.
 * The templates and how to read a task's placeholder values (`{MRN}`; task1 `{NAME}`, `{DOB}`) belong to each family
 * (`paraphrases`, `placeholders` in `src/tasks/taskN.ts`).
 */
import { FAMILIES, isFamilyId } from '../tasks/registry.js';
import type { TaskCase } from '../tasks/types.js';

/** A paraphrased copy of `task` (same id, context, sol and eval_MRN), or null when the task cannot be paraphrased. */
export function paraphraseTask(task: TaskCase, pick: number): TaskCase | null {
  const id = task.id.split('_')[0]!;
  if (!isFamilyId(id)) return null;
  const family = FAMILIES[id];
  const list = family.paraphrases;
  if (list.length === 0) return null;
  const values = family.placeholders(task);
  if (!values) return null;
  let instruction = list[pick % list.length]!;
  for (const [k, v] of Object.entries(values)) instruction = instruction.split(`{${k}}`).join(v);
  return { ...task, instruction };
}
