/**
 * A mock OpenAI-compatible chat server (node:http on 127.0.0.1) for tests and benchmarks.
 *
 * `POST /v1/chat/completions` answers with whatever the script returns for the conversation; `GET /v1/models` lists
 * the model. The script can also inject faults: 429 (with retry-after-ms), 500, connection reset, a hang longer than
 * the client's timeout, and a vLLM-style context-length 400; and misconfigured endpoints: an HTML page with 200
 * (`html`), JSON without `choices` with 200 (`not-chat`), and replies whose text is only in `reasoning_content` /
 * `reasoning` (`{content: null, reasoning: …}`). Usage counts are deterministic (about 4 characters per token).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';

export interface MockMessage {
  role: string;
  content: string;
  /** Assistant messages of the tools protocol. */
  tool_calls?: Array<{ id: string; type: string; function: { name: string; arguments: string } }>;
  /** Tool messages. */
  tool_call_id?: string;
}

/** A tool call the mock answers with (`tool_calls[i]`); `arguments` is sent as it is (malformed JSON included). */
export interface MockToolCall {
  id?: string;
  name: string;
  arguments: string;
}

export interface MockRequest {
  model: string;
  messages: MockMessage[];
  /** Number of assistant messages in the conversation (0 on the first turn). */
  turn: number;
  /** The first user message (the task prompt). */
  prompt: string;
  /** How many times this exact conversation has been requested so far, this one included (1 = first attempt). */
  attempt: number;
  /** The full request body (to check temperature, max_tokens, extra fields). */
  body: Record<string, unknown>;
  headers: IncomingMessage['headers'];
}

export type MockFault =
  | { fault: 'rate-limit'; retryAfterMs?: number }
  | { fault: 'server-error'; status?: number }
  | { fault: 'reset' }
  | { fault: 'hang'; ms: number }
  | { fault: 'context-limit' }
  /** 200 with a web page (a --base-url that is a web UI, not the /v1 API root). */
  | { fault: 'html' }
  /** 200 with JSON that is not a chat completion. */
  | { fault: 'not-chat' };

export type MockResponse =
  | string
  | {
      content: string | null;
      delayMs?: number;
      /** Text of a thinking model's reasoning, sent in `reasoningField` (default `reasoning_content`) beside `content`. */
      reasoning?: string;
      reasoningField?: 'reasoning_content' | 'reasoning';
      /** Tool calls (`finish_reason: tool_calls`); several = parallel calls. */
      toolCalls?: MockToolCall[];
    }
  | MockFault;

/** The page `html` answers. */
export const MOCK_HTML_PAGE = '<!doctype html>\n<html><head><title>Chat UI</title></head><body><div id="app"></div></body></html>\n';

export type MockScript = (req: MockRequest) => MockResponse | Promise<MockResponse>;

export interface MockOpenAIOptions {
  script: MockScript;
  /** Delay before every answer (ms), counted from the request's arrival (reading and parsing the body is part of it). */
  latencyMs?: number;
  model?: string;
  port?: number;
  /** Keep every request body in `stats.bodies` (default true; turn off for long benchmarks). */
  keepBodies?: boolean;
  /** Answer 401 unless the request carries `Authorization: Bearer <requireKey>`. */
  requireKey?: string;
}

export interface MockStats {
  requests: number;
  completions: number;
  faults: Record<string, number>;
  promptTokens: number;
  completionTokens: number;
  maxInFlight: number;
  /** Authorization headers seen (to prove keys reach the server and nowhere else). */
  authorizations: Set<string>;
  /** Every request body received, in arrival order. */
  bodies: Record<string, unknown>[];
}

export interface MockOpenAIServer {
  /** Base URL for the SDK, e.g. `http://127.0.0.1:41234/v1`. */
  url: string;
  port: number;
  stats: MockStats;
  close(): Promise<void>;
}

export const VLLM_CONTEXT_LIMIT_MESSAGE =
  "This model's maximum context length is 32768 tokens. However, you requested 34816 tokens (32768 in the messages, 2048 in the completion). Please reduce the length of the messages or completion.";

