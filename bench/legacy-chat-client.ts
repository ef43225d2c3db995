/**
 * The hand-written chat client the `openai:` backend used before it sent its requests through the `openai` SDK
 * (node:http keep-alive pools, the body serialised by the agent, the SDK's retry rules re-implemented). Kept here only
 * so `npm run bench:eval` can measure the SDK's per-call cost against it in the same run; nothing in src/ uses it.
 */
import http from 'node:http';
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type OpenAI from 'openai';
import { OpenAIAgent } from '../src/agent/backends/openai.js';
import { prepareContentJson } from '../src/agent/history-json.js';
import type { Agent, AgentReply, EpisodeInfo } from '../src/agent/types.js';
import type { HistoryItem } from '../src/tasks/types.js';

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function attempt(url: URL, headers: Record<string, string>, body: Buffer, timeoutMs: number, signal?: AbortSignal): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new APIUserAbortError());
      return;
    }
    let settled = false;
    const finish = (err: unknown, value?: RawReply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(value as RawReply);
    };
    const req = http.request(url, { method: 'POST', headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => finish(err));
      res.on('end', () => finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    const onAbort = () => {
      finish(new APIUserAbortError());
      req.destroy();
    };
    const timer = setTimeout(() => {
      finish(new APIConnectionTimeoutError());
      req.destroy();
    }, timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => finish(err));
    req.end(body);
  });
}

/** One chat completion over node:http (http: base URLs only; no retries: the bench's mock never fails). */
async function post(baseURL: string, apiKey: string, payload: Buffer, signal?: AbortSignal): Promise<OpenAI.Chat.ChatCompletion> {
  const url = new URL(`${baseURL}/chat/completions`);
  const headers: Record<string, string> = {
    accept: 'application/json',
    'content-type': 'application/json',
    'content-length': String(payload.length),
    'user-agent': 'ehrgym-bench-legacy',
    'x-stainless-retry-count': '0',
    authorization: `Bearer ${apiKey}`,
  };
  let reply: RawReply;
  try {
    reply = await attempt(url, headers, payload, 300_000, signal);
  } catch (err) {
    if (err instanceof APIError) throw err;
    throw new APIConnectionError({ cause: err instanceof Error ? err : new Error(String(err)) });
  }
  const text = reply.body.toString('utf8');
  if (reply.status < 200 || reply.status >= 300) throw APIError.generate(reply.status, { error: { message: text } }, undefined, new Headers());
  const parsed = JSON.parse(text) as OpenAI.Chat.ChatCompletion;
  if (!Array.isArray(parsed.choices)) throw new Error('not a chat completion');
  return parsed;
}

/** The old `openai:` agent: the same request bytes (`OpenAIAgent.requestBody`) and reply handling, sent over node:http. */
export function legacyChatAgent(model: string, baseURL: string): Agent {
  const inner = new OpenAIAgent({ model, baseUrls: [baseURL], env: {} });
  return {
    name: `${inner.name} (legacy node:http client)`,
    config: { ...inner.config, client: 'legacy node:http' },
    async act(history: HistoryItem[], episode: EpisodeInfo): Promise<AgentReply> {
      for (const h of history) await prepareContentJson(h);
      const res = await post(baseURL, 'EMPTY', inner.requestBody(history), episode.signal);
      const content = res.choices[0]?.message?.content ?? '';
      return res.usage ? { content, usage: { promptTokens: res.usage.prompt_tokens, completionTokens: res.usage.completion_tokens } } : { content };
    },
  };
}
