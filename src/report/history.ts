/**
 * Reading an episode history the way the official harness (`start_sample`) and grader (`refsol.py`'s `check_has_post`,
 * `extract_posts`) do; docs/eval.md and docs/tasks.md.
 * Pure functions; no I/O.
 */
import type { HistoryItem, TaskOutput } from '../tasks/types.js';
import type { Action } from '../protocol/action.js';
import { GET_ERROR_PREFIX, POST_ACCEPTED_PREFIX, PUT_ACCEPTED_PREFIX, cleanReply, getOkBody, parseCleaned, type ParseOptions } from '../protocol/text.js';
import { TOOL_ERROR_PREFIX } from '../protocol/tools.js';

export { GET_OK_PREFIX, GET_OK_SUFFIX } from '../protocol/text.js';

export type ActionKind = 'GET' | 'POST' | 'PUT' | 'FINISH' | 'invalid';

const KIND: Record<Action['kind'], ActionKind> = { get: 'GET', post: 'POST', put: 'PUT', finish: 'FINISH', invalid: 'invalid' };

/** How the harness reads one agent reply (the canonical `Action` of src/protocol/text.ts, with the report's labels). */
export interface ParsedAction {
  /** `content.strip().replace('```tool_code','').replace('```','').strip()` */
  r: string;
  kind: ActionKind;
  /** GET: the URL as sent (before `&_format=json`); POST / PUT: first line minus the verb. */
  url?: string;
  /** POST / PUT: the text after the first line of `r`. */
  body?: string;
  /** FINISH: `r[len('FINISH('):-1]`. */
  result?: string;
}

export function parseAction(content: string, opts: ParseOptions = {}): ParsedAction {
  const r = cleanReply(content);
  const a = parseCleaned(r, opts);
  const out: ParsedAction = { r, kind: KIND[a.kind] };
  if (a.kind === 'get' || a.kind === 'post' || a.kind === 'put') out.url = a.url;
  if (a.kind === 'post' || a.kind === 'put') out.body = a.body;
  if (a.kind === 'finish') out.result = a.answer;
  return out;
}

/** One agent turn with what the environment answered. */
export interface Step {
  /** Index of the agent item in the history. */
  turn: number;
  content: string;
  action: ParsedAction;
  /** The environment's reply (the next `user` item), if any. */
  reply?: string;
  replyIndex?: number;
  /** GET: the response body text (between the fixed prefix and suffix) when the GET succeeded. */
  getBody?: string;
  /** GET: the body parsed as JSON, when it is JSON. */
  getJson?: unknown;
  getError?: string;
  /** POST: whether the harness accepted it; the payload as it parsed. */
  postAccepted?: boolean;
  payload?: unknown;
  /**
   * `tools` / `mcp`: the item records a tool call that mapped to no action (`TOOL_CALL <name> <arguments>`, not text
   * the model wrote) and this is the error it was answered with.
   */
  toolError?: string;
  /**
   * `tools` / `mcp`: the item is the text of a reply without tool calls (which ended the episode), not an action, even
   * when it reads like one (`episodeSteps`); `action` is then `invalid`.
   */
  textReply?: boolean;
}

export function tryJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** Pair every agent item with the environment reply that follows it. */
export function steps(history: HistoryItem[] | null | undefined, opts: ParseOptions = {}): Step[] {
  const out: Step[] = [];
  if (!history) return out;
  for (let i = 0; i < history.length; i++) {
    const item = history[i]!;
    if (item.role !== 'agent') continue;
    const action = parseAction(item.content, opts);
    const next = history[i + 1];
    const step: Step = { turn: i, content: item.content, action };
    if (next && next.role === 'user') {
      step.reply = next.content;
      step.replyIndex = i + 1;
    }
    if (action.kind === 'GET' && step.reply !== undefined) {
      const body = getOkBody(step.reply);
      if (body !== undefined) {
        step.getBody = body;
        const parsed = tryJson(body);
        if (parsed.ok) step.getJson = parsed.value;
      } else if (step.reply.startsWith(GET_ERROR_PREFIX)) {
        step.getError = step.reply.slice(GET_ERROR_PREFIX.length);
      }
    }
    if (action.kind === 'invalid' && step.reply?.startsWith(TOOL_ERROR_PREFIX)) step.toolError = step.reply.slice(TOOL_ERROR_PREFIX.length);
    if (action.kind === 'POST' || action.kind === 'PUT') {
      // a PUT (suite tasks) is a write like a POST: accepted or not, and its payload
      const accepted = action.kind === 'POST' ? POST_ACCEPTED_PREFIX : PUT_ACCEPTED_PREFIX;
      step.postAccepted = step.reply !== undefined ? step.reply.startsWith(accepted) : undefined;
      const parsed = tryJson(action.body ?? '');
      if (parsed.ok) step.payload = parsed.value;
    }
    out.push(step);
  }
  return out;
}

