/**
 * Scripted agents that make the classic mistakes: the expert policy with one kind of action changed. They fail the
 * tasks that mistake fails and pass the others, so running them through every protocol shows that the graders give
 * the same verdict for the same actions, failures included (docs/eval.md, "Protocols").
 *
 *   no-post        never sends its POSTs (answers right, orders nothing)
 *   string-answer  answers numbers as strings (`["2.7"]` for `[2.7]`)
 *   bad-post-json  sends every POST payload without its last character (not JSON: `Invalid POST request`)
 */
import type { Action } from '../../protocol/action.js';
import { formatAction, parseAction, POST_ACCEPTED } from '../../protocol/text.js';
import { PyFloat, pyJsonDumps, pyJsonLoads } from '../../tasks/pysem.js';
import type { HistoryItem, TaskCase } from '../../tasks/types.js';
import type { Policy } from './scripted.js';

type Act = Exclude<Action, { kind: 'invalid' }>;

/** How a mistake changes one expert action: the action sent instead, or null to skip it (the expert thinks it was done). */
export type Mutation = (action: Act, task: TaskCase) => Act | null;

export const MISTAKES: Record<string, { description: string; mutate: Mutation }> = {
  'no-post': { description: 'the expert, without its POSTs', mutate: (a) => (a.kind === 'post' ? null : a) },
  'string-answer': {
    description: 'the expert, answering numbers as strings',
    mutate: (a) => {
      if (a.kind !== 'finish') return a;
      let v: unknown;
      try {
        v = pyJsonLoads(a.answer, { preserveFloats: true });
      } catch {
        return a;
      }
      if (!Array.isArray(v)) return a;
      const strings = v.map((x) => (typeof x === 'number' || typeof x === 'bigint' || x instanceof PyFloat ? pyJsonDumps(x) : x));
      return { kind: 'finish', answer: pyJsonDumps(strings) };
    },
  },
  'bad-post-json': {
    description: 'the expert, with every POST payload cut short by one character',
    mutate: (a) => (a.kind === 'post' ? { ...a, body: a.body.slice(0, -1) } : a),
  },
};

/**
 * The expert policy with a mutation: the expert is shown the history it would have seen (its own actions, a skipped
 * or mutated POST as accepted), and its next action is sent mutated.
 */
export function mistakePolicy(expert: Policy, mutate: Mutation): Policy {
  return async (task, history, episode) => {
    const seen: HistoryItem[] = history.slice(0, 1);
    let i = 1;
    for (let step = 0; step < 64; step++) {
      const text = await expert(task, seen, episode);
      const action = parseAction(text);
      const sent = action.kind === 'invalid' ? null : mutate(action, task);
      if (action.kind === 'invalid') return text;
      if (sent === null) {
        seen.push({ role: 'agent', content: text }, { role: 'user', content: POST_ACCEPTED });
        continue;
      }
      if (i >= history.length) return formatAction(sent);
      const reply = history[i + 1]?.content ?? '';
      seen.push({ role: 'agent', content: text }, { role: 'user', content: action.kind === 'post' ? POST_ACCEPTED : reply });
      i += 2;
    }
    throw new Error(`${task.id}: the expert policy did not finish`);
  };
}
