/**
 * `gradeOutput`: MedAgentBench's `calculate_overall` over the registered families. It lives apart from `refsol.ts`
 * (the grader primitives every family file uses) so that the import graph of src/tasks stays acyclic:
 * grade → registry → taskN → common → refsol.
 */
import type { GradeResult, GraderContext, TaskCase, TaskOutput } from './types.js';
import { getFamily } from './registry.js';

/**
 * Grade one output as MedAgentBench's `calculate_overall` does: outputs whose `result` is None are not graded
 * (incorrect); any other result (a FINISH string, or `{error}` of a `task error`) goes to the family grader selected by
 * `id.split('_')[0]`. Throws for an unknown family (the official harness would crash too).
 */
export async function gradeOutput(task: TaskCase, output: TaskOutput, ctx: GraderContext): Promise<GradeResult> {
  if (output.result === null || output.result === undefined) {
    return {
      correct: false,
      checks: [{ name: 'graded', pass: false, note: `status "${output.status}": result is None, not graded` }],
    };
  }
  const family = getFamily(task.id.split('_')[0]);
  return family.grade(task, output, ctx);
}
