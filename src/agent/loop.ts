/**
 * The official MedAgentBench episode loop (`start_sample` of the upstream task, docs/eval.md), byte-exact, with one
 * named extension: POST mode `live`, which executes POSTs inside the episode's sandbox session.
 */
import type { Agent, Usage } from './types.js';
import type { HistoryItem, SampleStatus, TaskCase, TaskOutput } from '../tasks/types.js';
import type { FhirTransport } from '../fhir/types.js';
import type { Action } from '../protocol/action.js';
import { OFFICIAL_API_BASE } from '../fhir/types.js';
import { renderPrompt } from './prompt.js';
import { httpErrorText, prepareGetUrl, pyReprStr } from './parser.js';
import {
  POST_ACCEPTED,
  POST_INVALID,
  PUT_ACCEPTED,
  PUT_INVALID,
  getErrorReply,
  getOkReply,
  getRequestUrl,
  livePostAcceptedReply,
  livePutAcceptedReply,
  parseAction,
  postErrorReply,
  putErrorReply,
} from '../protocol/text.js';
import { reasonPhrase } from './fhir-route.js';
import { taskDialect, type Dialect } from '../protocol/dialect.js';
import { ModelEndpointError } from './backends/endpoint-error.js';
import { PyFloat, pyFloatRepr, pyJsonLoads, pyStrip } from '../tasks/pysem.js';

export type PostMode = 'official' | 'live';
export const POST_MODES: readonly PostMode[] = ['official', 'live'];
export const DEFAULT_MAX_ROUNDS = 8;

/** Python `json.loads` (strict JSON plus NaN/Infinity). Throws on invalid input. */
export type JsonLoads = (text: string) => unknown;

export interface EpisodeOptions {
  /** Position of the task in the task file (0-based). */
  index: number;
  task: TaskCase;
  agent: Agent;
  /** Transport of the episode's sandbox session; it receives URLs under `apiBase` exactly as the agent wrote them. */
  fhir: FhirTransport;
  apiBase?: string;
  maxRounds?: number;
  postMode?: PostMode;
  /** The initial prompt; default `renderPrompt(task, {apiBase, dialect})`. */
  prompt?: string;
  /** The protocol dialect; default the task's family's (`taskDialect`: MedAgentBench's for its ten families). */
  dialect?: Dialect;
  /** Python json.loads used for POST bodies; default the exact port `pyJsonLoads`. */
  jsonLoads?: JsonLoads;
  signal?: AbortSignal;
}

export interface EpisodeResult {
  output: TaskOutput;
  /** Agent turns taken. */
  rounds: number;
  usage: Usage;
  /** Wall time of the episode, time spent waiting for the agent and for the FHIR transport (ms). */
  ms: number;
  agentMs: number;
  fhirMs: number;
  /** Set when the agent itself failed (after its retries): AgentBench records the sample in error.jsonl. */
  agentError?: string;
  /**
   * Set with `agentError` when the model endpoint answered something that is not a chat completion
   * (`ModelEndpointError`): a misconfiguration, which stops a run instead of being recorded.
   */
  endpointError?: boolean;
  /**
   * The episode ended on an empty reply (nothing but whitespace; official status `agent invalid action`): `empty`,
   * or the reasoning field that carried the model's text instead (`reasoning_content`, `reasoning`).
   */
  emptyReply?: string;
}

/** The default Python `json.loads` used for POST bodies (the exact port from src/tasks/pysem.ts). */
export const defaultJsonLoads: JsonLoads = (text) => pyJsonLoads(text);

/** An error's message (or the thrown value as text). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * What every episode loop (text, tools) keeps while it runs — rounds, token usage, time waiting for the agent and for
 * the FHIR transport — and the result it ends with. `output` gives the episode's TaskOutput for a status and result.
 */