function tokens(text: string): number {
  return Math.ceil(text.length / 4);
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startMockOpenAI(opts: MockOpenAIOptions): Promise<MockOpenAIServer> {
  const model = opts.model ?? 'mock-model';
  const attempts = new Map<string, number>();
  const stats: MockStats = {
    requests: 0,
    completions: 0,
    faults: {},
    promptTokens: 0,
    completionTokens: 0,
    maxInFlight: 0,
    authorizations: new Set(),
    bodies: [],
  };
  let inFlight = 0;
  let seq = 0;
  const sockets = new Set<import('node:net').Socket>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrived = performance.now();
    stats.requests++;
    if (req.headers.authorization) stats.authorizations.add(req.headers.authorization);
    const path = (req.url ?? '').split('?')[0].replace(/\/+$/, '');
    if (opts.requireKey !== undefined && req.headers.authorization !== `Bearer ${opts.requireKey}`) {
      json(res, 401, { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } });
      return;
    }
    if (req.method === 'GET' && path.endsWith('/models')) {
      json(res, 200, { object: 'list', data: [{ id: model, object: 'model', created: 0, owned_by: 'ehrgym-mock' }] });
      return;
    }
    if (req.method !== 'POST' || !path.endsWith('/chat/completions')) {
      json(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: 'invalid_request_error' } });
      return;
    }
    let body: Record<string, any>;
    let raw: string;
    try {
      raw = await readBody(req);
      body = JSON.parse(raw);
    } catch {
      json(res, 400, { error: { message: 'request body is not JSON', type: 'invalid_request_error' } });
      return;
    }
    if (opts.keepBodies !== false) stats.bodies.push(body);
    const messages: MockMessage[] = Array.isArray(body.messages) ? body.messages : [];
    const key = createHash('sha1').update(raw).digest('hex');
    const attempt = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, attempt);
    inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, inFlight);
    try {
      if (opts.latencyMs) await sleep(opts.latencyMs - (performance.now() - arrived));
      const out = await opts.script({
        model: String(body.model ?? ''),
        messages,
        turn: messages.filter((m) => m.role === 'assistant').length,
        prompt: messages.find((m) => m.role === 'user')?.content ?? '',
        attempt,
        body,
        headers: req.headers,
      });
      if (typeof out === 'object' && out !== null && 'fault' in out) {
        stats.faults[out.fault] = (stats.faults[out.fault] ?? 0) + 1;
        switch (out.fault) {
          case 'rate-limit':
            json(
              res,
              429,
              { error: { message: 'Rate limit exceeded, retry later', type: 'rate_limit_error', code: 'rate_limit' } },
              { 'retry-after-ms': String(out.retryAfterMs ?? 5) },
            );
            return;
          case 'server-error':
            json(res, out.status ?? 500, { error: { message: 'internal error', type: 'server_error' } }, { 'retry-after-ms': '5' });
            return;
          case 'reset':
            req.socket.destroy();
            return;
          case 'hang':
            await sleep(out.ms);
            if (!res.destroyed) json(res, 200, completion(model, '', seq++, 0));
            return;
          case 'context-limit':
            json(res, 400, { object: 'error', message: VLLM_CONTEXT_LIMIT_MESSAGE, type: 'BadRequestError', param: null, code: 400 });
            return;
          case 'html':
            res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(MOCK_HTML_PAGE) });
            res.end(MOCK_HTML_PAGE);
            return;
          case 'not-chat':
            json(res, 200, { detail: 'Not Found' });
            return;
        }
      }
      const content = typeof out === 'string' ? out : out.content;
      const reasoning = typeof out === 'string' || out.reasoning === undefined ? undefined : { [out.reasoningField ?? 'reasoning_content']: out.reasoning };
      if (typeof out === 'object' && out.delayMs) await sleep(out.delayMs);
      let chars = 0;
      for (const m of messages) chars += typeof m.content === 'string' ? m.content.length : 0;
      const pt = Math.ceil(chars / 4);
      const ct = tokens((content ?? '') + (reasoning ? Object.values(reasoning)[0] : ''));
      stats.completions++;
      stats.promptTokens += pt;
      stats.completionTokens += ct;
      const toolCalls = typeof out === 'object' && out.toolCalls ? out.toolCalls : undefined;
      json(res, 200, completion(model, content, seq++, pt, ct, reasoning, toolCalls));
    } finally {
      inFlight--;
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) json(res, 500, { error: { message: String(err?.message ?? err), type: 'server_error' } });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function completion(model: string, content: string | null, n: number, pt: number, ct = 0, reasoning?: Record<string, string>, toolCalls?: MockToolCall[]) {
  const tool_calls = toolCalls?.map((c, i) => ({ id: c.id ?? `call_mock_${n}_${i}`, type: 'function', function: { name: c.name, arguments: c.arguments } }));
  const finish = tool_calls && tool_calls.length > 0 ? 'tool_calls' : reasoning && !content ? 'length' : 'stop';
  return {
    id: `chatcmpl-mock-${n}`,
    object: 'chat.completion',
    created: 0,
    model,
    choices: [
      { index: 0, message: { role: 'assistant', content, ...reasoning, ...(tool_calls ? { tool_calls } : {}) }, finish_reason: finish, logprobs: null },
    ],
    usage: { prompt_tokens: pt, completion_tokens: ct, total_tokens: pt + ct },
  };
}
