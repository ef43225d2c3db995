/**
 * The `tools` protocol: MedAgentBench's functions as OpenAI function-calling tools (and MCP tools, src/protocol/mcp.ts),
 * mapped one to one onto the canonical actions of the text protocol (src/protocol/action.ts), so that a tool call
 * and the text reply for the same action are executed, answered and graded identically. The one home of the tool
 * names, schemas, argument rules and tool-error texts (docs/eval.md, "Protocols").
 *
 * Tools: one per function of the official `funcs_v1.json`, in its order, its `description` and JSON Schema
 * `parameters` kept as they are (hyphenated names such as `address-city` included), named
 * `<resource>_<search|create>` in snake case (`GET {api_base}/Observation` twice: `_labs` and `_vitals` from the
 * descriptions' `(Labs)` / `(Vitals)`), then `finish` with the answer list as one array argument `answer`.
 *
 * Calls → actions:
 *   - a search tool → `get`: `{api_base}<Resource>?k1=v1&k2=v2…` with the arguments in the order the model wrote
 *     them; strings as written except that characters that would break the query (space, `&`, `=`, `#`, `?`, `%`, `+`,
 *     non-ASCII…) are percent-encoded; numbers and booleans as JSON text; a list repeats its key (FHIR's AND);
 *     `null` omits the key. Arguments beyond the schema (`_count`, `_sort`, `date`…) pass through like any other.
 *   - a create tool → `post` to `{api_base}<Resource>` whose body is the arguments text exactly as the model sent it
 *     (not valid JSON → the text protocol's `Invalid POST request`).
 *   - `finish` → `finish` whose answer is `json.dumps(arguments["answer"])` (Python `json.dumps`, floats kept).
 *   - anything else → a tool error (`TOOL_ERROR_PREFIX`…): an observation the model can recover from.
 */
import type { Action } from './action.js';
import { MEDAGENTBENCH_DIALECT, dialectFunctionsText, type Dialect } from './dialect.js';
import { PyException, PyFloat, pyJsonDumps, pyJsonLoads } from '../tasks/pysem.js';

