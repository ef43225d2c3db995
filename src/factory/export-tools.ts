/**
 * Exports of tools corpora (`ehrgym generate --protocol tools`) in each trainer's documented tool-calling format
 * (docs/factory.md, "Tool corpora"), and their inverses (every export is read back and compared with the corpus).
 *
 * Formats × row modes (`tools` = the corpus's tool list, on every row):
 *  - openai       {messages, tools}: assistant turns `{role, tool_calls: [{id, type, function: {name, arguments}}], weight}`
 *                 (no content), answers `{role: tool, tool_call_id, content}`; per-turn: earlier assistant turns weight 0
 *  - trl          {messages, tools, chat_template_kwargs} / per-turn {prompt, completion, tools, chat_template_kwargs}:
 *                 assistant turns `{role, content: "", tool_calls}` with `arguments` as a JSON object (TRL's documented
 *                 tool-calling format; the object text is exactly what the chat template prints for the call)
 *  - axolotl      {messages, tools} (type chat_template, field_tools `tools`): `arguments` and each tool's `parameters` as
 *                 JSON strings (axolotl's documented way to keep heterogeneous objects through `datasets`); per-turn:
 *                 earlier assistant turns `train: false`
 *  - llamafactory {conversations, tools}: sharegpt with `function_call` (value `{"name": …, "arguments": {…}}`) and
 *                 `observation` turns, `tools` a JSON string; dataset_info maps `tools`; per-turn: prefixes (mask_history)
 * Assistant tool-call turns carry `content: ""` where a chat template reads the content (TRL, axolotl): the Qwen3
 * template renders an empty string exactly as vLLM renders the harness's `content: null`.
 */
import type { FunctionTool } from '../protocol/tools.js';
import { pyJsonDumps, pyJsonLoads, PyFloat } from '../tasks/pysem.js';
import { stableStringify } from './canonical.js';
import { assistantIndices, groupConversations, type ExportFormat, type RowMode } from './export.js';
import { callId, templateArguments } from './tools-rows.js';
import type { RowMeta, RowToolCall, ToolsMessage, ToolsRow } from './types.js';

type Json = Record<string, unknown>;

