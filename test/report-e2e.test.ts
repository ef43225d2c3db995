/**
 * End to end: run folders produced in the test by the real `ehrgym eval` (embedded MedAgentBench world, official
 * harness and grader) with the mock OpenAI model and the scripted agents, then `ehrgym report` over them.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startMockOpenAI, type MockRequest, type MockResponse } from '../src/agent/mock-openai.js';
import { binomialTwoSidedHalf } from '../src/report/stats.js';
import type { TaskCase } from '../src/tasks/types.js';
import type { ReportData } from '../src/report/types.js';
import { cli } from './report-fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-report-e2e-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const BASE = 'http://localhost:8080/fhir/';
const V2: TaskCase[] = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8'));
const byId = new Map(V2.map((t) => [t.id, t]));


/** The JSON body of the last GET response in the conversation. */
function lastBundle(req: MockRequest): { entry?: Array<{ resource: { effectiveDateTime?: string; birthDate?: string; valueQuantity?: { value: number } } }> } {
  const text = req.messages[req.messages.length - 1]!.content;
  const body = text.slice(text.indexOf('\n') + 1, text.lastIndexOf('. Please call FINISH'));
  return JSON.parse(body);
}

const ORDER = (mrn: string) =>
  JSON.stringify({ resourceType: 'ServiceRequest', code: { coding: [{ system: 'http://snomed.info/sct', code: '306181000000106' }] }, authoredOn: '2023-11-13T10:15:00+00:00', status: 'active', intent: 'order', priority: 'stat', subject: { reference: `Patient/${mrn}` } });

/** A model scripted to show each behaviour exactly once (task id → behaviour → replies). */
const SCRIPT: Record<string, { behaviour: string | null; reply: (req: MockRequest, mrn: string) => MockResponse }> = {
  task1_1: { behaviour: 'finish-not-json', reply: () => 'FINISH(Patient not found)' },
  task2_1: { behaviour: 'prose', reply: () => 'The patient is 60 years old.' },
  task2_2: { behaviour: 'wrong-patient', reply: (r) => (r.turn === 0 ? `GET ${BASE}Patient?identifier=S6534835` : 'FINISH([50])') },
  task2_3: {
    behaviour: null,
    reply: (r, mrn) => {
      if (r.turn === 0) return `GET ${BASE}Patient?identifier=${mrn}`;
      const [y, m, d] = lastBundle(r).entry![0]!.resource.birthDate!.split('-').map(Number) as [number, number, number];
      return `FINISH([${2023 - y - (m > 11 || (m === 11 && d > 13) ? 1 : 0)}])`;
    },
  },
  task3_1: { behaviour: 'invalid-post-json', reply: (r) => (r.turn === 0 ? `POST ${BASE}Observation\n{"resourceType": "Observation",` : 'FINISH([])') },
  task4_1: { behaviour: 'think', reply: (_r, mrn) => `<think>I should look up magnesium first.</think>\nGET ${BASE}Observation?patient=${mrn}&code=MG` },
  task4_2: { behaviour: 'post-in-read-only', reply: (r, mrn) => (r.turn === 0 ? `POST ${BASE}ServiceRequest\n${ORDER(mrn)}` : 'FINISH([-1])') },
  task5_1: { behaviour: 'fabricated-action', reply: () => 'FINISH(["Ordered IV magnesium replacement"])' },
  task6_1: { behaviour: 'round-limit', reply: (r, mrn) => `GET ${BASE}Observation?patient=${mrn}&code=GLU&_count=${r.turn + 1}` },
  task7_1: {
    behaviour: 'fence',
    reply: (r, mrn) => (r.turn === 0 ? `\`\`\`\nGET ${BASE}Observation?patient=${mrn}&code=GLU&_sort=-date\n\`\`\`` : `FINISH([${lastBundle(r).entry![0]!.resource.valueQuantity!.value}])`),
  },
  task7_2: { behaviour: 'self-contradiction', reply: (r, mrn) => (r.turn === 0 ? `GET ${BASE}Observation?patient=${mrn}&code=GLU&_sort=-date` : 'FINISH([-1])') },
  task7_3: {
    behaviour: 'stale-value',
    reply: (r, mrn) => {
      if (r.turn === 0) return `GET ${BASE}Observation?patient=${mrn}&code=GLU`;
      const entries = lastBundle(r).entry!.map((e) => e.resource);
      const newest = [...entries].sort((a, b) => (a.effectiveDateTime! < b.effectiveDateTime! ? 1 : -1))[0]!;
      const old = [...entries].sort((a, b) => (a.effectiveDateTime! < b.effectiveDateTime! ? -1 : 1)).find((e) => e.valueQuantity!.value !== newest.valueQuantity!.value)!;
      return `FINISH([${old.valueQuantity!.value}])`;
    },
  },
  task8_1: { behaviour: 'wrong-post-url', reply: (r, mrn) => (r.turn === 0 ? `POST ${BASE}/ServiceRequest\n${ORDER(mrn)}` : 'FINISH([])') },
  task9_1: { behaviour: 'context-limit', reply: (r, mrn) => (r.turn === 0 ? `GET ${BASE}Observation?patient=${mrn}&code=K&_sort=-date` : { fault: 'context-limit' }) },
};

