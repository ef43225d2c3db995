/**
 * The episode loop of the `tools` and `mcp` protocols (docs/eval.md, "Protocols"): the model gets the task as one user
 * message and the tools as OpenAI functions; every tool call is mapped onto the canonical action of the text protocol
 * (src/protocol/tools.ts), executed, and answered with exactly the text the text protocol would answer, as a `tool`
 * message. The episode is recorded twice: `messages`, the native transcript, and `history`, the same actions as the
 * text protocol's history (the action's text reply, then the answer), which the MedAgentBench graders, the report and
 * the exports read, so the same actions get the same verdict whatever the protocol.
 *
 * Outcomes:
 *   - a tool call that maps to an action: executed, one history pair; `finish` ends the episode (`completed`);
 *   - several calls in one reply: executed in order within the one round; calls after a `finish` are not executed;
 *   - an unknown tool, arguments that are not a JSON object, a bad argument type, `finish` without `answer`: a tool
 *     message `Error in the tool call: …` (the episode goes on; the history records `TOOL_CALL <name> <arguments>`);
 *   - create-tool arguments that are not JSON: the text protocol's `Invalid POST request` (a POST with that payload);
 *   - a reply without tool calls: the episode ends with `agent invalid action` (empty: `model empty reply` in our
 *     files; `<tool_call>` text a server did not parse: `model tool call in text`, or recovered as tool calls with
 *     `recoverToolText`);
 *   - `maxRounds` replies without `finish`: `task limit reached`.
 */
import type { Agent } from './types.js';
import type { ChatMessage, ChatToolCall, HistoryItem, TaskCase } from '../tasks/types.js';
import type { FhirTransport } from '../fhir/types.js';
import { OFFICIAL_API_BASE } from '../fhir/types.js';
import type { Action } from '../protocol/action.js';
import { formatAction } from '../protocol/text.js';
import {
  type FunctionTool,
  type ToolCallText,
  RECOVERED_CALL_ID_PREFIX,
  callToAction,
  functionTools,
  recoverToolCalls,
  hasToolCallText,
  renderToolsPrompt,
  toolErrorText,
  toolErrorTurn,
} from '../protocol/tools.js';
import {
  DEFAULT_MAX_ROUNDS,
  EpisodeAccount,
  errorMessage,
  type EpisodeResult,
  type JsonLoads,
  type PostMode,
  defaultJsonLoads,
  executeAction,
} from './loop.js';
import { pyStrip } from '../tasks/pysem.js';
import { MEDAGENTBENCH_DIALECT, taskDialect, type Dialect } from '../protocol/dialect.js';

/** Where a `tools` / `mcp` episode's actions are executed. */
export interface ToolEnvironment {
  /** The tools handed to the model. */
  tools: FunctionTool[];
  /** The answer to an executed GET, POST or PUT (`call` is the tool call that asked for it). */
  execute(action: Extract<Action, { kind: 'get' | 'post' | 'put' }>, call: ToolCallText): Promise<string>;
  close?(): Promise<void>;
}

/**
 * The `tools` protocol's environment: actions executed on the episode's FHIR transport, as the text protocol does;
 * the tools of `dialect` (default MedAgentBench's; a suite task's is `taskDialect(task)`).
 */
export function directToolEnvironment(opts: { fhir: FhirTransport; postMode?: PostMode; jsonLoads?: JsonLoads; dialect?: Dialect }): ToolEnvironment {
  const ctx = { fhir: opts.fhir, postMode: opts.postMode ?? 'live', jsonLoads: opts.jsonLoads ?? defaultJsonLoads };
  return { tools: functionTools(opts.dialect ?? MEDAGENTBENCH_DIALECT), execute: (action) => executeAction(action, ctx) };
}

export interface ToolsEpisodeOptions {
  index: number;
  task: TaskCase;
  agent: Agent;
  env: ToolEnvironment;
  apiBase?: string;
  maxRounds?: number;
  /** The first user message; default `renderToolsPrompt(task)`. */
  prompt?: string;
  /** The protocol dialect calls are mapped in; default the task's family's (`taskDialect`). */
  dialect?: Dialect;
  /** Read `<tool_call>{…}</tool_call>` blocks in a reply without tool calls as its tool calls (default false). */
  recoverToolText?: boolean;
  signal?: AbortSignal;
}

/** Run one `tools` / `mcp` episode. Never throws (agent failures are reported in the result). */
export async function runToolsEpisode(opts: ToolsEpisodeOptions): Promise<EpisodeResult> {
  let recovered = 0;
  const acct = new EpisodeAccount((status, result) => ({
    index: opts.index,
    status,
    result,
    history,
    messages,
    ...(recovered > 0 ? { recoveredToolCalls: recovered } : {}),
  }));
  const done = acct.done.bind(acct);
  const apiBase = opts.apiBase ?? OFFICIAL_API_BASE;
  const maxRounds = opts.maxRounds ?? DEFAULT_MAX_ROUNDS;
  const agent = opts.agent;
  const dialect = opts.dialect ?? taskDialect(opts.task);
  const prompt = opts.prompt ?? renderToolsPrompt(opts.task);
  const messages: ChatMessage[] = [{ role: 'user', content: prompt }];
  const history: HistoryItem[] = [{ role: 'user', content: prompt }];
  const actTools = agent.actTools?.bind(agent);
  if (!actTools) return done('running', null, `agent ${agent.name} cannot play the tools protocol`);

  try {
    for (let round = 0; round < maxRounds; round++) {
      const turn = await acct.agent(() =>
        actTools({ messages, history, tools: opts.env.tools }, { index: opts.index, task: opts.task, apiBase, signal: opts.signal }),
      );
      if ('end' in turn) return turn.end;
      const reply = turn.reply;
      let calls = reply.toolCalls;
      let content = reply.content;
      if (calls.length === 0 && opts.recoverToolText && hasToolCallText(content)) {
        const found = recoverToolCalls(content ?? '');
        if (found.length > 0) {
          calls = found.map((c, i) => ({ ...c, id: `${RECOVERED_CALL_ID_PREFIX}${round + 1}_${i + 1}` }));
          recovered += found.length;
          const rest = (content ?? '').replace(/<tool_call>[\s\S]*?<\/tool_call>/g, '').trim();
          content = rest === '' ? null : rest;
        }
      }
      const toolCalls: ChatToolCall[] = calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
      messages.push(toolCalls.length > 0 ? { role: 'assistant', content, tool_calls: toolCalls } : { role: 'assistant', content });
      if (calls.length === 0) {
        const text = content ?? '';
        history.push({ role: 'agent', content: text });
        const empty = pyStrip(text) === '' ? { emptyReply: reply.reasoningOnly ?? 'empty' } : undefined;
        return done('agent invalid action', null, undefined, empty);
      }
      for (const call of calls) {
        const outcome = callToAction(call.name, call.arguments, apiBase, dialect);
        let answer: string;
        if (!outcome.ok) {
          history.push({ role: 'agent', content: toolErrorTurn(call.name, call.arguments) });
          answer = toolErrorText(outcome.error);
        } else {
          history.push({ role: 'agent', content: formatAction(outcome.action) });
          if (outcome.action.kind === 'finish') return done('completed', outcome.action.answer);
          const action = outcome.action;
          answer = await acct.fhir(() => opts.env.execute(action, call));
        }
        history.push({ role: 'user', content: answer });
        messages.push({ role: 'tool', tool_call_id: call.id, content: answer });
      }
    }
  } catch (err) {
    return done('task error', { error: errorMessage(err) });
  }
  return done('task limit reached');
}
