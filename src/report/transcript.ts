/**
 * The native transcript of a `tools` / `mcp` episode (`output.messages`, OpenAI Chat Completions messages) aligned
 * with the text-protocol history rebuilt from it (`output.history`, src/agent/tools-loop.ts), for display and counts.
 *
 * The episode loop writes, for every tool call of a reply in order, one history item for the call (the action's text
 * reply, or `TOOL_CALL <name> <arguments>` for a tool error) and one for the answer (also sent as the call's `tool`
 * message); `finish` ends the episode without an answer, and calls after it in the same reply are not executed. A
 * reply without tool calls is one history item (its text) and ends the episode. The alignment walks both records in
 * that order and checks every pairing; a file that does not follow it (edited, truncated) is shown from the messages
 * alone, without history indices. Pure functions; no I/O.
 */
import type { Protocol } from '../protocol/action.js';
import { RECOVERED_CALL_ID_PREFIX, TOOL_ERROR_PREFIX, toolErrorTurn, toolNames, toolSpecs } from '../protocol/tools.js';
import type { ChatMessage, TaskOutput } from '../tasks/types.js';
import { parseAction } from './history.js';

/** What a tool call did: the action it mapped to, a tool error, or nothing (it followed `finish` in its reply). */
export type ToolCallKind = 'GET' | 'POST' | 'PUT' | 'FINISH' | 'tool-error' | 'not-executed';

/** Why a tool call was answered with a tool error. */
export type ToolErrorKind = 'unknown tool' | 'bad arguments';

export interface ToolCallView {
  id: string;
  /** The tool name as the model wrote it. */
  name: string;
  /** The arguments text as the model sent it. */
  arguments: string;
  /** The arguments pretty-printed (2-space indent; numbers, strings and key order as sent), or as sent when not JSON. */
  pretty: string;
  /** Whether the arguments are JSON. */
  json: boolean;
  kind: ToolCallKind;
  /** tool-error: a tool that does not exist, or arguments a known tool cannot use. */
  error?: ToolErrorKind;
  /** Read from `<tool_call>` text in the reply (runs made with `--recover-tool-text`). */
  recovered: boolean;
  /** The history item recording the call (its text-protocol form), when aligned. */
  turn?: number;
  /** GET / POST / FINISH: the action's text-protocol reply as the history records it (what the grader reads). */
  action?: string;
  /** What the environment answered (the `tool` message); absent for `finish` and calls not executed. */
  result?: string;
  /** The history item holding the answer, when aligned. */
  resultIndex?: number;
}

/** One assistant reply of the transcript. */
export interface AssistantTurn {
  /** Index of the reply in `messages`. */
  message: number;
  /** The reply's text: beside its tool calls, or the whole reply when it made none. */
  content: string | null;
  calls: ToolCallView[];
  /** A reply without tool calls: the history item recording its text, when aligned. */
  turn?: number;
}

export interface ToolTranscript {
  /** The opening user message (history item 0). */
  prompt: string | null;
  turns: AssistantTurn[];
  /** Every call and reply matched to its history items (false: indices are omitted). */
  aligned: boolean;
}

/** The protocol of a run from its manifest's `protocol` (absent in folders made before protocols were a choice: text). */
export function protocolOf(manifest: { protocol?: unknown } | undefined): Protocol {
  const p = manifest?.protocol;
  return p === 'tools' || p === 'mcp' ? p : 'text';
}

const JSON_SPACE = new Set([' ', '\t', '\n', '\r']);

/**
 * JSON text re-indented with 2 spaces, every token kept as written (so `1.0`, `1e3`, escapes, key order and repeated
 * keys show as the model sent them); undefined when the text is not JSON.
 */