test('a mock model scripted to show each behaviour once, run through ehrgym eval: each counted exactly once', { timeout: 120_000 }, async () => {
  const ids = Object.keys(SCRIPT);
  const taskFile = join(tmp, 'behaviour-tasks.json');
  writeFileSync(taskFile, JSON.stringify(ids.map((id) => byId.get(id)!)));
  const byQuestion = new Map(ids.map((id) => [byId.get(id)!.instruction, id]));
  const mock = await startMockOpenAI({
    script: (req) => {
      const id = [...byQuestion.entries()].find(([q]) => req.prompt.endsWith(`Question: ${q}`))?.[1];
      if (!id) return 'FINISH([])';
      return SCRIPT[id]!.reply(req, byId.get(id)!.eval_MRN ?? '');
    },
  });
  const dir = join(tmp, 'behaviour-model');
  try {
    const ev = await cli('eval', '--agent', 'openai:behaviour-model', '--base-url', mock.url, '--tasks', taskFile, '--out', dir, '--no-progress', '--concurrency', '2', '--max-retries', '0');
    assert.equal(ev.code, 0, ev.err);
  } finally {
    await mock.close();
  }
  const r = await cli('report', dir, '--out', join(tmp, 'behaviour-report'), '--json');
  assert.equal(r.code, 0, r.err);
  const data = JSON.parse(r.out) as ReportData;
  const run = data.runs[0]!;
  for (const b of run.behaviours) {
    const expected = ids.find((id) => SCRIPT[id]!.behaviour === b.behaviour)!;
    assert.equal(b.tasks, 1, `${b.behaviour}: ${JSON.stringify(b.examples)}`);
    assert.equal(b.occurrences, b.behaviour === 'round-limit' ? 1 : 1);
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
  // task that any FINISH without POST passes (spec §6.6)
  const grades = readFileSync(join(dir, 'grades.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; correct: boolean });
  assert.deepEqual(grades.filter((g) => g.correct).map((g) => g.id), ['task2_3', 'task5_1', 'task7_1']);
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
  const oracleLines = readFileSync(join(oracle, 'runs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const task9 = V2.map((t, index) => ({ t, index })).filter(({ t }) => t.id.startsWith('task9_'));
  const giveUp = task9.map(({ index }) => ({
    index, error: null, info: null, time: { timestamp: 0, str: '' },
    output: { index, status: 'completed', result: '["unknown"]', history: [{ role: 'user', content: '' }, { role: 'agent', content: 'FINISH(["unknown"])' }] },
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
  // finish-empty passes 29 task9 tasks (all but the order task task9_3, spec §8.1–8.2) and nothing in task1/task2
  assert.deepEqual(b!.scores.perFamily.map((x) => [x.family, x.correct, x.total]), [['task1', 0, 30], ['task2', 0, 30], ['task9', 29, 30]]);
  assert.deepEqual(f!.scores.perFamily.map((x) => [x.family, x.correct, x.total]), [['task1', 30, 30], ['task2', 30, 30], ['task9', 0, 30]]);
  const c = data.comparisons[0]!;
  assert.equal(c.fixed.length, 60);
  assert.deepEqual(c.fixed.slice(0, 3), ['task1_1', 'task1_2', 'task1_3']);
  assert.equal(c.broken.length, 29);
  assert.equal(c.broken.includes('task9_3'), false);
  assert.deepEqual(c.mcnemar, { fixed: 60, broken: 29, pValue: binomialTwoSidedHalf(29, 89) });
  // exact rational 2·Σ_{i≤29} C(89,i) / 2^89 (Python fractions) = R binom.test(29, 89)$p.value
  assert.equal(c.mcnemar.pValue, 0.0013352623656219368);
  assert.deepEqual(c.perFamily.map((x) => [x.family, x.delta]), [['task1', 1], ['task2', 1], ['task9', -29 / 30]]);
  assert.equal(c.overallDelta, 60 / 90 - 29 / 90);
  assert.deepEqual(c.behaviourDeltas.filter((d) => d.delta !== 0), []);
  assert.equal(c.caseStudies.length, 6);
  const cs = c.caseStudies.find((x) => x.change === 'broken')!;
  assert.equal(cs.divergence, 1);
  assert.equal(cs.base.items[0]!.content, 'FINISH([])');
  assert.equal(cs.other.items[0]!.content, 'FINISH(["unknown"])');
  assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /\| task9 \| 96\.7% \| 0\.0% \| −96\.7 pp \|/);
});
