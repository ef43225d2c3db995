/**
 * `ehrgym eval` and `ehrgym grade` through the real CLI code path (in-process `main`), on the embedded replica.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { renderPrompt } from '../src/agent/prompt.js';
import type { TaskCase } from '../src/tasks/types.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'ehrgym-cli-'));

test('oracle 300/300, finish-empty 70/300, give-up 16/300 on medagentbench-v2', async () => {
  const expected: Record<string, { correct: number; perFamily: Record<string, number> }> = {
    oracle: { correct: 300, perFamily: {} },
    'finish-empty': { correct: 70, perFamily: { task5: 28, task9: 29, task10: 13 } },
    'give-up': { correct: 16, perFamily: { task5: 16 } },
  };
  for (const [agent, want] of Object.entries(expected)) {
    const out = tmp();
    const r = await cli('eval', '--agent', agent, '--out', out, '--concurrency', '16', '--json', '--no-progress');
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.equal(s.total, 300);
    assert.equal(s.correct, want.correct, agent);
    for (const [fam, n] of Object.entries(want.perFamily)) assert.equal(s.perFamily[fam].correct, n, `${agent} ${fam}`);
    assert.equal(s.statusCounts.completed, 300);
    assert.equal(s.manifest.taskSet.name, 'medagentbench-v2');
    assert.equal(s.manifest.postMode, 'official');
    assert.equal(s.manifest.apiBase, 'http://localhost:8080/fhir/');
    assert.match(s.manifest.world.fingerprint, /^[0-9a-f]{64}$/);
    // the summary on disk equals what was printed; overall.json agrees
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')), s);
    const overall = JSON.parse(readFileSync(join(out, 'overall.json'), 'utf8'));
    assert.equal(overall.custom['success rate'], want.correct / 300);
    if (agent === 'oracle') {
      // transcripts carry the advertised base and the byte-exact prompt
      const first = JSON.parse(readFileSync(join(out, 'runs.jsonl'), 'utf8').split('\n')[0]);
      const tasks: TaskCase[] = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8'));
      assert.equal(first.output.history[0].content, renderPrompt(tasks[first.index]));
      // and re-grading the log gives 300/300 again
      const g = await cli('grade', '--runs', join(out, 'runs.jsonl'), '--json');
      assert.equal(g.code, 0, g.err);
      assert.equal(JSON.parse(g.out).correct, 300);
    }
  }
});

test('grade: a third-party log in AgentBench format gets the official verdicts (295/300)', async () => {
  const dir = 'data/third-party/u9401066-medagent-copilot/';
  const results = JSON.parse(readFileSync(dir + 'v2_agent_results.json', 'utf8')).results as any[];
  const evaluation = JSON.parse(readFileSync(dir + 'v2_evaluation.json', 'utf8'));
  const tasks: TaskCase[] = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8'));
  const lines = results.map((r) => {
    const index = tasks.findIndex((t) => t.id === r.task_id);
    const history = [{ role: 'user', content: renderPrompt(tasks[index]) }, ...r.post_history, { role: 'agent', content: `FINISH(${r.answer})` }];
    return JSON.stringify({
      index,
      error: null,
      info: null,
      output: { index, status: 'completed', result: r.answer, history },
      time: { timestamp: 0, str: '' },
    });
  });
  const runs = join(tmp(), 'runs.jsonl');
  writeFileSync(runs, lines.join('\n') + '\n');
  const r = await cli('grade', '--runs', runs, '--json');
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out);
  assert.equal(got.correct, 295);
  const want = new Map<string, boolean>(evaluation.details.map((d: any) => [d.task_id, d.correct]));
  for (const t of got.tasks) assert.equal(t.correct, want.get(t.id), t.id);
  const human = await cli('grade', '--runs', runs);
  assert.match(human.out, /total: 295\/300 = 98\.33%/);
  assert.match(human.out, /task7_24 +completed +Incorrect/);
});

test('bad input: one line naming the flag or file, non-zero exit, nothing lost', async () => {
  const out = tmp();
  let r = await cli('eval', '--agent', 'oracle', '--out', out, '--tasks', 'no-such-set');
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: --tasks: unknown task set "no-such-set"/);
  assert.equal(r.err.trim().split('\n').length, 1);

  r = await cli('eval', '--agent', 'openai:gpt-4o', '--base-url', 'https://api.example.invalid/v1', '--api-key-env', 'EHRGYM_NO_SUCH_KEY', '--out', out);
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: --agent: missing API key: set the environment variable EHRGYM_NO_SUCH_KEY/);

  r = await cli('eval', '--agent', 'openai:m', '--base-url', 'http://127.0.0.1:9/v1', '--max-retries', '0', '--out', out);
  assert.equal(r.code, 3);
  assert.match(r.err, /^ehrgym: --base-url: model endpoint unreachable: http:\/\/127\.0\.0\.1:9\/v1/);

  r = await cli('eval', '--agent', 'oracle', '--out', out, '--tasks-filter', 'task42');
  assert.match(r.err, /^ehrgym: --tasks-filter: no family "task42"/);

  r = await cli('eval', '--agent', 'oracle', '--out', out, '--fhir-url', 'http://127.0.0.1:9/fhir/');
  assert.equal(r.code, 3);
  assert.match(r.err, /^ehrgym: --fhir-url: FHIR server http:\/\/127\.0\.0\.1:9\/fhir\/ not usable/);

  const bad = join(tmp(), 'runs.jsonl');
  writeFileSync(bad, '{"index": 0, "output": {"index": 0, "status": "completed", "result": "[]", "history": []}}\n{not json\n{}\n');
  r = await cli('grade', '--runs', bad);
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: .*runs\.jsonl:2: not valid JSON/);

  // a finished run is kept; --resume with another agent is refused
  r = await cli('eval', '--agent', 'give-up', '--out', out, '--limit', '3', '--json');
  assert.equal(r.code, 0, r.err + r.out);
  const runsBefore = readFileSync(join(out, 'runs.jsonl'), 'utf8');
  r = await cli('eval', '--agent', 'finish-empty', '--out', out, '--limit', '3', '--resume');
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: --resume refused: .*agent\.name/);
  r = await cli('eval', '--agent', 'give-up', '--out', out, '--limit', '3');
  assert.match(r.err, /already holds a run; pass --resume/);
  assert.equal(readFileSync(join(out, 'runs.jsonl'), 'utf8'), runsBefore);
});
