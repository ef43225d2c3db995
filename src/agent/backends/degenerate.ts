/**
 * Degenerate policies: scripted agents that try to score without doing the task. `ehrgym audit` (src/eval/audit.ts)
 * runs them over a task set to show how many points a benchmark gives away; `ehrgym eval --agent <name>` runs any one.
 *
 *   finish-empty          `FINISH([])` at once (backends/scripted.ts)
 *   finish-nothing-found  the family's "nothing found" answer at once (`[-1]`, task1 `["Patient not found"]`)
 *   give-up               `FINISH(["unknown"])` at once (backends/scripted.ts)
 *   read-then-finish      the expert's reads (its GETs up to its first write or answer), then `FINISH([])`
 *   always-act            the family's action whatever the data (no reads), then `FINISH([])`
 *   modal-answer          the family's most frequent right answer over the task set, at once (no reads, no writes):
 *                         what a fixed answer earns; the audit takes the answers from an oracle pass
 *
 * What a policy does on a family comes from the family's `audit` hooks (src/tasks/types.ts, `AuditHooks`); a family
 * without a "nothing found" answer, or without an action, says so (`null`), and the policy sends `FINISH([])` there.
 */
import type { Agent } from '../types.js';
import { formatAction, parseAction } from '../../protocol/text.js';
import { pyJsonDumps } from '../../tasks/pysem.js';
import { getFamily } from '../../tasks/registry.js';
import type { AuditHooks, TaskCase, TaskFamily } from '../../tasks/types.js';
import { SOLVER_VERSION } from '../../tasks/common.js';
import { PolicyAgent, type Policy } from './scripted.js';

/** The degenerate policies in audit order (the rows of `ehrgym audit`, the keys of its `--json`). */
export const DEGENERATE_POLICIES = ['finish-empty', 'finish-nothing-found', 'give-up', 'read-then-finish', 'always-act', 'modal-answer'] as const;
export type DegeneratePolicy = (typeof DEGENERATE_POLICIES)[number];

export const DEGENERATE_DESCRIPTIONS: Readonly<Record<DegeneratePolicy, string>> = {
  'finish-empty': 'FINISH([]) at once',
  'finish-nothing-found': 'the family\'s "nothing found" answer at once ([-1], task1 ["Patient not found"]); FINISH([]) where the family has none',
  'give-up': 'FINISH(["unknown"]) at once',
  'read-then-finish': "the expert's reads (its GETs up to its first write or answer), then FINISH([])",
  'always-act': "the family's action whatever the data, reading nothing, then FINISH([]); FINISH([]) where the family has no action",
  'modal-answer': "the family's most frequent right answer over the task set (the oracle's answers) at once, reading and writing nothing",
};

/**
 * Per family (by task id prefix), the most frequent FINISH answer among the given right answers (ties: the first seen).
 * `answers` pairs a task id with the answer text an expert finished with.
 */
export function modalAnswers(answers: Iterable<{ id: string; result: string }>): Map<string, string> {
  const counts = new Map<string, Map<string, number>>();
  for (const { id, result } of answers) {
    const fam = id.split('_')[0]!;
    const m = counts.get(fam) ?? new Map<string, number>();
    m.set(result, (m.get(result) ?? 0) + 1);
    counts.set(fam, m);
  }
  const out = new Map<string, string>();
  for (const [fam, m] of counts) {
    let best: [string, number] | null = null;
    for (const e of m) if (!best || e[1] > best[1]) best = e;
    out.set(fam, best![0]);
  }
  return out;
}

/** `modal-answer`: FINISH with the family's modal answer at once (`FINISH([])` for a family without one). */
export function modalAnswerAgent(answers: ReadonlyMap<string, string>): Agent {
  return new PolicyAgent('modal-answer', (task) => formatAction({ kind: 'finish', answer: answers.get(task.id.split('_')[0]!) ?? '[]' }), {
    backend: 'scripted',
    policy: DEGENERATE_DESCRIPTIONS['modal-answer'],
  });
}

const FINISH_EMPTY = formatAction({ kind: 'finish', answer: '[]' });

/** The audit hooks of a task's family (the registry refuses a family without them). */
export function auditHooks(family: TaskFamily): AuditHooks {
  if (!family.audit) throw new Error(`task family ${family.id} has no audit hooks`);
  return family.audit;
}

function hooksOf(task: TaskCase): AuditHooks {
  return auditHooks(getFamily(task.id.split('_')[0]));
}

/**
 * Whether `policy` has nothing of its own on `family` and sends `FINISH([])` there (so its score is finish-empty's):
 * finish-nothing-found on a family without a "nothing found" answer, always-act on a family without an action.
 */
export function playsFinishEmpty(policy: DegeneratePolicy, family: TaskFamily): boolean {
  if (policy === 'modal-answer') return false;
  if (policy === 'finish-nothing-found') return auditHooks(family).nothingFound === null;
  if (policy === 'always-act') return auditHooks(family).alwaysAct === null;
  return false;
}

/** The family's "nothing found" answer at once (`FINISH([])` where it has none). */
export const finishNothingFoundPolicy: Policy = (task) => {
  const answer = hooksOf(task).nothingFound;
  return formatAction({ kind: 'finish', answer: pyJsonDumps(answer ?? []) });
};

/**
 * The expert's reads, then `FINISH([])`: each turn asks the expert for its next action (the history holds only its own
 * GETs and their answers, so it replays them) and sends it when it is a GET; its first write or answer becomes
 * `FINISH([])`.
 */
export function readThenFinishPolicy(expert: Policy): Policy {
  return async (task, history, episode) => {
    const next = await expert(task, history, episode);
    return parseAction(next).kind === 'get' ? next : FINISH_EMPTY;
  };
}

/** The family's `alwaysAct` policy (`FINISH([])` where the family has no action). */
export const alwaysActPolicy: Policy = (task, history, episode) => {
  const act = hooksOf(task).alwaysAct;
  return act ? act(task, history, { apiBase: episode.apiBase }) : FINISH_EMPTY;
};

/** The agent of a degenerate policy other than `finish-empty` and `give-up` (backends/scripted.ts has those). */
export function degenerateAgent(name: 'finish-nothing-found' | 'read-then-finish' | 'always-act', expert: Policy): Agent {
  const config = { backend: 'scripted', policy: DEGENERATE_DESCRIPTIONS[name] };
  switch (name) {
    case 'finish-nothing-found':
      return new PolicyAgent(name, finishNothingFoundPolicy, config);
    case 'read-then-finish':
      return new PolicyAgent(name, readThenFinishPolicy(expert), { ...config, solverVersion: SOLVER_VERSION });
    case 'always-act':
      return new PolicyAgent(name, alwaysActPolicy, { ...config, solverVersion: SOLVER_VERSION });
  }
}
