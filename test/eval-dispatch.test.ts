import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { FhirStore } from '../src/fhir/store.js';
import { loadReplica } from '../src/worlds/medagentbench.js';
import { embeddedBackend } from '../src/eval/backend.js';
import { dispatchOrder, runEval, type TaskSet } from '../src/eval/run.js';
import { createAgent } from '../src/agent/create.js';
import { officialGrader } from '../src/eval/setup.js';
import type { TaskCase } from '../src/tasks/types.js';

const file = '../shared/reference/medagentbench/test_data_v2.json';
const bytes = readFileSync(file);
const taskSet: TaskSet = { name: 'medagentbench-v2', tasks: JSON.parse(bytes.toString('utf8')) as TaskCase[], sha256: createHash('sha256').update(bytes).digest('hex') };
const ids = (xs: Array<{ task: TaskCase }>) => xs.map((x) => x.task.id);
const item = (id: string, index: number) => ({ index, task: { id } as TaskCase });

test('dispatchOrder: task order with one worker; round-robin across families (first-appearance order) with more', () => {
  const items = ['task1_1', 'task1_2', 'task1_3', 'task2_1', 'task10_1', 'task10_2', 'task3_1'].map(item);
  assert.deepEqual(ids(dispatchOrder(items, 1)), ids(items));
  assert.deepEqual(ids(dispatchOrder(items, 4)), ['task1_1', 'task2_1', 'task10_1', 'task3_1', 'task1_2', 'task10_2', 'task1_3']);
  const one = ['task5_1', 'task5_2'].map(item);
  assert.deepEqual(ids(dispatchOrder(one, 8)), ids(one));
  const all = taskSet.tasks.map((task, index) => ({ index, task }));
  const rr = dispatchOrder(all, 64);
  assert.deepEqual(rr.map((x) => x.index).sort((a, b) => a - b), all.map((x) => x.index), 'a permutation');
  assert.deepEqual(ids(rr.slice(0, 10)).map((id) => id.split('_')[0]), ['task1', 'task2', 'task3', 'task4', 'task5', 'task6', 'task7', 'task8', 'task9', 'task10']);
});

test('dispatch order leaves the derived run files as at concurrency 1, and a resumed run completes the selection', async () => {
  const store = new FhirStore();
  loadReplica(store);
  const backend = embeddedBackend(store, { name: 'medagentbench', fingerprint: 'test-replica' }, 'http://localhost:8080/fhir/');
  const sel = { families: ['task4', 'task9', 'task10'], progress: false };
  const run = (concurrency: number, extra: Record<string, unknown> = {}, out = mkdtempSync(join(tmpdir(), 'ehrgym-dispatch-'))) =>
    runEval({ out, taskSet, agent: createAgent('oracle'), backend, grade: officialGrader, concurrency, ...sel, ...extra });
  const a = await run(1);
  const b = await run(6);
  // grades.jsonl lines carry each episode's wall ms; everything else is byte-identical
  const grades = (dir: string) => readFileSync(join(dir, 'grades.jsonl'), 'utf8').replace(/,"ms":\d+\}/g, '}');
  assert.equal(grades(b.dir), grades(a.dir));
  assert.equal(readFileSync(join(b.dir, 'overall.json'), 'utf8'), readFileSync(join(a.dir, 'overall.json'), 'utf8'));
  const byIndex = (dir: string) =>
    readFileSync(join(dir, 'runs.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).sort((x, y) => x.index - y.index).map((l) => JSON.stringify(l.output));
  assert.deepEqual(byIndex(b.dir), byIndex(a.dir));
  // runs lines are composed message by message: still exactly JSON.stringify of the record, non-Latin-1 text included
  const runLines = readFileSync(join(b.dir, 'runs.jsonl'), 'utf8').split('\n').filter(Boolean);
  assert.equal(runLines.length, 90);
  assert.ok(runLines.some((l) => /[^\u0000-\u00ff]/.test(l)), 'a prompt beyond Latin-1 is covered');
  for (const l of runLines) assert.equal(l, JSON.stringify(JSON.parse(l)));
  const overall = JSON.parse(readFileSync(join(b.dir, 'overall.json'), 'utf8'));
  const histories = new Map(runLines.map((l) => [JSON.parse(l).index, JSON.stringify(JSON.parse(l).output.history)]));
  assert.equal(overall.custom.raw_results.length, 90);
  for (const o of overall.custom.raw_results) assert.equal(JSON.stringify(o.history), histories.get(o.index));
  // interrupted after a few episodes (dispatched round-robin), then resumed at another concurrency
  const ctl = new AbortController();
  let n = 0;
  const out = mkdtempSync(join(tmpdir(), 'ehrgym-dispatch-'));
  const c = await run(3, { signal: ctl.signal, onEpisode: () => ++n === 4 && ctl.abort() }, out);
  assert.equal(c.interrupted, true);
  const d = await run(5, { resume: true }, out);
  assert.equal(d.summary!.total, 90);
  assert.equal(d.summary!.correct, 90);
  assert.equal(d.ran, 90 - c.ran);
  assert.equal(grades(out), grades(a.dir));
});