export class EpisodeAccount {
  private readonly t0 = performance.now();
  readonly usage: Usage = { promptTokens: 0, completionTokens: 0 };
  agentMs = 0;
  fhirMs = 0;
  rounds = 0;

  constructor(private readonly output: (status: SampleStatus, result: TaskOutput['result']) => TaskOutput) {}

  done(status: SampleStatus, result: TaskOutput['result'] = null, agentError?: string, extra?: Partial<EpisodeResult>): EpisodeResult {
    return {
      output: this.output(status, result),
      rounds: this.rounds,
      usage: this.usage,
      ms: performance.now() - this.t0,
      agentMs: this.agentMs,
      fhirMs: this.fhirMs,
      ...(agentError !== undefined ? { agentError } : {}),
      ...extra,
    };
  }

  /**
   * One agent turn, timed and its usage counted: `{reply}`, or `{end}` — the episode's result when the agent failed
   * (status `running` with the error; `endpointError` for a misconfigured endpoint) or hit its context limit.
   */
  async agent<R extends { usage?: Usage; contextLimit?: boolean }>(call: () => Promise<R>): Promise<{ reply: R } | { end: EpisodeResult }> {
    const ta = performance.now();
    let reply: R;
    try {
      reply = await call();
    } catch (err) {
      this.agentMs += performance.now() - ta;
      return { end: this.done('running', null, errorMessage(err), err instanceof ModelEndpointError ? { endpointError: true } : undefined) };
    }
    this.agentMs += performance.now() - ta;
    if (reply.usage) {
      this.usage.promptTokens += reply.usage.promptTokens;
      this.usage.completionTokens += reply.usage.completionTokens;
    }
    if (reply.contextLimit) return { end: this.done('agent context limit') };
    this.rounds++;
    return { reply };
  }

  /** Time a FHIR exchange. */
  async fhir<T>(call: () => Promise<T>): Promise<T> {
    const tf = performance.now();
    try {
      return await call();
    } finally {
      this.fhirMs += performance.now() - tf;
    }
  }
}

/** Run one episode exactly as the official harness does. Never throws (agent failures are reported in the result). */
export async function runEpisode(opts: EpisodeOptions): Promise<EpisodeResult> {
  // started first so the episode's wall time counts the prompt's rendering, as it always has
  const acct = new EpisodeAccount((status, result) => ({ index: opts.index, status, result, history }));
  const done = acct.done.bind(acct);
  const apiBase = opts.apiBase ?? OFFICIAL_API_BASE;
  const maxRounds = opts.maxRounds ?? DEFAULT_MAX_ROUNDS;
  const postMode = opts.postMode ?? 'official';
  const jsonLoads = opts.jsonLoads ?? defaultJsonLoads;
  const dialect = opts.dialect ?? taskDialect(opts.task);
  const history: HistoryItem[] = [{ role: 'user', content: opts.prompt ?? renderPrompt(opts.task, { apiBase, dialect }) }];
  const exec: ExecuteContext = { fhir: opts.fhir, postMode, jsonLoads };

  try {
    for (let round = 0; round < maxRounds; round++) {
      const turn = await acct.agent(() => opts.agent.act(history, { index: opts.index, task: opts.task, apiBase, signal: opts.signal }));
      if ('end' in turn) return turn.end;
      const reply = turn.reply;
      const content = reply.content;
      history.push({ role: 'agent', content });
      const action = parseAction(content, { put: dialect.put });
      if (action.kind === 'get' || action.kind === 'post' || action.kind === 'put') {
        const text = await acct.fhir(() => executeAction(action, exec));
        history.push({ role: 'user', content: text });
      } else if (action.kind === 'finish') {
        return done('completed', action.answer);
      } else {
        // an empty reply is an invalid action, as upstream; the result says so for the run's own accounting
        const empty = pyStrip(content) === '' ? { emptyReply: reply.reasoningOnly ?? 'empty' } : undefined;
        return done('agent invalid action', null, undefined, empty);
      }
    }
  } catch (err) {
    return done('task error', { error: errorMessage(err) });
  }
  return done('task limit reached');
}

