/**
 * `--reply-cache`: model replies keyed by the full request. A run fills the cache; the same run again is answered from
 * it without a single model request, with the same verdicts; the API key never reaches the file; a torn last line
 * (a killed run) is cut off; a different request (another protocol) misses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEval } from '../src/eval/run.js';
import { openBackend, officialGrader, openTaskSet } from '../src/eval/setup.js';
import { createAgent, expertPolicy } from '../src/agent/create.js';
import { ReplyCache } from '../src/agent/backends/reply-cache.js';
import { startMockOpenAI, type MockRequest } from '../src/agent/mock-openai.js';
import { cli } from './helpers/cli.js';

const API = 'http://localhost:8080/fhir/';
const KEY = 'sk-reply-cache-secret-123';

test('a second run is answered from the cache: no model request, same verdicts, no key in the file', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-cache-'));
  const taskSet = openTaskSet('medagentbench-v2');
  const backend = await openBackend({ apiBase: API, world: 'medagentbench' });
  // the mock plays the expert from the conversation it is sent
  const expert = async (req: MockRequest) => {
    const task = taskSet.tasks.find((t) => req.prompt.endsWith(`Question: ${t.instruction}`))!;
    const history = req.messages.map((m) => ({ role: m.role === 'assistant' ? ('agent' as const) : ('user' as const), content: m.content }));
    return expertPolicy(task, history, { index: 0, task, apiBase: API });
  };
  const mock = await startMockOpenAI({ script: expert, requireKey: KEY });
  const cachePath = join(tmp, 'cache', 'replies.jsonl');
  const run = async (out: string, cache: ReplyCache, baseUrl = mock.url) =>
    runEval({
      out: join(tmp, out),
      taskSet,
      agent: createAgent('openai:mock', { baseUrls: [baseUrl], env: { OPENAI_API_KEY: KEY }, replyCache: cache, maxRetries: 0 }),
      backend,
      grade: officialGrader,
      apiBase: API,
      limit: 20,
      concurrency: 4,
      progress: false,
    });
  try {
    const first = new ReplyCache(cachePath);
    const a = await run('a', first);
    const calls = mock.stats.completions;
    assert.ok(calls >= 40, `${calls} calls`);
    assert.equal(first.misses, calls);
    assert.equal(first.size, calls);
    const text = readFileSync(cachePath, 'utf8');
    assert.equal(text.trim().split('\n').length, calls);
    assert.ok(!text.includes(KEY));
    // a killed run's torn line is cut off; the next run is answered entirely from the cache, even with the model gone
    appendFileSync(cachePath, '{"key": "abc", "compl');
    await mock.close();
    const second = new ReplyCache(cachePath);
    assert.equal(second.size, calls);
    const b = await run('b', second);
    assert.equal(second.hits, calls);
    assert.equal(second.misses, 0);
    assert.equal(b.summary!.correct, a.summary!.correct);
    assert.equal(b.summary!.correct, 20);
    assert.equal(readFileSync(cachePath, 'utf8'), text);
    assert.equal(readFileSync(join(tmp, 'b', 'runs.jsonl'), 'utf8').length, readFileSync(join(tmp, 'a', 'runs.jsonl'), 'utf8').length);
  } finally {
    await mock.close().catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('--reply-cache without a file keeps the cache beside the run', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-cache-beside-'));
  const mock = await startMockOpenAI({ script: () => 'FINISH([])' });
  try {
    const out = join(tmp, 'run');
    const r = await cli('eval', '--agent', 'openai:mock', '--base-url', mock.url, '--limit', '2', '--reply-cache', '--out', out, '--no-progress');
    assert.equal(r.code, 0, r.err);
    assert.equal(readFileSync(join(out, 'reply-cache.jsonl'), 'utf8').trim().split('\n').length, 2);
    assert.match(r.err, /reply cache: 0 request\(s\) answered from .*reply-cache\.jsonl, 2 sent to the model/);
  } finally {
    await mock.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('--reply-cache: only with an openai agent; a file that is not a cache is refused in one line', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-cache-cli-'));
  try {
    const r1 = await cli('eval', '--agent', 'oracle', '--reply-cache', join(tmp, 'c.jsonl'), '--out', join(tmp, 'o'));
    assert.equal(r1.code, 2);
    assert.match(r1.err, /^ehrgym: --reply-cache: only with --agent openai:<model>/);
    const bad = join(tmp, 'bad.jsonl');
    appendFileSync(bad, '{"hello": 1}\n');
    const r2 = await cli('eval', '--agent', 'openai:m', '--base-url', 'http://127.0.0.1:9/v1', '--reply-cache', bad, '--out', join(tmp, 'o'));
    assert.equal(r2.code, 2);
    assert.match(r2.err, /--reply-cache: .*bad\.jsonl:1: not a reply-cache line/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
