import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { forkMockOpenAI, repliesScript } from '../src/agent/mock-openai-process.js';
import { OpenAIAgent } from '../src/agent/backends/openai.js';
import { runEpisode } from '../src/agent/loop.js';
import type { HistoryItem, TaskCase } from '../src/tasks/types.js';
import type { FhirTransport } from '../src/fhir/types.js';

const task = { id: 'task1_1', instruction: 'What is the MRN?', context: '', sol: [], eval_MRN: 'S1' } as unknown as TaskCase;
const noFhir: FhirTransport = async () => ({ status: 200, contentType: 'application/fhir+json', body: '{"resourceType":"Bundle","total":0}' });

test('forkMockOpenAI: a separate process answers recorded replies by prompt and turn, counts calls, and exits on close', async () => {
  const mock = await forkMockOpenAI({
    replies: { 'P1 prompt': ['GET http://localhost:8080/fhir/Patient?identifier=S1', 'FINISH(["S1"])'] },
    latencyMs: 5,
    model: 'mock-rec',
  });
  try {
    assert.notEqual(mock.pid, process.pid);
    assert.match(mock.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const agent = new OpenAIAgent({ model: 'mock-rec', baseUrls: [mock.url], env: {}, maxRetries: 0 });
    const r = await runEpisode({ index: 0, task, agent, fhir: noFhir, prompt: 'P1 prompt' });
    assert.equal(r.output.status, 'completed');
    assert.equal(r.output.result, '["S1"]');
    assert.equal(r.rounds, 2);
    // an unknown prompt is a server error (500), never a silent answer
    const bad = await runEpisode({ index: 1, task, agent, fhir: noFhir, prompt: 'not recorded' });
    assert.equal(bad.output.status, 'running');
    assert.match(bad.agentError ?? '', /^500 /);
    const s = await mock.stats();
    assert.equal(s.completions, 2);
    assert.equal(s.requests, 3);
    assert.ok(s.promptTokens > 0);
  } finally {
    await mock.close();
  }
  assert.throws(() => process.kill(mock.pid, 0), /ESRCH/);
});

test('repliesScript: by first user message and turn; unknown prompt or turn throws', () => {
  const script = repliesScript({ p: ['a', 'b'] });
  const req = (prompt: string, turn: number) => ({ model: 'm', messages: [], turn, prompt, attempt: 1, body: {}, headers: {} });
  assert.equal(script(req('p', 0)), 'a');
  assert.equal(script(req('p', 1)), 'b');
  assert.throws(() => script(req('p', 2)), /turn 2/);
  assert.throws(() => script(req('q', 0)), /no recorded replies/);
});

test('openai backend: request bodies are byte for byte JSON.stringify({...body, messages}) across a growing history', async () => {
  const raw: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      raw.push(Buffer.concat(chunks).toString('utf8'));
      const text = JSON.stringify({
        id: 'x',
        object: 'chat.completion',
        created: 0,
        model: 'm',
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  try {
    const cases: Array<Record<string, unknown> | undefined> = [
      undefined,
      { chat_template_kwargs: { enable_thinking: false }, top_p: 0.5 },
      { messages: [{ role: 'system', content: 'x' }], seed: 1 },
    ];
    for (const extra of cases) {
      raw.length = 0;
      const agent = new OpenAIAgent({ model: 'm', baseUrls: [url], env: {}, extra, temperature: 0.25, maxTokens: 77 });
      const history: HistoryItem[] = [{ role: 'user', content: 'prompt "quoted" \\ \u2028 é 🙂\n' }];
      const expected: string[] = [];
      for (let round = 0; round < 3; round++) {
        const msgs = history.map((h) => ({ role: h.role === 'agent' ? 'assistant' : 'user', content: h.content }));
        expected.push(JSON.stringify({ model: 'm', temperature: 0.25, max_tokens: 77, ...(extra ?? {}), messages: msgs }));
        const reply = await agent.act(history, { index: 0, task, apiBase: 'http://localhost:8080/fhir/' });
        assert.equal(reply.content, 'ok');
        history.push({ role: 'agent', content: reply.content }, { role: 'user', content: `response ${round} {'a': 1}` });
      }
      // an item edited in place is serialised afresh
      history[0].content = 'edited';
      const msgs = history.map((h) => ({ role: h.role === 'agent' ? 'assistant' : 'user', content: h.content }));
      expected.push(JSON.stringify({ model: 'm', temperature: 0.25, max_tokens: 77, ...(extra ?? {}), messages: msgs }));
      await agent.act(history, { index: 0, task, apiBase: 'http://localhost:8080/fhir/' });
      assert.deepEqual(raw, expected);
    }
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