export interface ExecuteContext {
  fhir: FhirTransport;
  postMode: PostMode;
  jsonLoads: JsonLoads;
}

/**
 * What the environment answers to a GET or POST action, as the text protocol words it (the same text is a tool's
 * result in the tools and MCP protocols): a GET's body or error; a POST whose payload `json.loads` rejects is
 * `Invalid POST request`, else accepted (POST mode `official`, nothing sent) or executed in the session (`live`).
 * Never throws.
 */
export async function executeAction(action: Extract<Action, { kind: 'get' | 'post' | 'put' }>, ctx: ExecuteContext): Promise<string> {
  if (action.kind === 'get') return sendGet(ctx.fhir, getRequestUrl(action.url));
  const put = action.kind === 'put';
  try {
    ctx.jsonLoads(action.body);
  } catch {
    return put ? PUT_INVALID : POST_INVALID;
  }
  if (ctx.postMode === 'official') return put ? PUT_ACCEPTED : POST_ACCEPTED;
  return sendLiveWrite(ctx.fhir, put ? 'PUT' : 'POST', action.url, action.body);
}

/** `send_get_request` of the official harness, as the text the agent sees. Never throws. */
export async function sendGet(fhir: FhirTransport, rawUrl: string): Promise<string> {
  const prepared = prepareGetUrl(rawUrl);
  if (!prepared.ok) return getErrorReply(prepared.error);
  let res;
  try {
    res = await fhir({ method: 'GET', url: prepared.url });
  } catch (err) {
    return getErrorReply(errorMessage(err));
  }
  if (res.status >= 400 && res.status < 600) {
    return getErrorReply(httpErrorText(res.status, reasonPhrase(res.status), prepared.url));
  }
  if (res.contentType === 'application/json') {
    // requests' response.json() then an f-string: the agent sees the Python repr of the parsed value.
    try {
      return getOkReply(pyReprJson(pyJsonLoads(res.body, { preserveFloats: true })));
    } catch (err) {
      return getErrorReply(errorMessage(err));
    }
  }
  return getOkReply(res.body);
}

/** Live mode: execute the POST (or the `ehrgym` dialect's PUT) in the episode's session. */
async function sendLiveWrite(fhir: FhirTransport, method: 'POST' | 'PUT', rawUrl: string, body: string): Promise<string> {
  const errorReply = method === 'PUT' ? putErrorReply : postErrorReply;
  const prepared = prepareGetUrl(rawUrl);
  if (!prepared.ok) return errorReply(prepared.error);
  let res;
  try {
    res = await fhir({ method, url: prepared.url, body, headers: { 'content-type': 'application/fhir+json' } });
  } catch (err) {
    return errorReply(errorMessage(err));
  }
  if (res.status >= 400) {
    return errorReply(httpErrorText(res.status, reasonPhrase(res.status), prepared.url));
  }
  const location = res.headers?.['location'] ?? res.headers?.['Location'] ?? '';
  return method === 'PUT' ? livePutAcceptedReply(location) : livePostAcceptedReply(location);
}

/** Python repr of a JSON value as `json.loads` returns it (dict/list/str/int/float/bool/None). */
export function pyReprJson(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyFloat) return pyFloatRepr(v.value);
  if (typeof v === 'bigint') return v.toString();
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return pyReprStrJson(v);
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : pyFloatRepr(v);
  if (Array.isArray(v)) return '[' + v.map(pyReprJson).join(', ') + ']';
  const obj = v as Record<string, unknown>;
  return (
    '{' +
    Object.keys(obj)
      .map((k) => `${pyReprStrJson(k)}: ${pyReprJson(obj[k])}`)
      .join(', ') +
    '}'
  );
}

function pyReprStrJson(s: string): string {
  return pyReprStr(s);
}
