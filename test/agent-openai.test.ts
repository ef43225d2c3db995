import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMockOpenAI, type MockOpenAIServer, type MockRequest, type MockResponse } from '../src/agent/mock-openai.js';
import { createAgent, AgentConfigError } from '../src/agent/create.js';
import { OpenAIAgent, isContextLimitText } from '../src/agent/backends/openai.js';
import { runEpisode } from '../src/agent/loop.js';
import type { FhirHttpRequest, FhirHttpResponse } from '../src/fhir/types.js';
import type { TaskCase } from '../src/tasks/types.js';

const fhir = async (req: FhirHttpRequest): Promise<FhirHttpResponse> => ({
  status: 200,
  contentType: 'application/fhir+json;charset=utf-8',
  body: `{"url": ${JSON.stringify(req.url)}}`,
});

// Behaviour chosen by a tag in the question, so one scripted model plays every case.
const replies: Record<string, Array<MockResponse>> = {
  prose: ['The patient is 60 years old.'],
  think: ['<think>look it up</think>\nFINISH([60])'],
  fencedpost: ['```\nPOST http://localhost:8080/fhir/Observation\n{"resourceType": "Observation"}\n```', 'FINISH([])'],
  jsonfence: ['```json\nFINISH(["S1"])\n```'],
  lower: ['finish([60])'],
  badpost: ['POST http://localhost:8080/fhir/Observation\n{"resourceType": Observation}', 'FINISH([])'],
  gets: Array.from({ length: 9 }, (_, i) => `GET http://localhost:8080/fhir/Patient?identifier=S${i}`),
  ctx: ['GET http://localhost:8080/fhir/Patient?identifier=S1', { fault: 'context-limit' }],
  ratelimit: ['FINISH([1])'],
  flaky: ['FINISH([2])'],
  reset: ['FINISH([3])'],
  toolcode: ['```tool_code\nGET http://localhost:8080/fhir/Patient?name=Peter Stafford\n```', 'FINISH(["S6534835"])'],
};

function script(req: MockRequest): MockResponse {
  const tag = /TAG:(\w+)/.exec(req.prompt)![1];
  if (tag === 'ratelimit' && req.attempt <= 2) return { fault: 'rate-limit', retryAfterMs: 5 };
  if (tag === 'flaky' && req.attempt === 1) return { fault: 'server-error' };
  if (tag === 'reset' && req.attempt === 1) return { fault: 'reset' };
  return replies[tag][req.turn];
}

let mock: MockOpenAIServer;
before(async () => {
  mock = await startMockOpenAI({ script, model: 'm1' });
});
after(async () => {
  await mock.close();
});

const task = (tag: string): TaskCase => ({ id: 'task2_1', instruction: `TAG:${tag}`, context: '' });
const env = { TEST_KEY: 'sk-test-secret-123' };
const agent = () =>
  createAgent('openai:m1', { baseUrls: [mock.url], apiKeyEnv: 'TEST_KEY', env, maxRetries: 3, extra: { chat_template_kwargs: { enable_thinking: false } } });

async function play(tag: string) {
  return runEpisode({ index: 0, task: task(tag), agent: agent(), fhir, prompt: `prompt TAG:${tag}` });
}

test('statuses for malformed replies match the official loop', async () => {
  assert.equal((await play('prose')).output.status, 'agent invalid action');
  assert.equal((await play('think')).output.status, 'agent invalid action');
  assert.equal((await play('jsonfence')).output.status, 'agent invalid action');
  assert.equal((await play('lower')).output.status, 'agent invalid action');
  const fenced = await play('fencedpost');
  assert.equal(fenced.output.status, 'completed');
  assert.match(fenced.output.history![2].content, /^POST request accepted and executed successfully/);
  assert.ok(fenced.output.history![1].content.startsWith('```\nPOST'), 'raw reply kept');
  const bad = await play('badpost');
  assert.equal(bad.output.history![2].content, 'Invalid POST request');
  assert.equal(bad.output.status, 'completed');
  const gets = await play('gets');
  assert.equal(gets.output.status, 'task limit reached');
  assert.equal(gets.rounds, 8);
  const tc = await play('toolcode');
  assert.match(tc.output.history![2].content, /name=Peter%20Stafford&_format=json/);
  assert.equal(tc.output.result, '["S6534835"]');
});

test('context-limit 400 (vLLM wording) ends the episode with agent context limit', async () => {
  const r = await play('ctx');
  assert.equal(r.output.status, 'agent context limit');
  assert.equal(r.output.result, null);
  assert.equal(r.output.history!.length, 3);
  assert.ok(isContextLimitText("This model's maximum context length is 32768 tokens"));
  assert.ok(!isContextLimitText('Invalid model name'));
});