/** A JSON value written as the given text (an object whose number formatting must survive, e.g. `1.0`). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** `JSON.stringify` for trainer rows that may hold `RawJson` values (written as their text). */
export function jsonLine(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(jsonLine).join(',')}]`;
  if (value && typeof value === 'object') {
    const parts: string[] = [];
    for (const [k, v] of Object.entries(value as Json)) if (v !== undefined) parts.push(`${JSON.stringify(k)}:${jsonLine(v)}`);
    return `{${parts.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Parse one exported line with Python's number semantics (floats stay floats: `1.0` is not `1`). */
export function parseToolsLine(text: string): Json {
  const v = pyJsonLoads(text, { preserveFloats: true });
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('line is not a JSON object');
  return v as Json;
}

const THINKING_OFF = { enable_thinking: false } as const;

function call(m: ToolsMessage): RowToolCall {
  if (m.role !== 'assistant' || m.tool_calls.length !== 1) throw new Error('an assistant turn of a tools row carries one tool call');
  return m.tool_calls[0]!;
}

/** `{"name": …, "arguments": …}` as LLaMA-Factory's `function_call` value (arguments as the template prints them). */
function functionCallValue(c: RowToolCall): string {
  return `{"name": ${JSON.stringify(c.function.name)}, "arguments": ${templateArguments(c.function.arguments)}}`;
}

function openaiMessage(m: ToolsMessage, weight: number | undefined): Json {
  if (m.role === 'assistant') {
    const c = call(m);
    return {
      role: 'assistant',
      ...(m.content !== null && m.content !== '' ? { content: m.content } : {}),
      tool_calls: [{ id: c.id, type: 'function', function: { name: c.function.name, arguments: c.function.arguments } }],
      weight,
    };
  }
  if (m.role === 'tool') return { role: 'tool', tool_call_id: m.tool_call_id, content: m.content };
  return { role: 'user', content: m.content };
}

function trlMessage(m: ToolsMessage): Json {
  if (m.role === 'assistant') {
    const c = call(m);
    return {
      role: 'assistant',
      content: m.content ?? '',
      tool_calls: [{ id: c.id, type: 'function', function: { name: c.function.name, arguments: new RawJson(templateArguments(c.function.arguments)) } }],
    };
  }
  if (m.role === 'tool') return { role: 'tool', tool_call_id: m.tool_call_id, content: m.content };
  return { role: 'user', content: m.content };
}

function axolotlMessage(m: ToolsMessage, train: boolean | undefined): Json {
  if (m.role === 'assistant') {
    const c = call(m);
    return {
      role: 'assistant',
      content: m.content ?? '',
      tool_calls: [{ id: c.id, type: 'function', function: { name: c.function.name, arguments: c.function.arguments } }],
      ...(train === false ? { train: false } : {}),
    };
  }
  if (m.role === 'tool') return { role: 'tool', tool_call_id: m.tool_call_id, content: m.content };
  return { role: 'user', content: m.content };
}

function lfTurn(m: ToolsMessage): Json {
  if (m.role === 'assistant') return { from: 'function_call', value: functionCallValue(call(m)) };
  if (m.role === 'tool') return { from: 'observation', value: m.content };
  return { from: 'human', value: m.content };
}

/** axolotl's tools: each tool's `parameters` as a JSON string. */
function axolotlTools(tools: FunctionTool[]): Json[] {
  return tools.map((t) => ({
    type: t.type,
    function: { name: t.function.name, description: t.function.description, parameters: JSON.stringify(t.function.parameters) },
  }));
}

/**
 * One tools conversation as the trainer rows of `format` / `mode` (1 row, or 1 per assistant turn: the prefix that
 * ends with it). Values may be `RawJson`: write them with `jsonLine`.
 */
export function toToolsTrainerRows(messages: ToolsMessage[], tools: FunctionTool[], format: ExportFormat, mode: RowMode): Json[] {
  const ends = mode === 'trajectory' ? [messages.length - 1] : assistantIndices(messages);
  return ends.map((end) => {
    const prefix = messages.slice(0, end + 1);
    const trained = (i: number) => mode === 'trajectory' || i === end;
    switch (format) {
      case 'openai':
        return { messages: prefix.map((m, i) => openaiMessage(m, m.role === 'assistant' ? (trained(i) ? 1 : 0) : undefined)), tools };
      case 'trl':
        return mode === 'trajectory'
          ? { messages: prefix.map(trlMessage), tools, chat_template_kwargs: { ...THINKING_OFF } }
          : { prompt: prefix.slice(0, end).map(trlMessage), completion: [trlMessage(prefix[end]!)], tools, chat_template_kwargs: { ...THINKING_OFF } };
      case 'axolotl':
        return { messages: prefix.map((m, i) => axolotlMessage(m, m.role === 'assistant' && !trained(i) ? false : undefined)), tools: axolotlTools(tools) };
      case 'llamafactory':
        return { conversations: prefix.map(lfTurn), tools: JSON.stringify(tools) };
    }
  });
}

/** A value read back from a line as the JSON text of the arguments the template would print. */
function argumentsText(v: unknown, where: string): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof PyFloat)) return pyJsonDumps(v, { ensureAscii: false });
  throw new Error(`${where}: arguments must be a JSON object or its text`);
}

/** A conversation and its tools recovered from one trainer row. */
export interface ToolsTrainerRow {
  messages: ToolsMessage[];
  tools: FunctionTool[];
  /** Indices of the messages the row puts loss on (as the format's trainer reads them). */
  trained: number[];
}

