/**
 * Rows of a `tools` corpus (`ehrgym generate --protocol tools`): the native transcript of a tools episode
 * (src/agent/tools-loop.ts) — the task as one user message (`renderToolsPrompt`), each assistant turn one tool call
 * (`actionToCall` of the expert's action, id `call_<turn>`, no text), each environment answer a `tool` message with
 * exactly the text the executed action answers (POSTs executed in the episode's session) — and what the factory
 * needs to hash, filter, render, check and re-execute them.
 *
 * Rendering: the Qwen3 chat template prints a call's arguments as `tojson` of the parsed object (vLLM parses the
 * `arguments` string of every assistant tool call before applying the template; trainers pass objects), i.e.
 * Python's `json.dumps(json.loads(arguments), ensure_ascii=False)`; an assistant message without text renders as
 * empty content (vLLM turns `content: null` into `""`). `templateMessages` is that view; `templateArguments` the
 * arguments text it prints.
 */
import { MEDAGENTBENCH_DIALECT, type Dialect, taskDialect } from '../protocol/dialect.js';
import type { Action } from '../protocol/action.js';
import {
  formatAction,
  GET_ERROR_PREFIX,
  GET_OK_PREFIX,
  GET_OK_SUFFIX,
  POST_ACCEPTED_PREFIX,
  POST_ERROR_PREFIX,
  POST_INVALID,
  PUT_ACCEPTED_PREFIX,
  PUT_ERROR_PREFIX,
  PUT_INVALID,
} from '../protocol/text.js';
import { callToAction, FINISH_TOOL, functionTools, renderToolsPrompt, type FunctionTool } from '../protocol/tools.js';
import { pyJsonDumps, pyJsonLoads } from '../tasks/pysem.js';
import type { HistoryItem, TaskCase, ChatMessage as TranscriptMessage } from '../tasks/types.js';
import { sha256, stableStringify } from './canonical.js';
import { createHash } from 'node:crypto';
import type { ChatMessage, RowToolCall, ToolsMessage, ToolsRow } from './types.js';

/** The file of a tools corpus (and of its exports where the format keeps the tools beside the rows) holding the tool list. */
export const TOOLS_FILE = 'tools.json';

/** The tools of a tools corpus: the harness's `tools=[…]` (funcs_v1.json's functions and `finish`, src/protocol/tools.ts). */
export function corpusTools(dialect: Dialect = MEDAGENTBENCH_DIALECT): FunctionTool[] {
  // a corpus of clinical-suite rows lists the ehrgym dialect's tools (PUT updates included)
  return functionTools(dialect);
}

/** The text of `tools.json` (pretty JSON, one trailing newline). */
export function toolsFileText(tools: FunctionTool[] = corpusTools()): string {
  return JSON.stringify(tools, null, 2) + '\n';
}

/** sha256 of the tool list (its compact JSON with sorted keys). */
export function toolsSha256(tools: unknown[] = corpusTools()): string {
  return sha256(stableStringify(tools));
}

/** The deterministic id of the tool call of assistant turn `turn` (1-based), as the scripted agents write it. */
export function callId(turn: number): string {
  return `call_${turn}`;
}

/**
 * What the Qwen3 chat template prints for a call's arguments: Python `json.dumps(json.loads(text), ensure_ascii=False)`
 * (floats kept as Python floats). Throws when the text is not JSON.
 */
export function templateArguments(text: string): string {
  return pyJsonDumps(pyJsonLoads(text, { preserveFloats: true }), { ensureAscii: false });
}

/** The text the Qwen3 template renders for a tool call (the trained text of a tools turn, before `<|im_end|>`). */
export function toolCallText(call: { name: string; arguments: string }): string {
  return `<tool_call>\n{"name": "${call.name}", "arguments": ${templateArguments(call.arguments)}}\n</tool_call>`;
}

/** A message as the chat template receives it. */
export type TemplateMessage =
  | { role: 'user' | 'system'; content: string }
  | { role: 'assistant'; content: string; tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }> }
  | { role: 'tool'; tool_call_id: string; content: string };

/**
 * Messages of the OpenAI Chat Completions format as the chat template receives them from vLLM (and, for exported
 * rows, from a trainer): `content: null` → `""`, each call's arguments as the text `tojson` prints for the parsed
 * object (passed as a string, which the template prints as it is).
 */
export function templateMessages(messages: ReadonlyArray<ToolsMessage | TranscriptMessage>): TemplateMessage[] {
  return messages.map((m): TemplateMessage => {
    if (m.role === 'assistant') {
      const calls = m.tool_calls ?? [];
      const out: TemplateMessage = { role: 'assistant', content: m.content ?? '' };
      if (calls.length > 0)
        out.tool_calls = calls.map((c) => ({
          id: c.id,
          type: 'function',
          function: { name: c.function.name, arguments: templateArguments(c.function.arguments) },
        }));
      return out;
    }
    if (m.role === 'tool') return { role: 'tool', tool_call_id: m.tool_call_id, content: m.content };
    return { role: m.role, content: m.content };
  });
}