/**
 * The steps of an episode's history. In a `tools` / `mcp` episode (`messages` recorded) that ended on a reply without
 * tool calls (`agent invalid action`), the last agent item is that reply's text: it was not executed, whatever it
 * reads like, so it is marked `textReply` with no action.
 */
export function episodeSteps(output: Pick<TaskOutput, 'history' | 'messages' | 'status'>, opts: ParseOptions = {}): Step[] {
  const all = steps(output.history, opts);
  if (!Array.isArray(output.messages) || String(output.status) !== 'agent invalid action') return all;
  const last = all[all.length - 1];
  if (!last || last.toolError !== undefined || last.turn !== (output.history?.length ?? 0) - 1) return all;
  const { turn, content, reply, replyIndex } = last;
  all[all.length - 1] = {
    turn,
    content,
    action: { r: last.action.r, kind: 'invalid' },
    textReply: true,
    ...(reply !== undefined ? { reply, replyIndex } : {}),
  };
  return all;
}

/**
 * Split the official prompt into its `Context:` and `Question:` parts and the advertised API base. The `tools` / `mcp`
 * prompt (src/protocol/tools.ts) ends the same way but advertises no API base: the run's manifest has it.
 */
export function promptParts(prompt: string): { context?: string; question?: string; apiBase?: string } {
  const out: { context?: string; question?: string; apiBase?: string } = {};
  const q = prompt.lastIndexOf('\nQuestion: ');
  if (q >= 0) {
    out.question = prompt.slice(q + '\nQuestion: '.length);
    const c = prompt.lastIndexOf('\nContext: ', q);
    if (c >= 0) out.context = prompt.slice(c + '\nContext: '.length, q);
  }
  const m = /Note that you should use (\S+) as the api_base\./.exec(prompt);
  if (m) out.apiBase = m[1];
  return out;
}

/** Observation-like entries of a FHIR Bundle: value and time, in server order. */
export interface ObservedValue {
  value: number;
  time?: string;
  code?: string;
}

export function bundleValues(json: unknown): ObservedValue[] {
  const out: ObservedValue[] = [];
  const entries = (json as { entry?: unknown })?.entry;
  if (!Array.isArray(entries)) return out;
  for (const e of entries) {
    const res = (e as { resource?: Record<string, unknown> })?.resource;
    if (!res || typeof res !== 'object') continue;
    const vq = res.valueQuantity as { value?: unknown } | undefined;
    if (vq && typeof vq.value === 'number') {
      const code = (res.code as { coding?: { code?: string }[] } | undefined)?.coding?.[0]?.code;
      out.push({ value: vq.value, time: typeof res.effectiveDateTime === 'string' ? res.effectiveDateTime : undefined, code });
    }
  }
  return out;
}

export function bundleEntryCount(json: unknown): number {
  const entries = (json as { entry?: unknown })?.entry;
  return Array.isArray(entries) ? entries.length : 0;
}

export function bundleHasNext(json: unknown): boolean {
  const links = (json as { link?: unknown })?.link;
  return Array.isArray(links) && links.some((l) => (l as { relation?: string })?.relation === 'next');
}

/** Every number and string inside a JSON value, depth first. */
export function scalars(value: unknown): Array<number | string> {
  const out: Array<number | string> = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'number' || typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(value);
  return out;
}

/** Numbers written in a text (e.g. a GET body that is not JSON). */
export function numbersIn(text: string): number[] {
  return (text.match(/-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?/g) ?? []).map(Number);
}
