/**
 * `openai:<model>`: any OpenAI-compatible chat-completions endpoint through the official `openai` SDK.
 *
 * History roles map `user` → `user`, `agent` → `assistant`; no system message (as AgentBench's `HTTPAgent` with
 * MedAgentBench's OpenAI chat config; docs/eval.md). Temperature 0 and max_tokens 2048 unless overridden. Transient
 * failures (429, 5xx, timeouts, connection resets) are retried by the SDK with bounded exponential back-off (it honours
 * `retry-after` headers). A non-retryable error whose text passes the AgentBench context-limit word rule ends the
 * episode with `agent context limit`.
 *
 * Every chat request is `client.chat.completions.create(body, { signal })` on one SDK client per base URL, read with
 * `.asResponse()` so the reply's bytes and content type are checked before they are trusted: a 2xx that is not a chat
 * completion (an HTML page, a body that is not JSON, JSON without `choices`) throws `ModelEndpointError` (the SDK
 * would hand back the text, which reads as an empty reply), so a misconfigured endpoint stops the run instead of being
 * scored as a model that answers nothing. Requests go over Node's built-in fetch (undici, keep-alive connection pool).
 */
import OpenAI, { APIConnectionError, APIError, AuthenticationError } from 'openai';
import type { Agent, AgentReply, EpisodeInfo, ToolsReply, ToolsTurn } from '../types.js';
import { describeNonCompletion, ModelEndpointError } from './endpoint-error.js';
import { messageJsonParts } from '../history-json.js';
import { ReplyCache } from './reply-cache.js';
import type { HistoryItem } from '../../tasks/types.js';

export interface OpenAIAgentOptions {
  model: string;
  /** One or more base URLs (e.g. `http://127.0.0.1:8000/v1`); several share load, sticky by task index. */
  baseUrls?: string[];
  /** Name of the environment variable holding the API key (default `OPENAI_API_KEY`). */
  apiKeyEnv?: string;
  /** Environment to read the key from (default `process.env`). */
  env?: Record<string, string | undefined>;
  temperature?: number;
  maxTokens?: number;
  /** Extra request fields merged into every request body (e.g. `{"chat_template_kwargs": {...}}`). */
  extra?: Record<string, unknown>;
  /** Retries after the first attempt for transient failures (default 4). */
  maxRetries?: number;
  /** Per-request timeout in ms (default 300000). */
  timeoutMs?: number;
  /** `tools` / `mcp` protocols: `tool_choice` sent with every request (default: not sent, the server's `auto`). */
  toolChoice?: ToolChoice;
  /** Answer requests seen before from this cache, and add new replies to it (`--reply-cache`). */
  replyCache?: ReplyCache;
}

/** OpenAI's `tool_choice`: `auto`, `required`, `none` or one named function. */
export type ToolChoice = 'auto' | 'required' | 'none' | { type: 'function'; function: { name: string } };

/** Raised for configuration problems (missing key); the CLI turns it into one line. */
export class AgentConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentConfigError';
  }
}

const AND_WORDS = [
  ['prompt', 'context', 'tokens'],
  ['limit', 'exceed', 'max', 'long', 'much', 'many', 'reach', 'over', 'up', 'beyond'],
];

/** AgentBench's `check_context_limit`: lowercased text holds a word of each group (substring test). */
export function isContextLimitText(text: string): boolean {
  const t = text.toLowerCase();
  return AND_WORDS.every((group) => group.some((w) => t.includes(w)));
}

export function isLocalUrl(url: string): boolean {
  try {
    const h = new URL(url).hostname;
    return h === 'localhost' || h === '127.0.0.1' || h === '[::1]' || h === '::1' || h.endsWith('.localhost');
  } catch {
    return false;
  }
}

const COMMA = Buffer.from(',');
const BODY_TAIL = Buffer.from(']}');

export const DEFAULT_BASE_URL = 'https://api.openai.com/v1';

/**
 * fetch for the SDK that keeps the full text of error bodies: servers such as vLLM answer
 * `{"object": "error", "message": …}` without an `error` key, which the SDK would reduce to "status code (no body)".
 * The context-limit rule needs that text, so such bodies are wrapped as `{"error": {"message": <text>}}`.
 */
export const fetchKeepingErrorText: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  if (res.status < 400) return res;
  const text = await res.text();
  let body = text;
  try {
    const j = JSON.parse(text);
    if (!j || typeof j !== 'object' || !('error' in j)) body = JSON.stringify({ error: { message: text } });
  } catch {
    body = JSON.stringify({ error: { message: text } });
  }
  const headers = new Headers(res.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  headers.set('content-type', 'application/json');
  return new Response(body, { status: res.status, statusText: res.statusText, headers });
};

