import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIUserAbortError } from 'openai';
import { postChatCompletion } from '../src/agent/backends/chat-http.js';
import { fetchKeepingErrorText } from '../src/agent/backends/openai.js';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

async function withServer(handler: Handler, fn: (url: string, hits: () => number) => Promise<void>): Promise<void> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => handler(req, res, ++n));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, () => n);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

const body = JSON.stringify({ model: 'm', temperature: 0, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
const ok = {
  id: 'c',
  object: 'chat.completion',
  created: 0,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'FINISH([1])' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
};
const send = (res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
};

/** What the SDK (with the backend's fetch) throws or returns for the same server, next to ours. */
async function both(url: string, opts: { maxRetries: number; timeoutMs?: number }) {
  const sdk = new OpenAI({ apiKey: 'k', baseURL: url, maxRetries: opts.maxRetries, timeout: opts.timeoutMs ?? 10_000, fetch: fetchKeepingErrorText });
  const settle = async (p: Promise<unknown>) =>
    p.then(
      (v) => ({ ok: true as const, v }),
      (e) => ({ ok: false as const, e }),
    );
  const a = await settle(sdk.chat.completions.create(JSON.parse(body)));
  const b = await settle(postChatCompletion({ baseURL: url, apiKey: 'k', maxRetries: opts.maxRetries, timeoutMs: opts.timeoutMs ?? 10_000 }, body));
  return { a, b };
}

function sameError(a: { ok: boolean; e?: any }, b: { ok: boolean; e?: any }): void {
  assert.equal(a.ok, false);
  assert.equal(b.ok, false);
  assert.equal(b.e.constructor, a.e.constructor);
  assert.equal(b.e.message, a.e.message);
  assert.equal(b.e.status, a.e.status);
  assert.deepEqual(b.e.error, a.e.error);
}

test("chat-http: success, and non-retryable errors (vLLM 400, 401, 404 text, 422 JSON) equal the SDK's", async () => {
  await withServer(
    (_req, res) => send(res, 200, JSON.stringify(ok)),
    async (url) => {
      const { a, b } = await both(url, { maxRetries: 0 });
      assert.ok(a.ok && b.ok);
      assert.deepEqual((b as any).v.choices, (a as any).v.choices);
      assert.deepEqual((b as any).v.usage, ok.usage);
    },
  );
  const cases: Array<[number, string, string]> = [
    [
      400,
      JSON.stringify({ object: 'error', message: "This model's maximum context length is 32768 tokens.", type: 'BadRequestError', param: null, code: 400 }),
      'application/json',
    ],
    [401, JSON.stringify({ error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } }), 'application/json'],
    [404, 'no such route', 'text/plain'],
    [422, JSON.stringify({ detail: [{ msg: 'field required' }] }), 'application/json'],
  ];
  for (const [status, text, type] of cases) {
    await withServer(
      (_req, res) => send(res, status, text, { 'content-type': type, 'x-request-id': 'req-1' }),
      async (url, hits) => {
        const { a, b } = await both(url, { maxRetries: 3 });
        sameError(a, b);
        assert.equal((b as any).e.requestID, 'req-1');
        assert.equal(hits(), 2, `${status}: one attempt each, not retried`);
      },
    );
  }
});

test("chat-http: 429/500 retried with retry-after-ms, x-should-retry obeyed, final error equals the SDK's", async () => {
  await withServer(
    (_req, res, n) =>
      n % 3 === 0 ? send(res, 200, JSON.stringify(ok)) : send(res, n % 3 === 1 ? 429 : 503, '{"error":{"message":"busy"}}', { 'retry-after-ms': '5' }),
    async (url, hits) => {
      const t = performance.now();
      const { a, b } = await both(url, { maxRetries: 4 });
      assert.ok(a.ok && b.ok);
      assert.equal(hits(), 6);
      assert.ok(performance.now() - t < 2000, 'waits follow retry-after-ms, not the 0.5 s default');
    },
  );
  await withServer(
    (_req, res) => send(res, 500, '{"error":{"message":"down"}}', { 'x-should-retry': 'false' }),
    async (url, hits) => {
      const { a, b } = await both(url, { maxRetries: 4 });
      sameError(a, b);
      assert.equal(hits(), 2);
    },
  );
  await withServer(
    (_req, res) => send(res, 429, 'slow down', { 'retry-after-ms': '1', 'content-type': 'text/plain' }),
    async (url, hits) => {
      const { a, b } = await both(url, { maxRetries: 2 });
      sameError(a, b);
      assert.match((b as any).e.message, /^429 slow down$/);
      assert.equal(hits(), 6);
    },
  );
});

test("chat-http: resets and timeouts are retried; refused connections, timeouts and aborts end as the SDK's errors", async () => {
  await withServer(
    (req, res, n) => (n === 1 ? req.socket.destroy() : send(res, 200, JSON.stringify(ok))),
    async (url, hits) => {
      const r = await postChatCompletion({ baseURL: url, apiKey: 'k', maxRetries: 2, timeoutMs: 5000 }, body);
      assert.equal(r.choices[0].message.content, 'FINISH([1])');
      assert.equal(hits(), 2);
    },
  );
  await withServer(
    () => {},
    async (url) => {
      const { a, b } = await both(url, { maxRetries: 0, timeoutMs: 100 });
      assert.ok(!a.ok && !b.ok);
      assert.ok((b as any).e instanceof APIConnectionTimeoutError);
      assert.equal((b as any).e.message, (a as any).e.message);
      const ctl = new AbortController();
      setTimeout(() => ctl.abort(), 50);
      await assert.rejects(postChatCompletion({ baseURL: url, apiKey: 'k', maxRetries: 3, timeoutMs: 10_000 }, body, ctl.signal), APIUserAbortError);
    },
  );
  const { a, b } = await both('http://127.0.0.1:9/v1', { maxRetries: 0 });
  assert.ok(!a.ok && !b.ok);
  assert.equal((b as any).e.constructor, APIConnectionError);
  assert.equal((b as any).e.message, (a as any).e.message);
});
