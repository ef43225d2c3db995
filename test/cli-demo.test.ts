/**
 * `ehrgym demo` end to end, offline, through the in-process CLI: the files it promises, the scores of the three runs,
 * our grader against the official grader's recorded verdicts, the refusal to overwrite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { formatDemo, recordedEpisodes, recordedVerdicts, type DemoSummary } from '../src/cli/demo.js';
import { openTaskSet } from '../src/eval/setup.js';

test('the recorded run converts to replayable episodes: recorded POSTs, then FINISH(answer)', () => {
  const set = openTaskSet('medagentbench-v2');
  const eps = recordedEpisodes(set);
  assert.equal(eps.size, 300);
  const idx = (id: string) => set.tasks.findIndex((t) => t.id === id);
  assert.deepEqual(eps.get(idx('task1_1'))!.agentMessages, ['FINISH(["S6534835"])']);
  const t3 = eps.get(idx('task3_1'))!.agentMessages;
  assert.equal(t3.length, 2);
  assert.match(t3[0], /^POST http:\/\/localhost:8080\/fhir\/Observation\n\{"resourceType": "Observation"/);
  assert.equal(t3[1], 'FINISH([""])');
  const verdicts = recordedVerdicts();
  assert.equal(verdicts.size, 300);
  assert.equal([...verdicts.values()].filter(Boolean).length, 295);
});

test('ehrgym demo writes run folders, a verified SFT corpus, a TRL export and report.html; refuses a non-empty --out', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ehrgym-demo-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const out = join(root, 'demo');
  const r = await cli('demo', '--out', out, '--json');
  assert.equal(r.code, 0, r.err);
  const s = JSON.parse(r.out) as DemoSummary;
  // progress on stderr as plain lines (not a terminal), one per step
  for (let i = 1; i <= 7; i++) assert.match(r.err, new RegExp(`^demo \\[${i}/7\\] `, 'm'));
  assert.doesNotMatch(r.err, /\r|\x1b\[/);

  assert.deepEqual(
    s.runs.map((x) => [x.label, x.correct, x.total]),
    [
      ['oracle', 300, 300],
      ['u9401066-recorded', 295, 300],
      ['finish-empty', 70, 300],
    ],
  );
  // our grader on the replayed published run agrees with the official grader's recorded verdict on every task
  assert.deepEqual({ ...s.recorded, source: undefined }, { source: undefined, officialCorrect: 295, ourCorrect: 295, agree: 300, total: 300, disagree: [] });

  for (const run of ['oracle', 'u9401066-recorded', 'finish-empty']) {
    for (const f of ['manifest.json', 'runs.jsonl', 'overall.json', 'summary.json', 'grades.jsonl']) {
      assert.ok(existsSync(join(out, 'runs', run, f)), `${run}/${f}`);
    }
    assert.equal(
      readFileSync(join(out, 'runs', run, 'runs.jsonl'), 'utf8')
        .trim()
        .split('\n').length,
      300,
      run,
    );
  }
  const manifest = JSON.parse(readFileSync(join(out, 'runs', 'u9401066-recorded', 'manifest.json'), 'utf8'));
  assert.equal(manifest.agent.name, 'replay:data/third-party/u9401066-medagent-copilot/v2_agent_results.json');

  assert.equal(s.sft.rows, 40);
  assert.equal(
    readFileSync(join(out, 'sft', 'train.jsonl'), 'utf8')
      .trim()
      .split('\n').length,
    40,
  );
  const corpus = JSON.parse(readFileSync(join(out, 'sft', 'manifest.json'), 'utf8'));
  assert.equal(corpus.pipeline.kept, 40);
  assert.equal(
    readFileSync(join(out, 'export', 'trl', 'train.jsonl'), 'utf8')
      .trim()
      .split('\n').length,
    40,
  );
  assert.ok(s.export.files.includes('train.jsonl'));

  const html = readFileSync(join(out, 'report', 'report.html'), 'utf8');
  for (const label of ['oracle', 'u9401066-recorded', 'finish-empty']) assert.ok(html.includes(label), label);
  assert.ok(existsSync(join(out, 'report', 'report.md')));
  assert.ok(existsSync(join(out, 'report', 'report.json')));

  // the human summary: paths and the command that evaluates a real model
  const text = formatDemo(s);
  assert.match(text, /^ehrgym demo: wrote /);
  assert.ok(text.includes(join(out, 'report', 'report.html')) || text.includes('report/report.html'));
  assert.match(text, /npx ehrgym eval --agent openai:<model> --base-url http:\/\/127\.0\.0\.1:8000\/v1 --out runs\/<model>/);

  const again = await cli('demo', '--out', out);
  assert.equal(again.code, 2);
  assert.equal(again.err, `ehrgym: --out ${out} is not empty (use --force to replace the demo's files in it, or choose another --out)\n`);
});