/** An OpenAI Chat Completions function tool (`tools=[…]`). */
export interface FunctionTool {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

/** One tool: its OpenAI definition plus what it maps to. */
export interface ToolSpec {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
  /** The official function name (`GET {api_base}/Observation`), or `finish`. */
  official: string;
  /** `PUT`: the `ehrgym` dialect's updates (`PUT {api_base}/<Type>/{id}`). */
  method: 'GET' | 'POST' | 'PUT' | 'FINISH';
  /** FHIR resource type (GET/POST/PUT). */
  resource?: string;
}

export const FINISH_TOOL = 'finish';
/** The name of `finish`'s one argument. */
export const FINISH_ARG = 'answer';

/** What a tool error observation starts with (recoverable: the episode goes on). */
export const TOOL_ERROR_PREFIX = 'Error in the tool call: ';

/** The exact text of a dialect's functions (MedAgentBench: `funcs_v1.json`, 12,571 bytes, one line, no trailing newline). */
export function functionsText(dialect: Dialect = MEDAGENTBENCH_DIALECT): string {
  return dialectFunctionsText(dialect);
}

/**
 * The one user message that opens a `tools` / `mcp` episode: the official prompt's first paragraph, the tool-call
 * rules in place of the text formats (the functions travel as `tools`, not in the text), then the task's context and
 * question as the official prompt ends.
 */
export const TOOLS_PROMPT_TEMPLATE =
  'You are an expert in using FHIR functions to assist medical professionals. You are given a question and a set of possible functions. Based on the question, you will need to make one or more function/tool calls to achieve the purpose.\n' +
  '\n' +
  'Call the functions you are given as tools. If you have got answers for all the questions and finished all the requested tasks, you MUST call finish with the list of answers (make sure the list is JSON loadable).\n' +
  '\n' +
  'Context: {context}\n' +
  'Question: {question}';

/** The first user message of a `tools` / `mcp` episode (single substitution, values never re-scanned). */
export function renderToolsPrompt(task: { context: string; instruction: string }): string {
  return TOOLS_PROMPT_TEMPLATE.replace(/\{(context|question)\}/g, (_m, k: string) => (k === 'context' ? task.context : task.instruction));
}

/** The text-history agent turn recorded for a tool call that maps to no action (a tool error). */
export function toolErrorTurn(name: string, argsText: string): string {
  return `TOOL_CALL ${name} ${argsText}`;
}

const FINISH_SPEC: ToolSpec = {
  name: FINISH_TOOL,
  official: 'FINISH',
  method: 'FINISH',
  description:
    'Finish the conversation once you have got answers for all the questions and finished all the requested tasks. The answer is the list the question asks for (e.g. [answer1, answer2, ...]); an empty list when there is nothing to report.',
  parameters: {
    type: 'object',
    properties: { [FINISH_ARG]: { type: 'array', description: 'The answers, in the order the question asks for them.', items: {} } },
    required: [FINISH_ARG],
  },
};

function snake(resource: string): string {
  return resource.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

const specsCache = new Map<string, ToolSpec[]>();

/**
 * A dialect's tool set, in order: its functions (MedAgentBench: the nine of funcs_v1.json), then `finish`. Names are
 * `<resource>_search` / `_create` / `_update` (GET / POST / PUT).
 */
export function toolSpecs(dialect: Dialect = MEDAGENTBENCH_DIALECT): readonly ToolSpec[] {
  const cached = specsCache.get(dialect.name);
  if (cached) return cached;
  const file = dialect.functionsFile.join('/');
  const funcs = JSON.parse(functionsText(dialect)) as Array<{ name: string; description: string; parameters: Record<string, unknown> }>;
  // method and resource (`PUT {api_base}/Slot/{id}` → `PUT Slot`)
  const key = (f: { name: string }) => f.name.split(' ')[0] + ' ' + (/\{api_base\}\/([A-Za-z]+)/.exec(f.name)?.[1] ?? f.name);
  const counts = new Map<string, number>();
  for (const f of funcs) counts.set(key(f), (counts.get(key(f)) ?? 0) + 1);
  const specs: ToolSpec[] = funcs.map((f) => {
    const m = /^(GET|POST) \{api_base\}\/([A-Za-z]+)$|^(PUT) \{api_base\}\/([A-Za-z]+)\/\{id\}$/.exec(f.name);
    if (!m || (m[3] && !dialect.put)) throw new Error(`${file}: unexpected function name ${JSON.stringify(f.name)}`);
    const method = (m[1] ?? m[3]) as 'GET' | 'POST' | 'PUT';
    const resource = (m[2] ?? m[4])!;
    let name = `${snake(resource)}_${method === 'GET' ? 'search' : method === 'POST' ? 'create' : 'update'}`;
    if ((counts.get(key(f)) ?? 0) > 1) {
      const label = /^\S+ \(([^)]+)\)/.exec(f.description)?.[1];
      if (!label) throw new Error(`${file}: cannot tell apart the functions named ${f.name}`);
      name += `_${label.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`;
    }
    return { name, description: f.description, parameters: f.parameters, official: f.name, method, resource };
  });
  specs.push(FINISH_SPEC);
  const valid = /^[a-zA-Z0-9_-]{1,64}$/;
  for (const s of specs) if (!valid.test(s.name)) throw new Error(`tool name ${s.name} is not valid for OpenAI`);
  if (new Set(specs.map((s) => s.name)).size !== specs.length) throw new Error('tool names are not unique');
  specsCache.set(dialect.name, specs);
  return specs;
}

/** The tools as OpenAI Chat Completions `tools=[…]` entries. */
export function functionTools(dialect: Dialect = MEDAGENTBENCH_DIALECT): FunctionTool[] {
  return toolSpecs(dialect).map((s) => ({ type: 'function', function: { name: s.name, description: s.description, parameters: s.parameters } }));
}

export function toolNames(dialect: Dialect = MEDAGENTBENCH_DIALECT): string[] {
  return toolSpecs(dialect).map((s) => s.name);
}

function specByName(name: string, dialect: Dialect): ToolSpec | undefined {
  return toolSpecs(dialect).find((s) => s.name === name);
}

// ---------------------------------------------------------------------------------------------------------------
// Calls → actions

/** A tool call resolved: an action to execute, or an error observation (the episode goes on). */
export type CallOutcome = { ok: true; action: Exclude<Action, { kind: 'invalid' }> } | { ok: false; error: string };

/** The error observation text for a call that maps to no action. */
export function toolErrorText(message: string): string {
  return TOOL_ERROR_PREFIX + message;
}

const KEEP = new Map([
  ['%3A', ':'],
  ['%2F', '/'],
  ['%2C', ','],
  ['%40', '@'],
  ['%7C', '|'],
  ['%24', '$'],
  ['%3B', ';'],
]);

/**
 * A query key or value as a text agent writes it: percent-encoded only where it would break the query. `+` is encoded
 * (`%2B`): in a query a raw `+` reads as a space, so a time zone offset such as `+00:00` would not reach the server.
 */
export function encodeQueryPart(s: string): string {
  return encodeURIComponent(s).replace(/%(3A|2F|2C|40|7C|24|3B)/g, (m) => KEEP.get(m)!);
}

function describeJsonError(e: unknown): string {
  if (e instanceof PyException) return e.message;
  return e instanceof Error ? e.message : String(e);
}

/** Parse a tool call's arguments text as a JSON object (floats kept as Python floats). */
function parseArguments(name: string, argsText: string): { ok: true; args: Record<string, unknown> } | { ok: false; error: string } {
  let v: unknown;
  try {
    v = pyJsonLoads(argsText.trim() === '' ? '{}' : argsText, { preserveFloats: true });
  } catch (e) {
    return { ok: false, error: `the arguments of ${name} are not valid JSON (${describeJsonError(e)})` };
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return { ok: false, error: `the arguments of ${name} must be a JSON object` };
  return { ok: true, args: v as Record<string, unknown> };
}

function scalarText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean' || typeof v === 'bigint' || typeof v === 'number') return String(v);
  if (v instanceof PyFloat) return pyJsonDumps(v);
  return undefined;
}

/** The GET URL of a search tool's arguments, or an error. */
export function searchUrl(
  apiBase: string,
  resource: string,
  name: string,
  args: Record<string, unknown>,
): { ok: true; url: string } | { ok: false; error: string } {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(args)) {
    if (v === null || v === undefined) continue;
    const values = Array.isArray(v) ? v : [v];
    for (const item of values) {
      const text = scalarText(item);
      if (text === undefined) return { ok: false, error: `argument "${k}" of ${name} must be a string, a number, a boolean or a list of them` };
      parts.push(`${encodeQueryPart(k)}=${encodeQueryPart(text)}`);
    }
  }
  return { ok: true, url: `${apiBase}${resource}?${parts.join('&')}` };
}