export function prettyJsonText(text: string): string | undefined {
  try {
    JSON.parse(text);
  } catch {
    return undefined;
  }
  let out = '';
  let depth = 0;
  const nl = (): string => `\n${'  '.repeat(depth)}`;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (JSON_SPACE.has(ch)) i++;
    else if (ch === '{' || ch === '[') {
      let j = i + 1;
      while (j < text.length && JSON_SPACE.has(text[j]!)) j++;
      const close = ch === '{' ? '}' : ']';
      if (text[j] === close) {
        out += ch + close;
        i = j + 1;
      } else {
        depth++;
        out += ch + nl();
        i++;
      }
    } else if (ch === '}' || ch === ']') {
      depth--;
      out += nl() + ch;
      i++;
    } else if (ch === ',') {
      out += `,${nl()}`;
      i++;
    } else if (ch === ':') {
      out += ': ';
      i++;
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}

/** Why a tool call that mapped to no action failed: its tool does not exist, or its arguments do not fit the tool. */
export function toolErrorKind(name: string): ToolErrorKind {
  return toolNames().includes(name) ? 'bad arguments' : 'unknown tool';
}

/** The action kind a tool maps to (when the history cannot say). */
function specKind(name: string): ToolCallKind | undefined {
  return toolSpecs().find((s) => s.name === name)?.method;
}

function callView(call: { id: string; function: { name: string; arguments: string } }): ToolCallView {
  const name = String(call.function?.name ?? '');
  const args = typeof call.function?.arguments === 'string' ? call.function.arguments : JSON.stringify(call.function?.arguments ?? null);
  const pretty = prettyJsonText(args);
  return {
    id: String(call.id ?? ''),
    name,
    arguments: args,
    pretty: pretty ?? args,
    json: pretty !== undefined,
    kind: 'not-executed',
    recovered: String(call.id ?? '').startsWith(RECOVERED_CALL_ID_PREFIX),
  };
}

const isAssistant = (m: ChatMessage): m is Extract<ChatMessage, { role: 'assistant' }> => !!m && m.role === 'assistant';

/**
 * The transcript of a `tools` / `mcp` episode aligned with its history; undefined for an episode without a native
 * transcript (the text protocol, or a runs line that lost it).
 */
export function toolTranscript(output: TaskOutput): ToolTranscript | undefined {
  const messages = output.messages;
  if (!Array.isArray(messages)) return undefined;
  const history = output.history ?? [];
  const first = messages.find((m) => m && m.role === 'user');
  const prompt = first && typeof first.content === 'string' ? first.content : null;
  let h = history[0]?.role === 'user' ? 1 : 0;
  let aligned = true;
  const turns: AssistantTurn[] = [];
  messages.forEach((m, i) => {
    if (!isAssistant(m)) return;
    const results = new Map<string, string>();
    for (let k = i + 1; k < messages.length && !isAssistant(messages[k]!); k++) {
      const t = messages[k]!;
      if (t.role === 'tool' && !results.has(t.tool_call_id)) results.set(t.tool_call_id, t.content);
    }
    const content = typeof m.content === 'string' ? m.content : null;
    const turn: AssistantTurn = { message: i, content, calls: [] };
    const calls = Array.isArray(m.tool_calls) ? m.tool_calls : [];
    if (calls.length === 0) {
      const item = history[h];
      if (item?.role === 'agent' && item.content === (content ?? '')) turn.turn = h++;
      else aligned = false;
    }
    for (const c of calls) {
      const v = callView(c);
      const result = results.get(v.id);
      if (result !== undefined) v.result = result;
      const item = history[h];
      if (item !== undefined && aligned) {
        if (item.role !== 'agent') aligned = false;
        else {
          v.turn = h++;
          if (item.content === toolErrorTurn(v.name, v.arguments) && result?.startsWith(TOOL_ERROR_PREFIX)) v.kind = 'tool-error';
          else {
            // a tool call's history item is the formatted action it executed: a PUT only exists in the ehrgym dialect
            // (suite tasks), so reading PUT as an action cannot misread a MedAgentBench episode
            const kind = parseAction(item.content, { put: true }).kind;
            if (kind === 'invalid') aligned = false;
            else {
              v.kind = kind;
              v.action = item.content;
            }
          }
          if (result !== undefined) {
            const answer = history[h];
            if (answer?.role === 'user' && answer.content === result) v.resultIndex = h++;
            else aligned = false;
          }
        }
      } else if (result !== undefined) aligned = false; // answered, but the history has no item for it
      turn.calls.push(v);
    }
    turns.push(turn);
  });
  if (h !== history.length) aligned = false;
  if (!aligned) {
    // shown from the messages alone: kinds from the tool set and the answers, no history indices
    for (const t of turns) {
      delete t.turn;
      for (const v of t.calls) {
        delete v.turn;
        delete v.action;
        delete v.resultIndex;
        v.kind = v.result?.startsWith(TOOL_ERROR_PREFIX)
          ? 'tool-error'
          : v.result !== undefined
            ? (specKind(v.name) ?? 'tool-error')
            : v.name === 'finish'
              ? 'FINISH'
              : 'not-executed';
      }
    }
  }
  for (const t of turns) for (const v of t.calls) if (v.kind === 'tool-error') v.error = toolErrorKind(v.name);
  return { prompt, turns, aligned };
}

/** The highest history index an assistant turn covers (-1 when it has none). */
export function lastIndexOf(turn: AssistantTurn): number {
  let max = turn.turn ?? -1;
  for (const c of turn.calls) max = Math.max(max, c.turn ?? -1, c.resultIndex ?? -1);
  return max;
}

/** How a run used the tools: counted over its episodes' transcripts. */
export interface ToolUsage {
  /** Episodes with a native transcript. */
  episodes: number;
  /** Tool calls the model made (executed, answered with a tool error, or not executed after `finish`). */
  calls: number;
  /** Replies with at least one tool call. */
  callReplies: number;
  /** Replies with more than one tool call. */
  parallelReplies: number;
  /** Replies with text beside their tool calls. */
  textBesideCalls: number;
  /** Replies without any tool call (each ends its episode). */
  textReplies: number;
  /** Tool errors for a tool that does not exist: calls, and episodes with any. */
  unknownTool: { calls: number; episodes: number };
  /** Tool errors for arguments a tool cannot use (not a JSON object, a bad type, `finish` without `answer`). */
  badArguments: { calls: number; episodes: number };
  /** Calls after `finish` in the same reply (not executed). */
  notExecuted: number;
  /** Tool calls read from `<tool_call>` text (`recoveredToolCalls`), and episodes with any. */
  recovered: { calls: number; episodes: number };
  /** The run was made with `--recover-tool-text`. */
  recoverToolText: boolean;
}

export function toolUsage(outputs: TaskOutput[], recoverToolText: boolean): ToolUsage {
  const u: ToolUsage = {
    episodes: 0,
    calls: 0,
    callReplies: 0,
    parallelReplies: 0,
    textBesideCalls: 0,
    textReplies: 0,
    unknownTool: { calls: 0, episodes: 0 },
    badArguments: { calls: 0, episodes: 0 },
    notExecuted: 0,
    recovered: { calls: 0, episodes: 0 },
    recoverToolText,
  };
  for (const o of outputs) {
    const tr = toolTranscript(o);
    if (!tr) continue;
    u.episodes++;
    let unknown = 0;
    let bad = 0;
    for (const t of tr.turns) {
      if (t.calls.length === 0) {
        u.textReplies++;
        continue;
      }
      u.calls += t.calls.length;
      u.callReplies++;
      if (t.calls.length > 1) u.parallelReplies++;
      if (t.content !== null && t.content.trim() !== '') u.textBesideCalls++;
      for (const c of t.calls) {
        if (c.error === 'unknown tool') unknown++;
        else if (c.error === 'bad arguments') bad++;
        else if (c.kind === 'not-executed') u.notExecuted++;
      }
    }
    u.unknownTool.calls += unknown;
    u.badArguments.calls += bad;
    if (unknown > 0) u.unknownTool.episodes++;
    if (bad > 0) u.badArguments.episodes++;
    const rec = typeof o.recoveredToolCalls === 'number' ? o.recoveredToolCalls : 0;
    u.recovered.calls += rec;
    if (rec > 0) u.recovered.episodes++;
  }
  return u;
}