/** Recover the conversation, the tools and the trained turns from one exported line; throws on a bad shape. */
export function fromToolsTrainerRow(row: Json, format: ExportFormat, mode: RowMode): ToolsTrainerRow {
  const bad = (why: string): never => {
    throw new Error(`${format}/${mode} tools row: ${why}`);
  };
  const list = (v: unknown, what: string): Json[] => (Array.isArray(v) ? (v as Json[]) : bad(`${what} missing`));
  const readCalls = (m: Json, i: number, objectArgs: boolean): RowToolCall[] => {
    const calls = list(m.tool_calls, `message ${i} tool_calls`);
    if (calls.length !== 1) bad(`message ${i} must carry one tool call`);
    return calls.map((c) => {
      const fn = c.function as Json | undefined;
      if (c.type !== 'function' || typeof c.id !== 'string' || !fn || typeof fn.name !== 'string') bad(`message ${i}: bad tool call`);
      if (objectArgs && typeof fn!.arguments === 'string') bad(`message ${i}: arguments must be a JSON object in this format`);
      if (!objectArgs && typeof fn!.arguments !== 'string') bad(`message ${i}: arguments must be a JSON string in this format`);
      return { id: c.id as string, type: 'function' as const, function: { name: fn!.name as string, arguments: argumentsText(fn!.arguments, `message ${i}`) } };
    });
  };
  const chat = (msgs: Json[], objectArgs: boolean, contentKey: 'empty' | 'absent'): ToolsMessage[] =>
    msgs.map((m, i): ToolsMessage => {
      if (m.role === 'user' && typeof m.content === 'string') return { role: 'user', content: m.content };
      if (m.role === 'tool' && typeof m.content === 'string' && typeof m.tool_call_id === 'string')
        return { role: 'tool', tool_call_id: m.tool_call_id, content: m.content };
      if (m.role === 'assistant') {
        if (contentKey === 'empty' && m.content !== '') bad(`message ${i}: an assistant tool-call turn has content "" in this format`);
        if (contentKey === 'absent' && 'content' in m) bad(`message ${i}: an assistant tool-call turn has no content in this format`);
        return { role: 'assistant', content: null, tool_calls: readCalls(m, i, objectArgs) };
      }
      return bad(`bad message ${JSON.stringify(m).slice(0, 80)}`);
    });
  const functionTools = (v: unknown, what: string): FunctionTool[] => {
    const tools = list(v, what);
    for (const t of tools) {
      const fn = t.function as Json | undefined;
      if (t.type !== 'function' || !fn || typeof fn.name !== 'string') bad(`${what}: not a list of function tools`);
    }
    return tools as unknown as FunctionTool[];
  };
  const assistants = (msgs: ToolsMessage[]) => assistantIndices(msgs);
  switch (format) {
    case 'openai': {
      const raw = list(row.messages, 'messages');
      const messages = chat(raw, false, 'absent');
      const trained: number[] = [];
      for (const i of assistants(messages)) {
        const w = raw[i]!.weight;
        const want = mode === 'trajectory' || i === messages.length - 1 ? 1 : 0;
        if (w !== want) bad(`assistant turn ${i} has weight ${String(w)}, expected ${want}`);
        if (w === 1) trained.push(i);
      }
      if ('meta' in row) bad('meta must not appear in OpenAI-format rows');
      return { messages, tools: functionTools(row.tools, 'tools'), trained };
    }
    case 'trl': {
      const kw = row.chat_template_kwargs as Json | undefined;
      if (!kw || kw.enable_thinking !== false) bad('chat_template_kwargs.enable_thinking must be false');
      const tools = functionTools(row.tools, 'tools');
      if (mode === 'trajectory') {
        const messages = chat(list(row.messages, 'messages'), true, 'empty');
        return { messages, tools, trained: assistants(messages) };
      }
      const prompt = chat(list(row.prompt, 'prompt'), true, 'empty');
      const completion = chat(list(row.completion, 'completion'), true, 'empty');
      if (completion.length !== 1 || completion[0]!.role !== 'assistant') bad('completion must be one assistant message');
      return { messages: [...prompt, ...completion], tools, trained: [prompt.length] };
    }
    case 'axolotl': {
      const raw = list(row.messages, 'messages');
      const messages = chat(raw, false, 'empty');
      const trained = assistants(messages).filter((i) => raw[i]!.train !== false);
      if (mode === 'per-turn')
        for (const i of assistants(messages)) {
          const t = raw[i]!.train;
          if (i === messages.length - 1 ? t !== undefined : t !== false) bad(`assistant turn ${i} has train=${String(t)}`);
        }
      const tools = list(row.tools, 'tools').map((t) => {
        const fn = t.function as Json | undefined;
        if (!fn || typeof fn.parameters !== 'string') bad('tools: each tool carries its parameters as a JSON string');
        return { ...t, function: { ...fn, parameters: JSON.parse(fn!.parameters as string) as unknown } };
      });
      return { messages, tools: functionTools(tools, 'tools'), trained };
    }
    case 'llamafactory': {
      const conv = list(row.conversations, 'conversations');
      if (typeof row.tools !== 'string') bad('tools must be a JSON string');
      let turn = 0;
      const messages = conv.map((t, i): ToolsMessage => {
        const odd = i % 2 === 0; // human / observation at odd positions (1-based), function_call at even ones
        if (typeof t.value !== 'string') bad(`turn ${i} has no string value`);
        const v = t.value as string;
        if (i === 0) return t.from === 'human' ? { role: 'user', content: v } : bad('turn 0 must be human');
        if (odd) return t.from === 'observation' ? { role: 'tool', tool_call_id: callId(turn), content: v } : bad(`turn ${i} must be observation`);
        if (t.from !== 'function_call') bad(`turn ${i} must be function_call`);
        const fc = pyJsonLoads(v, { preserveFloats: true }) as Json;
        if (!fc || typeof fc.name !== 'string' || !('arguments' in fc)) bad(`turn ${i}: function_call value is not {"name", "arguments"}`);
        turn++;
        return {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: callId(turn), type: 'function', function: { name: fc.name as string, arguments: argumentsText(fc.arguments, `turn ${i}`) } }],
        };
      });
      const tools = functionTools(JSON.parse(row.tools as string) as unknown, 'tools');
      // mask_history: true trains the last turn of every row (per-turn); trajectory rows train every function_call
      return { messages, tools, trained: mode === 'per-turn' ? [messages.length - 1] : assistants(messages) };
    }
  }
}