/**
 * The action a tool call asks for. `argsText` is the call's `arguments` string as the model produced it (MCP: the
 * JSON text of the arguments object).
 */
export function callToAction(name: string, argsText: string, apiBase: string, dialect: Dialect = MEDAGENTBENCH_DIALECT): CallOutcome {
  const spec = specByName(name, dialect);
  if (!spec) return { ok: false, error: `unknown tool ${JSON.stringify(name)} (the tools are: ${toolNames(dialect).join(', ')})` };
  if (spec.method === 'POST') return { ok: true, action: { kind: 'post', url: `${apiBase}${spec.resource}`, body: argsText } };
  const parsed = parseArguments(name, argsText);
  if (!parsed.ok) return parsed;
  if (spec.method === 'PUT') {
    // the resource as the model wrote it is the body; its id names what is updated
    const id = parsed.args.id;
    if (typeof id !== 'string' || !/^[A-Za-z0-9\-.]{1,64}$/.test(id)) {
      return { ok: false, error: `${name} needs the resource's "id" (a FHIR id string) to know which ${spec.resource} to update` };
    }
    return { ok: true, action: { kind: 'put', url: `${apiBase}${spec.resource}/${id}`, body: argsText } };
  }
  if (spec.method === 'FINISH') {
    if (!(FINISH_ARG in parsed.args)) return { ok: false, error: `${FINISH_TOOL} needs the argument "${FINISH_ARG}" (a list of answers)` };
    return { ok: true, action: { kind: 'finish', answer: pyJsonDumps(parsed.args[FINISH_ARG]) } };
  }
  const url = searchUrl(apiBase, spec.resource!, name, parsed.args);
  return url.ok ? { ok: true, action: { kind: 'get', url: url.url } } : url;
}

// ---------------------------------------------------------------------------------------------------------------
// Actions → calls (scripted agents, replays of text runs)

/** A tool call as a scripted agent sends it. */
export interface ToolCallText {
  name: string;
  arguments: string;
}

export class ToolMappingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolMappingError';
  }
}

function decodePart(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ToolMappingError(`cannot decode ${JSON.stringify(s)}`);
  }
}

/**
 * The tool call that performs `action` (the inverse of `callToAction`): a GET becomes the search tool of its resource
 * (Observation: `_vitals` when it filters by `category` and not `code`, else `_labs`), its query the arguments in
 * order; a POST the create tool of its resource with the body as the arguments text; a FINISH `finish` with the answer
 * text as `answer` (when it is JSON). A raw `+` in the URL (an offset such as `+00:00`, which the server reads as `+`)
 * is a literal `+` in the argument, sent as `%2B`. Throws `ToolMappingError` for an action no tool call can express.
 */