export class OpenAIAgent implements Agent {
  readonly name: string;
  readonly config: Record<string, unknown>;
  private readonly clients: OpenAI[];
  private readonly body: Record<string, unknown>;
  private readonly toolChoice: ToolChoice | undefined;
  readonly replyCache: ReplyCache | undefined;
  /** The body's JSON up to the opening `[` of `messages` (undefined when `extra` sets `messages` itself). */
  private readonly bodyHead: Buffer | undefined;

  constructor(opts: OpenAIAgentOptions) {
    const baseUrls = opts.baseUrls && opts.baseUrls.length > 0 ? opts.baseUrls : [DEFAULT_BASE_URL];
    const keyEnv = opts.apiKeyEnv ?? 'OPENAI_API_KEY';
    const env = opts.env ?? process.env;
    let apiKey = env[keyEnv];
    if (!apiKey) {
      const remote = baseUrls.filter((u) => !isLocalUrl(u));
      if (remote.length > 0) {
        throw new AgentConfigError(`missing API key: set the environment variable ${keyEnv} (--api-key-env) for ${remote[0]}`);
      }
      apiKey = 'EMPTY';
    }
    const maxRetries = opts.maxRetries ?? 4;
    const timeout = opts.timeoutMs ?? 300_000;
    this.clients = baseUrls.map((baseURL) => new OpenAI({ apiKey, baseURL, maxRetries, timeout, fetch: fetchKeepingErrorText }));
    const temperature = opts.temperature ?? 0;
    const maxTokens = opts.maxTokens ?? 2048;
    this.body = { model: opts.model, temperature, max_tokens: maxTokens, ...(opts.extra ?? {}) };
    const empty = JSON.stringify({ ...this.body, messages: [] });
    this.bodyHead = 'messages' in this.body || !empty.endsWith('"messages":[]}') ? undefined : Buffer.from(empty.slice(0, -2), 'utf8');
    this.toolChoice = opts.toolChoice;
    this.replyCache = opts.replyCache;
    this.name = `openai:${opts.model}`;
    // Recorded in manifests: never the key itself, only the name of the variable it came from.
    this.config = {
      backend: 'openai',
      model: opts.model,
      baseUrls,
      apiKeyEnv: keyEnv,
      temperature,
      maxTokens,
      extra: opts.extra ?? {},
      maxRetries,
      timeoutMs: timeout,
      ...(opts.toolChoice !== undefined ? { toolChoice: opts.toolChoice } : {}),
      ...(opts.replyCache ? { replyCache: opts.replyCache.path } : {}),
    };
  }

  /**
   * The UTF-8 bytes of `JSON.stringify({...body, messages})`, composed from each message's JSON serialised and encoded
   * once for the life of its history item (`history-json.ts`; the run log reuses it).
   */
  requestBody(history: HistoryItem[]): Buffer {
    const role = (h: HistoryItem) => (h.role === 'agent' ? 'assistant' : 'user');
    if (this.bodyHead === undefined) {
      return Buffer.from(JSON.stringify({ ...this.body, messages: history.map((h) => ({ role: role(h), content: h.content })) }), 'utf8');
    }
    const parts: Buffer[] = [this.bodyHead];
    for (let i = 0; i < history.length; i++) {
      if (i > 0) parts.push(COMMA);
      parts.push(...messageJsonParts(history[i], role(history[i])));
    }
    parts.push(BODY_TAIL);
    return Buffer.concat(parts);
  }

  async close(): Promise<void> {}

  /** Fails with a connection error when no endpoint answers at all (HTTP errors mean it is reachable). */
  async preflight(): Promise<void> {
    for (const client of this.clients) {
      try {
        await client.models.list({ maxRetries: 1, timeout: 15_000 });
      } catch (err) {
        if (err instanceof APIConnectionError) {
          throw new Error(`model endpoint unreachable: ${client.baseURL} (${err.message})`);
        }
        if (err instanceof AuthenticationError) {
          throw new Error(`model endpoint ${client.baseURL} refused the API key (401); check the variable named by --api-key-env`);
        }
        // any HTTP answer (401, 404, …) proves the endpoint is reachable
      }
    }
  }

  /** The request's parameters: `{...body, messages}` (serialised by the SDK as `JSON.stringify`, the bytes of `requestBody`). */
  requestParams(history: HistoryItem[]): OpenAI.Chat.ChatCompletionCreateParamsNonStreaming {
    const messages = history.map((h) => ({ role: h.role === 'agent' ? ('assistant' as const) : ('user' as const), content: h.content }));
    return { ...this.body, messages } as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
  }

  async act(history: HistoryItem[], episode: EpisodeInfo): Promise<AgentReply> {
    const res = await this.complete(this.requestParams(history), episode);
    if ('contextLimit' in res) return { content: '', contextLimit: true };
    const { message, usage } = res;
    const content = message?.content ?? '';
    const reply: AgentReply = usage ? { content, usage } : { content };
    const reasoning = reasoningOnly(message, content);
    if (reasoning) reply.reasoningOnly = reasoning;
    return reply;
  }

