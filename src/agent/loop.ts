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
import { POST_ACCEPTED, POST_INVALID, getErrorReply, getOkReply, getRequestUrl, livePostAcceptedReply, parseAction, postErrorReply } from '../protocol/text.js';
import { reasonPhrase } from './fhir-route.js';
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
  /** The initial prompt; default `renderPrompt(task, {apiBase})`. */
  prompt?: string;
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

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Run one episode exactly as the official harness does. Never throws (agent failures are reported in the result). */
export async function runEpisode(opts: EpisodeOptions): Promise<EpisodeResult> {
  const t0 = performance.now();
  const apiBase = opts.apiBase ?? OFFICIAL_API_BASE;
  const maxRounds = opts.maxRounds ?? DEFAULT_MAX_ROUNDS;
  const postMode = opts.postMode ?? 'official';
  const jsonLoads = opts.jsonLoads ?? defaultJsonLoads;
  const history: HistoryItem[] = [{ role: 'user', content: opts.prompt ?? renderPrompt(opts.task, { apiBase }) }];
  const exec: ExecuteContext = { fhir: opts.fhir, postMode, jsonLoads };
  const usage: Usage = { promptTokens: 0, completionTokens: 0 };
  let agentMs = 0;
  let fhirMs = 0;
  let rounds = 0;
  const done = (status: SampleStatus, result: TaskOutput['result'] = null, agentError?: string, extra?: Partial<EpisodeResult>): EpisodeResult => ({
    output: { index: opts.index, status, result, history },
    rounds,
    usage,
    ms: performance.now() - t0,
    agentMs,
    fhirMs,
    ...(agentError !== undefined ? { agentError } : {}),
    ...extra,
  });

  try {
    for (let round = 0; round < maxRounds; round++) {
      let reply;
      const ta = performance.now();
      try {
        reply = await opts.agent.act(history, { index: opts.index, task: opts.task, apiBase, signal: opts.signal });
      } catch (err) {
        agentMs += performance.now() - ta;
        return done('running', null, errorMessage(err), err instanceof ModelEndpointError ? { endpointError: true } : undefined);
      }
      agentMs += performance.now() - ta;
      if (reply.usage) {
        usage.promptTokens += reply.usage.promptTokens;
        usage.completionTokens += reply.usage.completionTokens;
      }
      if (reply.contextLimit) return done('agent context limit');
      rounds++;
      const content = reply.content;
      history.push({ role: 'agent', content });
      const action = parseAction(content);
      if (action.kind === 'get' || action.kind === 'post') {
        const tf = performance.now();
        const text = await executeAction(action, exec);
        fhirMs += performance.now() - tf;
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
export async function executeAction(action: Extract<Action, { kind: 'get' | 'post' }>, ctx: ExecuteContext): Promise<string> {
  if (action.kind === 'get') return sendGet(ctx.fhir, getRequestUrl(action.url));
  try {
    ctx.jsonLoads(action.body);
  } catch {
    return POST_INVALID;
  }
  if (ctx.postMode === 'official') return POST_ACCEPTED;
  return sendLivePost(ctx.fhir, action.url, action.body);
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

/** Live mode: execute the POST in the episode's session. */
async function sendLivePost(fhir: FhirTransport, rawUrl: string, body: string): Promise<string> {
  const prepared = prepareGetUrl(rawUrl);
  if (!prepared.ok) return postErrorReply(prepared.error);
  let res;
  try {
    res = await fhir({ method: 'POST', url: prepared.url, body, headers: { 'content-type': 'application/fhir+json' } });
  } catch (err) {
    return postErrorReply(errorMessage(err));
  }
  if (res.status >= 400) {
    return postErrorReply(httpErrorText(res.status, reasonPhrase(res.status), prepared.url));
  }
  const location = res.headers?.['location'] ?? res.headers?.['Location'] ?? '';
  return livePostAcceptedReply(location);
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