test('429, 500 and connection resets are retried by the SDK', async () => {
  const before = { ...mock.stats.faults };
  assert.equal((await play('ratelimit')).output.result, '[1]');
  assert.equal((await play('flaky')).output.result, '[2]');
  assert.equal((await play('reset')).output.result, '[3]');
  assert.equal((mock.stats.faults['rate-limit'] ?? 0) - (before['rate-limit'] ?? 0), 2);
  assert.equal((mock.stats.faults['server-error'] ?? 0) - (before['server-error'] ?? 0), 1);
  assert.equal((mock.stats.faults['reset'] ?? 0) - (before['reset'] ?? 0), 1);
});

test('request shape: roles, no system message, temperature 0, max_tokens 2048, extra fields, key', async () => {
  const n = mock.stats.bodies.length;
  await play('fencedpost');
  const body = mock.stats.bodies[n + 1] as any;
  assert.equal(body.model, 'm1');
  assert.equal(body.temperature, 0);
  assert.equal(body.max_tokens, 2048);
  assert.deepEqual(body.chat_template_kwargs, { enable_thinking: false });
  assert.deepEqual(
    body.messages.map((m: any) => m.role),
    ['user', 'assistant', 'user'],
  );
  assert.ok(mock.stats.authorizations.has('Bearer sk-test-secret-123'));
  const a = agent();
  assert.ok(!JSON.stringify(a.config).includes('sk-test-secret-123'));
  assert.equal(a.config.apiKeyEnv, 'TEST_KEY');
});

test('usage is summed over the episode', async () => {
  const r = await play('fencedpost');
  assert.ok(r.usage.promptTokens > 0 && r.usage.completionTokens > 0);
});

test('missing key: clear error for remote endpoints, allowed for local ones', () => {
  assert.throws(
    () => createAgent('openai:gpt-4o', { baseUrls: ['https://api.example.com/v1'], apiKeyEnv: 'NOPE_KEY', env: {} }),
    (e: unknown) => e instanceof AgentConfigError && /NOPE_KEY/.test((e as Error).message),
  );
  assert.ok(createAgent('openai:m', { baseUrls: ['http://127.0.0.1:9/v1'], env: {} }) instanceof OpenAIAgent);
  assert.throws(() => createAgent('bogus'), /unknown agent/);
});

test('several base URLs share load, sticky by task index', async () => {
  const other = await startMockOpenAI({ script: () => 'FINISH(["b"])' });
  try {
    const a = createAgent('openai:m1', { baseUrls: [mock.url, other.url], env: {}, apiKeyEnv: 'X' });
    const r0 = await runEpisode({ index: 0, task: task('ratelimit'), agent: a, fhir, prompt: 'p TAG:flaky' });
    const r1 = await runEpisode({ index: 1, task: task('ratelimit'), agent: a, fhir, prompt: 'p TAG:flaky' });
    assert.equal(r0.output.result, '[2]');
    assert.equal(r1.output.result, '["b"]');
  } finally {
    await other.close();
  }
});

test('preflight: unreachable endpoint fails, reachable one passes', async () => {
  const ok = new OpenAIAgent({ model: 'm1', baseUrls: [mock.url], env: {} });
  await ok.preflight();
  const down = new OpenAIAgent({ model: 'm1', baseUrls: ['http://127.0.0.1:9/v1'], env: {}, maxRetries: 0 });
  await assert.rejects(down.preflight(), /unreachable/);
});

test('timeouts: a hung request is aborted and retried', async () => {
  const slow = await startMockOpenAI({ script: (req) => (req.attempt === 1 ? { fault: 'hang', ms: 2000 } : 'FINISH(["late"])') });
  try {
    const a = createAgent('openai:m', { baseUrls: [slow.url], env: {}, timeoutMs: 200, maxRetries: 2 });
    const r = await runEpisode({ index: 0, task: task('x'), agent: a, fhir, prompt: 'p' });
    assert.equal(r.output.result, '["late"]');
    assert.equal(slow.stats.faults['hang'], 1);
  } finally {
    await slow.close();
  }
});

test('preflight: a refused key is reported before any episode runs', async () => {
  const locked = await startMockOpenAI({ script: () => 'FINISH([])', requireKey: 'right-key' });
  try {
    const bad = new OpenAIAgent({ model: 'm', baseUrls: [locked.url], apiKeyEnv: 'K', env: { K: 'wrong-key' } });
    await assert.rejects(bad.preflight(), /refused the API key \(401\)/);
    const good = new OpenAIAgent({ model: 'm', baseUrls: [locked.url], apiKeyEnv: 'K', env: { K: 'right-key' } });
    await good.preflight();
  } finally {
    await locked.close();
  }
});
