/**
 * The `openai:` backend's chat requests through the real `openai` SDK client against raw node:http servers: what goes
 * on the wire (body bytes, headers, key), what is retried, the errors that end an episode (and their messages, which
 * reach error.jsonl), and the 2xx replies that are not chat completions (`ModelEndpointError`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { VERSION as SDK_VERSION } from 'openai/version';
import { OpenAIAgent } from '../src/agent/backends/openai.js';
import { ModelEndpointError } from '../src/agent/backends/endpoint-error.js';
import type { EpisodeInfo } from '../src/agent/types.js';
import type { HistoryItem } from '../src/tasks/types.js';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number, body: Buffer) => void;

async function withServer(handler: Handler, fn: (url: string, hits: () => number) => Promise<void>): Promise<void> {
  let n = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, ++n, Buffer.concat(chunks)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, () => n);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

const ok = (content: string | null, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    id: 'c',
    object: 'chat.completion',
    created: 0,
    model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content, ...extra }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  });
const send = (res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
};

const history: HistoryItem[] = [
  { role: 'user', content: 'Task: "quote" \\ é ✓ \u2028 <tag>\n' + 'x'.repeat(3000) },
  { role: 'agent', content: 'GET http://localhost:8080/fhir/Patient?name=A B' },
  { role: 'user', content: 'Here is the response from the GET request:\n{"resourceType": "Bundle"}' },
];
const episode = (signal?: AbortSignal): EpisodeInfo => ({
  index: 0,
  task: { id: 'task1_1', instruction: 'i', context: '' },
  apiBase: 'http://localhost:8080/fhir/',
  signal,
});
const agent = (url: string, o: { maxRetries?: number; timeoutMs?: number; key?: string } = {}) =>
  new OpenAIAgent({
    model: 'm',
    baseUrls: [url],
    apiKeyEnv: 'K',
    env: { K: o.key ?? 'sk-wire-secret' },
    maxRetries: o.maxRetries ?? 0,
    timeoutMs: o.timeoutMs ?? 10_000,
    extra: { chat_template_kwargs: { enable_thinking: false }, top_p: 1 },
  });
const failure = async (p: Promise<unknown>): Promise<any> =>
  p.then(
    () => assert.fail('expected a rejection'),
    (e) => e,
  );

test('wire: the body is byte for byte requestBody (model, temperature 0, max_tokens, extra, messages); SDK headers and key', async () => {
  let seen: { body: Buffer; headers: IncomingHttpHeaders; url?: string; method?: string } | undefined;
  await withServer(
    (req, res, _n, body) => {
      seen = { body, headers: req.headers, url: req.url, method: req.method };
      send(res, 200, ok('FINISH([1])'));
    },
    async (url) => {
      const a = agent(url);
      const r = await a.act(history, episode());
      assert.deepEqual(r, { content: 'FINISH([1])', usage: { promptTokens: 3, completionTokens: 2 } });
      assert.equal(seen!.method, 'POST');
      assert.equal(seen!.url, '/v1/chat/completions');
      assert.ok(seen!.body.equals(a.requestBody(history)), 'same bytes as the serialised request');
      const body = JSON.parse(seen!.body.toString('utf8'));
      assert.deepEqual(Object.keys(body), ['model', 'temperature', 'max_tokens', 'chat_template_kwargs', 'top_p', 'messages']);
      assert.equal(body.temperature, 0);
      assert.equal(body.max_tokens, 2048);
      const h = seen!.headers;
      assert.equal(h.authorization, 'Bearer sk-wire-secret');
      assert.equal(h['content-type'], 'application/json');
      assert.equal(h['user-agent'], `OpenAI/JS ${SDK_VERSION}`);
      assert.equal(h['x-stainless-retry-count'], '0');
      assert.equal(h['x-stainless-timeout'], undefined, 'the SDK names the timeout only when it is set per request');
      assert.equal(h['x-stainless-lang'], 'js');
      assert.equal(h['x-stainless-package-version'], SDK_VERSION);
      assert.equal(h['content-length'], String(seen!.body.length));
      assert.ok(!JSON.stringify(a.config).includes('sk-wire-secret'), 'the key is never in the recorded config');
    },
  );
});

test('non-retryable errors: vLLM context-limit 400 → contextLimit; 401, 404 text and 422 JSON keep their text; one attempt each', async () => {
  const vllm = JSON.stringify({
    object: 'error',
    message: "This model's maximum context length is 32768 tokens.",
    type: 'BadRequestError',
    param: null,
    code: 400,
  });
  await withServer(
    (_req, res) => send(res, 400, vllm),
    async (url, hits) => {
      assert.deepEqual(await agent(url, { maxRetries: 3 }).act(history, episode()), { content: '', contextLimit: true });
      assert.equal(hits(), 1);
    },
  );
  const cases: Array<[number, string, string, RegExp]> = [
    [
      401,
      JSON.stringify({ error: { message: 'Incorrect API key provided', code: 'invalid_api_key' } }),
      'application/json',
      /^401 Incorrect API key provided$/,
    ],
    [404, 'no such route', 'text/plain', /^404 no such route$/],
    [422, JSON.stringify({ detail: [{ msg: 'field required' }] }), 'application/json', /^422 \{"detail":\[\{"msg":"field required"\}\]\}$/],
    [
      400,
      JSON.stringify({ object: 'error', message: 'Invalid model name', code: 400 }),
      'application/json',
      /^400 \{"object":"error","message":"Invalid model name"/,
    ],
  ];
  for (const [status, text, type, re] of cases) {
    await withServer(
      (_req, res) => send(res, status, text, { 'content-type': type, 'x-request-id': 'req-1' }),
      async (url, hits) => {
        const e = await failure(agent(url, { maxRetries: 3 }).act(history, episode()));
        assert.ok(e instanceof APIError, String(e));
        assert.equal(e.status, status);
        assert.match(e.message, re);
        assert.equal(e.requestID, 'req-1');
        assert.equal(hits(), 1, `${status}: not retried`);
      },
    );
  }
});

test('429/5xx are retried following retry-after-ms; x-should-retry: false is obeyed; the last error is thrown', async () => {
  const retryCounts: string[] = [];
  await withServer(
    (req, res, n) => {
      retryCounts.push(String(req.headers['x-stainless-retry-count']));
      if (n % 3 === 0) send(res, 200, ok('FINISH([2])'));
      else send(res, n % 3 === 1 ? 429 : 503, '{"error":{"message":"busy"}}', { 'retry-after-ms': '5' });
    },
    async (url, hits) => {
      const t = performance.now();
      assert.equal((await agent(url, { maxRetries: 4 }).act(history, episode())).content, 'FINISH([2])');
      assert.equal(hits(), 3);
      assert.deepEqual(retryCounts, ['0', '1', '2']);
      assert.ok(performance.now() - t < 2000, 'waits follow retry-after-ms, not the 0.5 s default');
    },
  );
  await withServer(
    (_req, res) => send(res, 500, '{"error":{"message":"down"}}', { 'x-should-retry': 'false' }),
    async (url, hits) => {
      const e = await failure(agent(url, { maxRetries: 4 }).act(history, episode()));
      assert.equal(e.status, 500);
      assert.equal(e.message, '500 down');
      assert.equal(hits(), 1);
    },
  );
  await withServer(
    (_req, res) => send(res, 429, 'slow down', { 'retry-after-ms': '1', 'content-type': 'text/plain' }),
    async (url, hits) => {
      const e = await failure(agent(url, { maxRetries: 2 }).act(history, episode()));
      assert.equal(e.message, '429 slow down');
      assert.equal(hits(), 3, 'first attempt + --max-retries');
    },
  );
});

test('resets and timeouts are retried; refused connections, timeouts and aborts end as the SDK errors', async () => {
  await withServer(
    (req, res, n) => (n === 1 ? req.socket.destroy() : send(res, 200, ok('FINISH([3])'))),
    async (url, hits) => {
      assert.equal((await agent(url, { maxRetries: 2 }).act(history, episode())).content, 'FINISH([3])');
      assert.equal(hits(), 2);
    },
  );
  await withServer(
    () => {},
    async (url, hits) => {
      const e = await failure(agent(url, { maxRetries: 1, timeoutMs: 100 }).act(history, episode()));
      assert.ok(e instanceof APIConnectionTimeoutError, String(e));
      assert.equal(e.message, 'Request timed out.');
      assert.equal(hits(), 2, 'the timed-out attempt was retried once');
      const ctl = new AbortController();
      setTimeout(() => ctl.abort(), 50);
      const t = performance.now();
      assert.ok((await failure(agent(url, { maxRetries: 3 }).act(history, episode(ctl.signal)))) instanceof APIUserAbortError);
      assert.ok(performance.now() - t < 2000, 'the abort ends the request at once');
    },
  );
  const e = await failure(agent('http://127.0.0.1:9/v1').act(history, episode()));
  assert.equal(e.constructor, APIConnectionError);
  assert.equal(e.message, 'Connection error.');
});

test('2xx replies that are not chat completions throw ModelEndpointError with a one-line diagnosis', async () => {
  const cases: Array<[string, string, RegExp]> = [
    [
      'text/html; charset=utf-8',
      '<!doctype html><html><body>Chat UI</body></html>',
      /^the model endpoint answered HTML, not JSON \(http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions; is --base-url the \/v1 API root\?\)$/,
    ],
    ['application/json', '<html><body>proxy</body></html>', /^the model endpoint answered HTML, not JSON \(/],
    [
      'application/json',
      '{"id": "chatcmpl-1", "choi',
      /^the model endpoint answered application\/json that is not JSON \(.*: "\{\\"id\\": \\"chatcmpl-1\\", \\"choi"\); is --base-url/,
    ],
    ['application/json', '', /^the model endpoint answered application\/json that is not JSON \(.*: ""\)/],
    ['text/plain', 'OK', /^the model endpoint answered text\/plain that is not JSON \(.*: "OK"\)/],
    [
      'application/json',
      '{"detail":"Not Found"}',
      /^the model endpoint answered JSON without "choices" \(.*: \{"detail":"Not Found"\}\); is --base-url an OpenAI-compatible \/v1 API root\?$/,
    ],
  ];
  for (const [type, text, re] of cases) {
    await withServer(
      (_req, res) => send(res, 200, text, { 'content-type': type }),
      async (url, hits) => {
        const e = await failure(agent(url, { maxRetries: 3 }).act(history, episode()));
        assert.ok(e instanceof ModelEndpointError, `${type} ${text}: ${e}`);
        assert.match(e.message, re);
        assert.ok(!e.message.includes('\n'), 'one line');
        assert.equal(hits(), 1, 'not retried');
      },
    );
  }
});

test('reasoning-only replies: content empty, the field that carries the text is named', async () => {
  for (const field of ['reasoning_content', 'reasoning'] as const) {
    await withServer(
      (_req, res) => send(res, 200, ok(null, { [field]: 'Okay, the user wants' })),
      async (url) => {
        assert.deepEqual(await agent(url).act(history, episode()), { content: '', usage: { promptTokens: 3, completionTokens: 2 }, reasoningOnly: field });
      },
    );
  }
});