/** One row message with keys in a fixed order (as written to the corpus files). */
export function orderedMessage(m: ToolsMessage): ToolsMessage {
  if (m.role === 'assistant')
    return {
      role: 'assistant',
      content: m.content,
      tool_calls: m.tool_calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.function.name, arguments: c.function.arguments } })),
    };
  if (m.role === 'tool') return { role: 'tool', tool_call_id: m.tool_call_id, content: m.content };
  return { role: 'user', content: m.content };
}

/** A tools row as one JSONL line (messages first, then meta). */
export function toolsRowToLine(row: ToolsRow): string {
  return JSON.stringify({ messages: row.messages.map(orderedMessage), meta: row.meta });
}

/**
 * sha256 over the normalized tools conversation: role and, per turn, the user / tool text as it is (the harness's own
 * bytes) or each call's name and template arguments (so the JSON formatting of the arguments does not make two identical
 * demonstrations look different).
 */
export function toolsContentHash(messages: ToolsMessage[]): string {
  const h = createHash('sha256');
  for (const m of messages) {
    h.update(m.role);
    h.update('\u0000');
    if (m.role === 'assistant') {
      for (const c of m.tool_calls) {
        h.update(c.function.name);
        h.update('\u0002');
        h.update(templateArguments(c.function.arguments));
        h.update('\u0003');
      }
      h.update(m.content ?? '');
    } else h.update(m.content);
    h.update('\u0001');
  }
  return h.digest('hex');
}

/**
 * The conversation as user/assistant text turns, for the filters that read text (pollution): tool answers as user
 * turns, each call as `name arguments`.
 */
export function textView(messages: ToolsMessage[]): ChatMessage[] {
  return messages.map((m) =>
    m.role === 'assistant'
      ? {
          role: 'assistant',
          content: [m.content ?? '', ...m.tool_calls.map((c) => `${c.function.name} ${c.function.arguments}`)].filter((s) => s !== '').join('\n'),
        }
      : { role: 'user', content: m.content },
  );
}

/** The call of each assistant turn, in order. */
export function rowCalls(messages: ToolsMessage[]): RowToolCall[] {
  return messages.flatMap((m) => (m.role === 'assistant' ? m.tool_calls : []));
}

/** Validate the shape of a tools row read from disk; returns a reason string or null. */
export function checkToolsRowShape(row: unknown): string | null {
  if (!row || typeof row !== 'object') return 'row is not an object';
  const r = row as Partial<ToolsRow>;
  if (!Array.isArray(r.messages) || r.messages.length < 2) return 'messages missing or too short';
  let turn = 0;
  for (const [i, m] of (r.messages as unknown[]).entries()) {
    const x = m as Record<string, unknown>;
    const want = i === 0 ? 'user' : i % 2 === 1 ? 'assistant' : 'tool';
    if (!x || x.role !== want) return `message ${i} is not a ${want} message`;
    if (want === 'user' && typeof x.content !== 'string') return 'message 0 has no text content';
    if (want === 'assistant') {
      turn++;
      const calls = x.tool_calls as RowToolCall[] | undefined;
      if (x.content !== null && typeof x.content !== 'string') return `message ${i}: content must be a string or null`;
      if (!Array.isArray(calls) || calls.length !== 1) return `message ${i}: an assistant turn carries exactly one tool call`;
      const c = calls[0]!;
      if (!c || c.type !== 'function' || typeof c.id !== 'string' || typeof c.function?.name !== 'string' || typeof c.function?.arguments !== 'string')
        return `message ${i}: the tool call is not {id, type: function, function: {name, arguments}}`;
      if (c.id !== callId(turn)) return `message ${i}: tool call id ${JSON.stringify(c.id)}, expected ${callId(turn)}`;
    }
    if (want === 'tool') {
      const prev = (r.messages[i - 1] as { tool_calls?: RowToolCall[] }).tool_calls?.[0];
      if (typeof x.content !== 'string' || x.tool_call_id !== prev?.id)
        return `message ${i}: a tool message answers the call before it (tool_call_id, content)`;
    }
  }
  if (r.messages[r.messages.length - 1]!.role !== 'assistant') return 'last message is not an assistant turn';
  if (!r.meta || typeof r.meta !== 'object') return 'meta missing';
  if (r.meta.protocol !== 'tools') return 'meta.protocol is not "tools"';
  if (typeof r.meta.task_family !== 'string' || !r.meta.task) return 'meta.task_family / meta.task missing';
  return null;
}

/** The action of each call (throws on a call that maps to none). */
export function rowActions(messages: ToolsMessage[], apiBase: string, dialect: Dialect = MEDAGENTBENCH_DIALECT): Array<Exclude<Action, { kind: 'invalid' }>> {
  return rowCalls(messages).map((c) => {
    const o = callToAction(c.function.name, c.function.arguments, apiBase, dialect);
    if (!o.ok) throw new Error(`tool call ${c.id} maps to no action: ${o.error}`);
    return o.action;
  });
}

