/**
 * End to end: run folders produced in the test by the real `ehrgym eval` (embedded MedAgentBench world, official
 * harness and grader) with the mock OpenAI model and the scripted agents, then `ehrgym report` over them.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { binomialTwoSidedHalf } from '../src/report/stats.js';
import type { ReportData } from '../src/report/types.js';
import { cli, runBehaviourModel, SCRIPT, V2_TASKS as V2 } from './report-fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-report-e2e-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('a mock model scripted to show each behaviour once, run through ehrgym eval: each counted exactly once', { timeout: 120_000 }, async () => {
  const ids = Object.keys(SCRIPT);
  const dir = join(tmp, 'behaviour-model');
  await runBehaviourModel(dir, join(tmp, 'behaviour-tasks.json'));
  const r = await cli('report', dir, '--out', join(tmp, 'behaviour-report'), '--json');
  assert.equal(r.code, 0, r.err);
  const data = JSON.parse(r.out) as ReportData;
  const run = data.runs[0]!;
  for (const b of run.behaviours) {
    const expected = ids.find((id) => SCRIPT[id]!.behaviour === b.behaviour)!;
    assert.equal(b.tasks, 1, `${b.behaviour}: ${JSON.stringify(b.examples)}`);
    assert.equal(b.occurrences, 1);
    assert.deepEqual(b.perFamily, { [expected.split('_')[0]!]: 1 });
    assert.equal(b.examples[0]!.taskId, expected);
  }
  for (const id of ids) {
    const found = (run.findings[id] ?? []).map((f) => f.behaviour);
    assert.deepEqual(found, SCRIPT[id]!.behaviour ? [SCRIPT[id]!.behaviour] : [], id);
  }
  const s = run.scores;
  assert.equal(s.total, 14);
  assert.deepEqual([s.status.completed, s.status.invalidAction, s.status.roundLimit, s.status.contextLimit, s.status.error], [10, 2, 1, 1, 0]);
  // graded by the official grader: the clean age answer and the fenced GET are correct, and task5_1 is a no-Mg-in-24h
  // task that any FINISH without POST passes (the official task5 grader)
  const grades = readFileSync(join(dir, 'grades.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: string; correct: boolean });
  assert.deepEqual(
    grades.filter((g) => g.correct).map((g) => g.id),
    ['task2_3', 'task5_1', 'task7_1'],
  );
  assert.equal(s.correct, 3);
  const stale = run.behaviours.find((b) => b.behaviour === 'stale-value')!.examples[0]!.evidence;
  assert.match(stale, /; no _sort/);
});

test('scripted base vs fine-tuned pair through ehrgym eval: flips, deltas and exact McNemar p', { timeout: 120_000 }, async () => {
  const filter = ['--tasks-filter', 'task1,task2,task9', '--no-progress', '--concurrency', '2'];
  const base = join(tmp, 'base');
  const oracle = join(tmp, 'oracle');
  assert.equal((await cli('eval', '--agent', 'finish-empty', '--out', base, ...filter)).code, 0);
  assert.equal((await cli('eval', '--agent', 'oracle', '--out', oracle, '--tasks-filter', 'task1,task2', '--no-progress')).code, 0);
  // fine-tuned = the oracle's recorded turns on task1/task2, and `FINISH(["unknown"])` on task9
  const oracleLines = readFileSync(join(oracle, 'runs.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const task9 = V2.map((t, index) => ({ t, index })).filter(({ t }) => t.id.startsWith('task9_'));
  const giveUp = task9.map(({ index }) => ({
    index,
    error: null,
    info: null,
    time: { timestamp: 0, str: '' },
    output: {
      index,
      status: 'completed',
      result: '["unknown"]',
      history: [
        { role: 'user', content: '' },
        { role: 'agent', content: 'FINISH(["unknown"])' },
      ],
    },
  }));
  const script = join(tmp, 'finetuned-script.jsonl');
  writeFileSync(script, [...oracleLines, ...giveUp].map((l) => JSON.stringify(l)).join('\n') + '\n');
  const ft = join(tmp, 'finetuned');
  const e = await cli('eval', '--agent', `replay:${script}`, '--out', ft, ...filter);
  assert.equal(e.code, 0, e.err);

  const out = join(tmp, 'pair-report');
  const r = await cli('report', base, ft, '--out', out, '--json');
  assert.equal(r.code, 0, r.err);
  const data = JSON.parse(r.out) as ReportData;
  const [b, f] = data.runs;
  // finish-empty passes 29 task9 tasks (all but the order task task9_3; docs/tasks.md) and nothing in task1/task2
  assert.deepEqual(
    b!.scores.perFamily.map((x) => [x.family, x.correct, x.total]),
    [
      ['task1', 0, 30],
      ['task2', 0, 30],
      ['task9', 29, 30],
    ],
  );
  assert.deepEqual(
    f!.scores.perFamily.map((x) => [x.family, x.correct, x.total]),
    [
      ['task1', 30, 30],
      ['task2', 30, 30],
      ['task9', 0, 30],
    ],
  );
  const c = data.comparisons[0]!;
  assert.equal(c.fixed.length, 60);
  assert.deepEqual(c.fixed.slice(0, 3), ['task1_1', 'task1_2', 'task1_3']);
  assert.equal(c.broken.length, 29);
  assert.equal(c.broken.includes('task9_3'), false);
  assert.deepEqual(c.mcnemar, { fixed: 60, broken: 29, pValue: binomialTwoSidedHalf(29, 89) });
  // exact rational 2·Σ_{i≤29} C(89,i) / 2^89 (Python fractions) = R binom.test(29, 89)$p.value
  assert.equal(c.mcnemar.pValue, 0.0013352623656219368);
  assert.deepEqual(
    c.perFamily.map((x) => [x.family, x.delta]),
    [
      ['task1', 1],
      ['task2', 1],
      ['task9', -29 / 30],
    ],
  );
  assert.equal(c.overallDelta, 60 / 90 - 29 / 90);
  assert.deepEqual(
    c.behaviourDeltas.filter((d) => d.delta !== 0),
    [],
  );
  assert.equal(c.caseStudies.length, 6);
  const cs = c.caseStudies.find((x) => x.change === 'broken')!;
  assert.equal(cs.divergence, 1);
  assert.equal(cs.base.items[0]!.content, 'FINISH([])');
  assert.equal(cs.other.items[0]!.content, 'FINISH(["unknown"])');
  assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /\| task9 — potassium check, replacement and morning lab \| 96\.7% \| 0\.0% \| −96\.7 pp \|/);
});