export function actionToCall(action: Action, apiBase: string, dialect: Dialect = MEDAGENTBENCH_DIALECT): ToolCallText {
  if (action.kind === 'invalid') throw new ToolMappingError('an invalid action has no tool call');
  if (action.kind === 'finish') {
    try {
      pyJsonLoads(action.answer);
    } catch {
      throw new ToolMappingError(`the answer ${JSON.stringify(action.answer.slice(0, 80))} is not JSON`);
    }
    const call = { name: FINISH_TOOL, arguments: `{"${FINISH_ARG}": ${action.answer}}` };
    const back = callToAction(call.name, call.arguments, apiBase, dialect);
    if (!back.ok || back.action.kind !== 'finish' || back.action.answer !== action.answer) {
      throw new ToolMappingError(`the answer ${JSON.stringify(action.answer.slice(0, 80))} does not round-trip through finish`);
    }
    return call;
  }
  if (!action.url.startsWith(apiBase)) throw new ToolMappingError(`${action.url} is not under the api_base ${apiBase}`);
  const rest = action.url.slice(apiBase.length);
  const q = rest.indexOf('?');
  const resource = q < 0 ? rest : rest.slice(0, q);
  if (action.kind === 'put') {
    if (q >= 0) throw new ToolMappingError(`PUT ${action.url} has a query`);
    const [type, id, ...more] = resource.split('/');
    const spec = toolSpecs(dialect).find((s) => s.method === 'PUT' && s.resource === type);
    if (!spec || id === undefined || more.length > 0) throw new ToolMappingError(`no update tool for ${resource}`);
    const call = { name: spec.name, arguments: action.body };
    const back = callToAction(call.name, call.arguments, apiBase, dialect);
    if (!back.ok || back.action.kind !== 'put' || back.action.url !== action.url) {
      throw new ToolMappingError(`PUT ${action.url} does not round-trip through ${spec.name} (the body's id must be ${JSON.stringify(id)})`);
    }
    return call;
  }
  if (action.kind === 'post') {
    if (q >= 0) throw new ToolMappingError(`POST ${action.url} has a query`);
    const spec = toolSpecs(dialect).find((s) => s.method === 'POST' && s.resource === resource);
    if (!spec) throw new ToolMappingError(`no create tool for ${resource}`);
    return { name: spec.name, arguments: action.body };
  }
  const args: Record<string, unknown> = {};
  const query = q < 0 ? '' : rest.slice(q + 1);
  for (const part of query === '' ? [] : query.split('&')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new ToolMappingError(`query part ${JSON.stringify(part)} has no value`);
    const k = decodePart(part.slice(0, eq));
    const v = decodePart(part.slice(eq + 1));
    const prev = args[k];
    args[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const candidates = toolSpecs(dialect).filter((s) => s.method === 'GET' && s.resource === resource);
  if (candidates.length === 0) throw new ToolMappingError(`no search tool for ${resource}`);
  const spec =
    candidates.length === 1 ? candidates[0] : candidates.find((s) => s.name.endsWith(!('code' in args) && 'category' in args ? '_vitals' : '_labs'))!;
  const call = { name: spec.name, arguments: JSON.stringify(args) };
  const back = callToAction(call.name, call.arguments, apiBase, dialect);
  // a text agent's raw `+` (a time zone offset, which the server reads as `+`) comes back as `%2B`
  if (!back.ok || back.action.kind !== 'get' || back.action.url !== action.url.replace(/\+/g, '%2B')) {
    throw new ToolMappingError(`GET ${action.url} does not round-trip through ${spec.name}`);
  }
  return call;
}

// ---------------------------------------------------------------------------------------------------------------
// Tool calls a server left in the text (Qwen / Hermes `<tool_call>{…}</tool_call>`)

const TOOL_TEXT = /<tool_call>\s*([\s\S]*?)\s*<\/tool_call>/g;

/** The id given to the `i`-th tool call (1-based) recovered from the text of round `round`'s reply: `call_recovered_<round>_<i>`. */
export const RECOVERED_CALL_ID_PREFIX = 'call_recovered_';

/** Whether a reply's text carries tool-call markup a server failed to parse into `tool_calls`. */
export function hasToolCallText(content: string | null | undefined): boolean {
  return typeof content === 'string' && content.includes('<tool_call>');
}

/**
 * The tool calls written as `<tool_call>{"name": …, "arguments": {…}}</tool_call>` blocks in a reply's text (the
 * Hermes format of Qwen's chat template), in order; a block that is not such JSON is skipped. Empty when none parse.
 */
export function recoverToolCalls(content: string): ToolCallText[] {
  const out: ToolCallText[] = [];
  for (const m of content.matchAll(TOOL_TEXT)) {
    try {
      const v = JSON.parse(m[1]) as { name?: unknown; arguments?: unknown };
      if (typeof v?.name !== 'string') continue;
      const args = v.arguments === undefined ? {} : v.arguments;
      out.push({ name: v.name, arguments: typeof args === 'string' ? args : JSON.stringify(args) });
    } catch {
      // not JSON: not a call
    }
  }
  return out;
}