/** The first difference between two tools conversations (call arguments compared as the template prints them), or null. */
export function toolsConversationDiff(a: ToolsMessage[], b: ToolsMessage[]): string | null {
  if (a.length !== b.length) return `${a.length} messages, expected ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.role !== y.role) return `message ${i} has role ${x.role}, expected ${y.role}`;
    if (x.role === 'assistant' && y.role === 'assistant') {
      if ((x.content ?? '') !== (y.content ?? '')) return `message ${i}: content differs`;
      if (x.tool_calls.length !== y.tool_calls.length) return `message ${i}: number of tool calls differs`;
      for (let k = 0; k < x.tool_calls.length; k++) {
        const c = x.tool_calls[k]!;
        const d = y.tool_calls[k]!;
        if (c.id !== d.id || c.function.name !== d.function.name) return `message ${i}: tool call id or name differs`;
        if (templateArguments(c.function.arguments) !== templateArguments(d.function.arguments)) return `message ${i}: tool call arguments differ`;
      }
    } else if (x.content !== y.content) return `message ${i}: content differs`;
    else if (x.role === 'tool' && y.role === 'tool' && x.tool_call_id !== y.tool_call_id) return `message ${i}: tool_call_id differs`;
  }
  return null;
}

/** Export tools rows: trainer lines (text) in order plus the meta sidecar. */
export function exportToolsRows(rows: ToolsRow[], tools: FunctionTool[], format: ExportFormat, mode: RowMode): { lines: string[]; metas: RowMeta[] } {
  const lines: string[] = [];
  for (const r of rows) for (const x of toToolsTrainerRows(r.messages, tools, format, mode)) lines.push(jsonLine(x));
  return { lines, metas: rows.map((r) => r.meta) };
}

/**
 * Rebuild tools rows from exported lines + the meta sidecar (per-turn rows grouped as for text exports: a group starts
 * at a row with one assistant turn, each row is a prefix of the next). Throws when the structure does not match, or
 * a row's tools differ from `tools`.
 */
export function importToolsRows(lines: string[], metas: RowMeta[], tools: FunctionTool[], format: ExportFormat, mode: RowMode): ToolsRow[] {
  const want = stableStringify(tools);
  const convs = lines.map((l, i) => {
    const r = fromToolsTrainerRow(parseToolsLine(l), format, mode);
    if (stableStringify(r.tools) !== want) throw new Error(`line ${i + 1}: the row's tools differ from the corpus's tools`);
    return r.messages;
  });
  return groupConversations(convs, metas, mode, (row, full) => toolsConversationDiff(row, full.slice(0, row.length)));
}

/** LLaMA-Factory `dataset_info.json` for exported tools splits (sharegpt with the `tools` column). */
export function llamafactoryToolsDatasetInfo(splits: string[]): Json {
  const info: Json = {};
  for (const s of splits) {
    info[s === 'train' ? 'medagent_sft' : `medagent_sft_${s}`] = {
      file_name: `${s}.jsonl`,
      formatting: 'sharegpt',
      columns: { messages: 'conversations', tools: 'tools' },
    };
  }
  return info;
}
