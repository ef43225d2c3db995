/**
 * Checkpoints: a grader's named checks as partial credit, each with the class of failure it stands for.
 *
 * A clinical-suite grader returns its checks in the order an expert works (look the facts up, decide, write the
 * right payload, answer) with a failure class each; the verdict is "every checkpoint passed", the score is the
 * fraction passed, and the episode's failure class is the class of the first checkpoint that failed — what reports
 * count and RL trainers can shape rewards with. MedAgentBench's graders keep their official verdicts and carry no
 * classes.
 */
import type { GradeCheck, GradeResult, TaskOutput } from './types.js';

/** Why an episode failed, by the first checkpoint it missed. */
export type FailureClass =
  /** it did not find the facts (wrong patient, missed a page, read an entered-in-error value) */
  | 'lookup'
  /** it found them and decided wrongly (wrong branch: acted when it should not, or did not act) */
  | 'decision'
  /** it acted as it should but wrote the wrong thing (a field, a code, a dose, a unit, a stray write) */
  | 'payload'
  /** it broke the protocol (an invalid action, an answer that is not JSON, no FINISH) */
  | 'protocol'
  /** it ran out of rounds */
  | 'budget';

export const FAILURE_CLASSES: readonly FailureClass[] = ['lookup', 'decision', 'payload', 'protocol', 'budget'];

/** A named check with its failure class. */
export interface Checkpoint extends GradeCheck {
  class: FailureClass;
}

export function checkpoint(name: string, cls: FailureClass, pass: boolean, expected?: unknown, actual?: unknown, note?: string): Checkpoint {
  const c: Checkpoint = { name, class: cls, pass };
  if (expected !== undefined) c.expected = expected;
  if (actual !== undefined) c.actual = actual;
  if (note !== undefined) c.note = note;
  return c;
}

/**
 * The checkpoint every clinical grader starts with: the episode ended by FINISH (`completed`). A run out of rounds is
 * `budget`; any other ending (invalid action, context limit, task error) is `protocol`.
 */
export function finishedCheckpoint(output: TaskOutput): Checkpoint {
  const status = String(output.status);
  return checkpoint('finished', status === 'task limit reached' ? 'budget' : 'protocol', status === 'completed', 'completed', status);
}

/**
 * How partial credit is counted: `fraction` — the fraction of checkpoints passed; `prefix` — the checkpoints after the
 * first (`finished`, the gate) passed in expert order before the first failure, over their number (0 when the episode
 * did not finish). `prefix` gives nothing for acts built on facts not found: an agent that does nothing passes
 * "nothing written" on a branch whose right action is to write nothing, but not before the lookup it failed.
 */
export type CreditMode = 'fraction' | 'prefix';

/** The verdict of a list of checkpoints: correct when all pass; `score` the partial credit; class of the first failure. */
export function gradeCheckpoints(
  checks: Checkpoint[],
  extra: { branch?: string; reference?: unknown; exception?: string; credit?: CreditMode } = {},
): GradeResult {
  const failed = checks.find((c) => !c.pass);
  const passed = checks.filter((c) => c.pass).length;
  const g: GradeResult = { correct: !failed && !extra.exception && checks.length > 0, checks };
  if (extra.branch !== undefined) g.branch = extra.branch;
  if (extra.reference !== undefined) g.reference = extra.reference;
  if (extra.exception !== undefined) g.exception = extra.exception;
  if (extra.credit === 'prefix') {
    const rest = checks.slice(1);
    const lead = rest.findIndex((c) => !c.pass);
    g.score = checks.length < 2 || !checks[0]!.pass || extra.exception ? 0 : (lead < 0 ? rest.length : lead) / rest.length;
  } else g.score = checks.length === 0 ? 0 : passed / checks.length;
  if (failed) g.failureClass = failed.class;
  else if (extra.exception) g.failureClass = 'protocol';
  return g;
}