/** The text-protocol history of a tools conversation (what `runToolsEpisode` records beside it; the graders read it). */
export function textHistory(messages: ToolsMessage[], apiBase: string, dialect: Dialect = MEDAGENTBENCH_DIALECT): HistoryItem[] {
  const actions = rowActions(messages, apiBase, dialect);
  const out: HistoryItem[] = [{ role: 'user', content: messages[0]!.content as string }];
  let k = 0;
  for (const m of messages.slice(1)) {
    if (m.role === 'assistant') out.push({ role: 'agent', content: formatAction(actions[k++]!) });
    else out.push({ role: 'user', content: m.content as string });
  }
  return out;
}

export interface ToolsParityIssue {
  turn: number;
  problem: string;
}

export interface ToolsParityOptions {
  apiBase: string;
  /** The actions the row must perform, one per assistant turn (e.g. the graded episode's). */
  expected?: Array<Exclude<Action, { kind: 'invalid' }>>;
  /** Re-executes an action in a fresh copy of the episode's session and returns its answer (byte comparison). */
  answer?: (action: Extract<Action, { kind: 'get' | 'post' | 'put' }>) => Promise<string>;
}

/**
 * Check one tools conversation against the tools protocol: the first message is the tools prompt of the task; each
 * assistant turn is one call that maps to an action (`callToAction`) — GET/POST but the last, `finish` the last —
 * with the deterministic id; each tool message answers that call; with `answer`, its text is byte-identical to what
 * the action answers when executed again in order, else it has the harness's framing. Empty = parity holds.
 */
export async function checkToolsParity(messages: ToolsMessage[], task: TaskCase, opts: ToolsParityOptions): Promise<ToolsParityIssue[]> {
  const issues: ToolsParityIssue[] = [];
  const shape = checkToolsRowShape({ messages, meta: { protocol: 'tools', task_family: 'x', task } });
  if (shape) return [{ turn: 0, problem: shape }];
  if (messages[0]!.content !== renderToolsPrompt(task)) issues.push({ turn: 0, problem: 'first user turn differs from the tools prompt for this task' });
  const last = messages.length - 1;
  let a = 0;
  let prev: Exclude<Action, { kind: 'invalid' }> | null = null;
  for (let i = 1; i < messages.length; i++) {
    const m = messages[i]!;
    if (m.role === 'assistant') {
      const c = m.tool_calls[0]!;
      const o = callToAction(c.function.name, c.function.arguments, opts.apiBase, taskDialect(task));
      prev = null;
      if (!o.ok) issues.push({ turn: i, problem: `tool call maps to no action (${o.error})` });
      else {
        prev = o.action;
        if (i === last && o.action.kind !== 'finish') issues.push({ turn: i, problem: `last assistant turn is not ${FINISH_TOOL}` });
        if (i !== last && o.action.kind === 'finish') issues.push({ turn: i, problem: `${FINISH_TOOL} before the last turn` });
        const want = opts.expected?.[a];
        if (opts.expected && (!want || formatAction(want) !== formatAction(o.action)))
          issues.push({ turn: i, problem: 'tool call performs a different action than the one recorded' });
      }
      if (m.content !== null && m.content !== '') issues.push({ turn: i, problem: 'assistant tool-call turn carries text' });
      a++;
      continue;
    }
    const text = m.content as string;
    if (!prev || prev.kind === 'finish') {
      issues.push({ turn: i, problem: 'tool message follows a call that maps to no GET or POST' });
      continue;
    }
    if (opts.answer) {
      const want = await opts.answer(prev);
      if (text !== want) issues.push({ turn: i, problem: `tool answer is not byte-identical to what ${prev.kind.toUpperCase()} ${prev.url} answers` });
    } else if (prev.kind === 'get') {
      const ok = (text.startsWith(GET_OK_PREFIX) && text.endsWith(GET_OK_SUFFIX)) || text.startsWith(GET_ERROR_PREFIX);
      if (!ok) issues.push({ turn: i, problem: 'GET answer does not have the harness framing' });
    } else if (prev.kind === 'put') {
      if (!(text.startsWith(PUT_ACCEPTED_PREFIX) || text === PUT_INVALID || text.startsWith(PUT_ERROR_PREFIX)))
        issues.push({ turn: i, problem: 'PUT answer does not have the harness framing' });
    } else if (!(text.startsWith(POST_ACCEPTED_PREFIX) || text === POST_INVALID || text.startsWith(POST_ERROR_PREFIX))) {
      issues.push({ turn: i, problem: 'POST answer does not have the harness framing' });
    }
  }
  if (opts.expected && a !== opts.expected.length) issues.push({ turn: last, problem: `row has ${a} assistant turns, recorded ${opts.expected.length}` });
  return issues;
}
