/**
 * A broken or misconfigured model endpoint is stopped with a one-line diagnosis (exit 1), never scored as a model
 * that answers nothing: an HTML page or JSON that is not a chat completion stops the run at once; empty or
 * reasoning-only replies stop it after EMPTY_REPLY_STREAK episodes in a row. A lone empty reply is recorded under
 * the official status in the AgentBench files and as `model empty reply` in ours. Real CLI against the mock server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { startMockOpenAI, type MockScript } from '../src/agent/mock-openai.js';
import { EMPTY_REPLY_STREAK } from '../src/eval/run.js';
import { SAMPLE_STATUSES } from '../src/eval/score.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'ehrgym-endpoint-'));
const lines = (p: string) =>
  existsSync(p)
    ? readFileSync(p, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];

async function evalWith(script: MockScript, out: string, ...extra: string[]) {
  const mock = await startMockOpenAI({ script });
  try {
    const r = await cli('eval', '--agent', 'openai:mock', '--base-url', mock.url, '--out', out, '--no-progress', '--max-retries', '0', ...extra);
    return { ...r, chats: mock.stats.bodies.length };
  } finally {
    await mock.close();
  }
}

test('HTML or a non-chat JSON body with 200: the run stops at once, nothing recorded', async () => {
  for (const [fault, re] of [
    ['html', /^ehrgym: the model endpoint answered HTML, not JSON \(http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions; is --base-url the \/v1 API root\?\)\n$/],
    [
      'not-chat',
      /^ehrgym: the model endpoint answered JSON without "choices" \(.*: \{"detail":"Not Found"\}\); is --base-url an OpenAI-compatible \/v1 API root\?\n$/,
    ],
  ] as const) {
    const out = join(tmp(), 'run');
    const r = await evalWith(() => ({ fault }), out, '--concurrency', '2', '--limit', '20');
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, re);
    assert.ok(r.chats <= 2, `stopped after the requests in flight, not ${r.chats}`);
    assert.deepEqual(lines(join(out, 'runs.jsonl')), []);
    assert.deepEqual(lines(join(out, 'error.jsonl')), []);
    assert.equal(existsSync(join(out, 'summary.json')), false, 'no score is written');
  }
});

test('empty or reasoning-only replies in a row: stopped with the diagnosis; --resume after the fix runs them', async () => {
  assert.equal(EMPTY_REPLY_STREAK, 5);
  const cases: Array<[MockScript, RegExp]> = [
    [
      () => '',
      /^ehrgym: the model replied with empty content \(5 episodes in a row: task1_1, task1_2, task1_3, task1_4, task1_5\): check the model server, --extra and --max-tokens; stopped without scoring\n$/,
    ],
    [
      () => ({ content: null, reasoning: 'Okay, the user wants' }),
      /^ehrgym: the model's replies carry only reasoning_content and no content \(5 episodes in a row: .*\): disable thinking \(--extra '\{"chat_template_kwargs":\{"enable_thinking":false\}\}'\) or raise --max-tokens; stopped without scoring\n$/,
    ],
    [() => ({ content: '', reasoning: 'Hmm.', reasoningField: 'reasoning' }), /^ehrgym: the model's replies carry only reasoning and no content /],
  ];
  for (const [script, re] of cases) {
    const out = join(tmp(), 'run');
    const r = await evalWith(script, out, '--concurrency', '1', '--limit', '12');
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, re);
    assert.equal(r.chats, 5, 'stopped after the fifth empty reply');
    assert.deepEqual(lines(join(out, 'runs.jsonl')), [], 'the episodes that showed the fault are not recorded');
    assert.equal(existsSync(join(out, 'summary.json')), false);
  }
  // fewer episodes than the streak: all of them empty is enough
  const small = join(tmp(), 'run');
  let r = await evalWith(() => '', small, '--limit', '2');
  assert.equal(r.code, 1);
  assert.match(r.err, /empty content \(2 episodes in a row: task1_1, task1_2\)/);
  // the endpoint fixed, --resume runs the episodes that were not recorded
  r = await evalWith(() => 'FINISH([])', small, '--limit', '2', '--resume', '--json');
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).statusCounts.completed, 2);
});

test('a lone empty reply is recorded: official status in the AgentBench files, `model empty reply` in ours', async () => {
  const out = join(tmp(), 'run');
  // task1_2 and task1_4..task1_7 (four in a row, below the streak) reply nothing; the rest finish
  const empty = new Set(['task1_2', 'task1_4', 'task1_5', 'task1_6', 'task1_7']);
  const r = await evalWith(
    (req) => (empty.has(taskOf(req.prompt)) ? '  \n' : 'FINISH(["Patient not found"])'),
    out,
    '--concurrency',
    '1',
    '--limit',
    '9',
    '--json',
  );
  assert.equal(r.code, 0, r.err);
  const s = JSON.parse(r.out);
  assert.equal(s.statusCounts['model empty reply'], 5);
  assert.equal(s.statusCounts.completed, 4);
  const runs = lines(join(out, 'runs.jsonl'));
  assert.equal(runs.length, 9);
  assert.deepEqual([...new Set(runs.map((l) => l.output.status))].sort(), ['agent invalid action', 'completed']);
  const overall = JSON.parse(readFileSync(join(out, 'overall.json'), 'utf8'));
  assert.deepEqual(Object.keys(overall.validation).slice(0, SAMPLE_STATUSES.length), [...SAMPLE_STATUSES]);
  assert.ok(!('model empty reply' in overall.validation));
  assert.equal(overall.validation['agent invalid action'], 5 / 9);
  const grades = lines(join(out, 'grades.jsonl'));
  assert.deepEqual(
    grades.filter((g) => g.status === 'model empty reply').map((g) => g.id),
    ['task1_2', 'task1_4', 'task1_5', 'task1_6', 'task1_7'],
  );
  // `grade` on the log says the same
  const g = await cli('grade', '--runs', join(out, 'runs.jsonl'), '--json');
  assert.equal(g.code, 0, g.err);
  assert.equal(JSON.parse(g.out).tasks.filter((t: { status: string }) => t.status === 'model empty reply').length, 5);
  // replaying the log is not stopped (its replies do not come from a live endpoint) and reproduces it
  const again = join(tmp(), 'replay');
  const rp = await cli('eval', '--agent', `replay:${join(out, 'runs.jsonl')}`, '--out', again, '--limit', '9', '--concurrency', '1', '--json', '--no-progress');
  assert.equal(rp.code, 0, rp.err);
  assert.deepEqual(JSON.parse(rp.out).statusCounts, s.statusCounts);
});

const V2 = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8')) as Array<{ id: string; instruction: string }>;
/** The medagentbench-v2 task a prompt was made from. */
const taskOf = (prompt: string): string => V2.find((t) => prompt.includes(t.instruction))?.id ?? '?';