  /** The request of a `tools` / `mcp` turn: `{...body, messages, tools[, tool_choice]}`. */
  toolsRequestParams(turn: ToolsTurn): OpenAI.Chat.ChatCompletionCreateParamsNonStreaming {
    return {
      ...this.body,
      messages: turn.messages,
      tools: turn.tools,
      ...(this.toolChoice !== undefined ? { tool_choice: this.toolChoice } : {}),
    } as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
  }

  async actTools(turn: ToolsTurn, episode: EpisodeInfo): Promise<ToolsReply> {
    const res = await this.complete(this.toolsRequestParams(turn), episode);
    if ('contextLimit' in res) return { content: '', toolCalls: [], contextLimit: true };
    const { message, usage } = res;
    const content = typeof message?.content === 'string' ? message.content : null;
    const toolCalls: ToolsReply['toolCalls'] = [];
    const calls = Array.isArray(message?.tool_calls) ? message.tool_calls : [];
    calls.forEach((c, i) => {
      const fn = (c as { function?: { name?: unknown; arguments?: unknown } }).function;
      if (!fn) return;
      toolCalls.push({
        id: typeof c.id === 'string' && c.id !== '' ? c.id : `call_${i + 1}`,
        name: typeof fn.name === 'string' ? fn.name : '',
        arguments: typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? {}),
      });
    });
    const reply: ToolsReply = usage ? { content, toolCalls, usage } : { content, toolCalls };
    if (toolCalls.length === 0) {
      const reasoning = reasoningOnly(message, content ?? '');
      if (reasoning) reply.reasoningOnly = reasoning;
    }
    return reply;
  }

  /** One chat completion; a context-limit error is returned as such, other errors thrown. */
  private async complete(
    params: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming,
    episode: EpisodeInfo,
  ): Promise<{ message: CompletionMessage | undefined; usage?: { promptTokens: number; completionTokens: number } } | { contextLimit: true }> {
    try {
      const client = this.clients[episode.index % this.clients.length];
      const key = this.replyCache ? ReplyCache.key(params) : undefined;
      const cached = key !== undefined ? (this.replyCache!.get(key) as OpenAI.Chat.ChatCompletion | undefined) : undefined;
      const res = cached ?? (await readCompletion(await client.chat.completions.create(params, { signal: episode.signal }).asResponse()));
      if (key !== undefined && cached === undefined) this.replyCache!.put(key, res);
      const message = res.choices?.[0]?.message as CompletionMessage | undefined;
      const usage = res.usage ? { promptTokens: res.usage.prompt_tokens ?? 0, completionTokens: res.usage.completion_tokens ?? 0 } : undefined;
      return usage ? { message, usage } : { message };
    } catch (err) {
      if (err instanceof APIError && !(err instanceof APIConnectionError) && err.status !== undefined) {
        const retryable = err.status === 408 || err.status === 409 || err.status === 429 || err.status >= 500;
        const text = `${err.message} ${err.error ? JSON.stringify(err.error) : ''}`;
        if (!retryable && isContextLimitText(text)) return { contextLimit: true };
      }
      throw err;
    }
  }
}

type CompletionMessage = OpenAI.Chat.ChatCompletionMessage & Record<string, unknown>;

/**
 * Thinking models behind a reasoning parser: with thinking on (or max_tokens spent thinking) the text is all in
 * `reasoning_content` (vLLM, DeepSeek) or `reasoning` (OpenRouter, Ollama) and `content` is empty. The field's name.
 */
function reasoningOnly(message: CompletionMessage | undefined, content: string): string | undefined {
  if (content.trim() !== '') return undefined;
  return (['reasoning_content', 'reasoning'] as const).find((k) => typeof message?.[k] === 'string' && (message[k] as string).trim() !== '');
}

/**
 * The chat completion in a 2xx reply the SDK has accepted (`.asResponse()`: status checked and retried, body unread).
 * Anything else (HTML, a body that is not JSON whatever its content type, JSON without `choices`) is a misconfigured
 * endpoint: `ModelEndpointError` with a one-line diagnosis naming the URL.
 */
export async function readCompletion(response: Response): Promise<OpenAI.Chat.ChatCompletion> {
  const mediaType = (response.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ModelEndpointError(describeNonCompletion(response.url, mediaType, text));
  }
  if (!parsed || typeof parsed !== 'object' || !Array.isArray((parsed as Record<string, unknown>).choices)) {
    const shown = text.trim().slice(0, 80);
    throw new ModelEndpointError(
      `the model endpoint answered JSON without "choices" (${response.url}: ${shown}${text.trim().length > 80 ? '…' : ''}); is --base-url an OpenAI-compatible /v1 API root?`,
    );
  }
  return parsed as OpenAI.Chat.ChatCompletion;
}
