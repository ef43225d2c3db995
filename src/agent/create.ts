/**
 * The agent factory behind `--agent`:
 *
 *   openai:<model>      any OpenAI-compatible chat endpoint (--base-url, --api-key-env, --extra, …)
 *   oracle              the expert solvers of the task families
 *   finish-empty        always `FINISH([])`
 *   give-up             always `FINISH(["unknown"])`
 *   finish-nothing-found, read-then-finish, always-act   degenerate policies (backends/degenerate.ts, `ehrgym audit`)
 *   no-post, string-answer, bad-post-json   the expert making one classic mistake (backends/mistakes.ts)
 *   replay:<runs.jsonl> re-sends a recorded run's agent messages, by task index, in order
 */
import type { Agent } from './types.js';
import { OpenAIAgent, AgentConfigError, type OpenAIAgentOptions } from './backends/openai.js';
import { PolicyAgent, ReplayAgent, finishEmptyAgent, giveUpAgent, type Policy } from './backends/scripted.js';
import { getFamily } from '../tasks/registry.js';
import { MISTAKES, mistakePolicy } from './backends/mistakes.js';
import { degenerateAgent } from './backends/degenerate.js';
import { SOLVER_VERSION } from '../tasks/common.js';

/** The expert solvers of the task families as one policy (the next action for any task id). */
export const expertPolicy: Policy = (task, history, episode) => getFamily(task.id.split('_')[0]).solve(task, history, { apiBase: episode.apiBase });

export interface CreateAgentOptions extends Omit<OpenAIAgentOptions, 'model'> {
  /** The expert policy played by `oracle` (default: the families' expert solvers). */
  oraclePolicy?: Policy;
}

export const AGENT_SPECS = [
  'openai:<model>',
  'oracle',
  'finish-empty',
  'give-up',
  'finish-nothing-found',
  'read-then-finish',
  'always-act',
  ...Object.keys(MISTAKES),
  'replay:<runs.jsonl>',
];

export function createAgent(spec: string, opts: CreateAgentOptions = {}): Agent {
  if (spec.startsWith('openai:')) {
    const model = spec.slice('openai:'.length);
    if (!model) throw new AgentConfigError('--agent openai:<model> needs a model name');
    return new OpenAIAgent({ ...opts, model });
  }
  if (spec.startsWith('replay:')) {
    const path = spec.slice('replay:'.length);
    if (!path) throw new AgentConfigError('--agent replay:<runs.jsonl> needs a file');
    return new ReplayAgent(path);
  }
  switch (spec) {
    case 'oracle':
      return new PolicyAgent('oracle', opts.oraclePolicy ?? expertPolicy, {
        backend: 'scripted',
        policy: opts.oraclePolicy ? 'custom' : 'expert solvers',
        solverVersion: SOLVER_VERSION,
      });
    case 'finish-empty':
      return finishEmptyAgent();
    case 'give-up':
      return giveUpAgent();
    case 'finish-nothing-found':
    case 'read-then-finish':
    case 'always-act':
      return degenerateAgent(spec, opts.oraclePolicy ?? expertPolicy);
    case 'modal-answer':
      throw new AgentConfigError("--agent modal-answer needs the task set's right answers: ehrgym audit runs it (after an oracle pass)");
    default:
      if (Object.hasOwn(MISTAKES, spec)) {
        return new PolicyAgent(spec, mistakePolicy(opts.oraclePolicy ?? expertPolicy, MISTAKES[spec].mutate), {
          backend: 'scripted',
          policy: MISTAKES[spec].description,
          solverVersion: SOLVER_VERSION,
        });
      }
      throw new AgentConfigError(`unknown agent "${spec}" (expected one of ${AGENT_SPECS.join(', ')})`);
  }
}

export { AgentConfigError };
