import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { FhirStore } from '../src/fhir/store.js';
import { loadReplica } from '../src/worlds/medagentbench.js';
import { embeddedBackend } from '../src/eval/backend.js';
import { runEval, type TaskSet } from '../src/eval/run.js';
import { DEFAULT_EXPECTED_ROUNDS, EpisodeScheduler, simulateSchedule } from '../src/eval/schedule.js';
import { getFamily } from '../src/tasks/registry.js';
import { pyJsonDumps } from '../src/tasks/pysem.js';
import { createAgent } from '../src/agent/create.js';
import { officialGrader } from '../src/eval/setup.js';
import type { TaskCase } from '../src/tasks/types.js';

const file = 'data/medagentbench/test_data_v2.json';
const bytes = readFileSync(file);
const taskSet: TaskSet = {
  name: 'medagentbench-v2',
  tasks: JSON.parse(bytes.toString('utf8')) as TaskCase[],
  sha256: createHash('sha256').update(bytes).digest('hex'),
};
const ids = (xs: Array<{ task: TaskCase }>) => xs.map((x) => x.task.id);
const item = (id: string, index: number) => ({ index, task: { id } as TaskCase });

test('scheduler: task order with one worker; longest expected family first, equals round-robin, with more', () => {
  const items = ['task1_1', 'task1_2', 'task1_3', 'task2_1', 'task10_1', 'task10_2', 'task3_1'].map(item);
  const drain = (s: EpisodeScheduler<ReturnType<typeof item>>) => {
    const out: string[] = [];
    for (let it = s.next(); it; it = s.next()) out.push(it.task.id);
    return out;
  };
  assert.deepEqual(drain(new EpisodeScheduler(items, 1)), ids(items));
  // task10's expert takes 2–3 turns, the others 2: task10 first, then round-robin from the family after it
  assert.deepEqual(drain(new EpisodeScheduler(items, 4)), ['task10_1', 'task10_2', 'task3_1', 'task1_1', 'task2_1', 'task1_2', 'task1_3']);
  // equal expectations: round-robin in first-appearance order
  assert.deepEqual(drain(new EpisodeScheduler(items, 4, () => 2)), ['task1_1', 'task2_1', 'task10_1', 'task3_1', 'task1_2', 'task10_2', 'task1_3']);
  // one family: task order
  const one = ['task5_1', 'task5_2'].map(item);
  assert.deepEqual(drain(new EpisodeScheduler(one, 8)), ids(one));
  // what the run's episodes take overrides the prior: task1 episodes that took 6 rounds put task1 ahead of task10
  const s = new EpisodeScheduler(items, 4);
  assert.equal(s.next()!.task.id, 'task10_1');
  assert.equal(s.expected('task10'), 2.5);
  s.observe(item('task1_1', 0), 6);
  assert.equal(s.expected('task1'), (2 * 2 + 6) / 3);
  assert.equal(s.next()!.task.id, 'task1_1');
  assert.equal(s.remaining, 5);
  assert.equal(drain(s).length, 5);
  assert.equal(s.next(), undefined);
  // a family outside the registry expects the default
  assert.equal(new EpisodeScheduler([item('custom_1', 0)], 2).expected('custom'), DEFAULT_EXPECTED_ROUNDS);
});

test("the families' declared expert turns hold on medagentbench-v2, and the scheduler ends the 64-worker oracle workload at its lower bound", async () => {
  const store = new FhirStore();
  loadReplica(store);
  const backend = embeddedBackend(store, { name: 'medagentbench', fingerprint: 'test-replica' }, 'http://localhost:8080/fhir/');
  const out = mkdtempSync(join(tmpdir(), 'ehrgym-dispatch-'));
  const r = await runEval({ out, taskSet, agent: createAgent('oracle'), backend, grade: officialGrader, concurrency: 8, progress: false });
  assert.equal(r.summary!.correct, 300);
  const rounds = new Map<number, number>();
  for (const l of readFileSync(join(out, 'episodes.jsonl'), 'utf8').split('\n').filter(Boolean)) rounds.set(JSON.parse(l).index, JSON.parse(l).rounds);
  assert.equal(rounds.size, 300);
  const seen = new Map<string, Set<number>>();
  for (const [index, n] of rounds) {
    const fam = getFamily(taskSet.tasks[index].id);
    assert.ok(n >= fam.turns.min && n <= fam.turns.max, `${taskSet.tasks[index].id}: ${n} rounds outside ${fam.id}'s ${fam.turns.min}–${fam.turns.max}`);
    if (!seen.has(fam.id)) seen.set(fam.id, new Set());
    seen.get(fam.id)!.add(n);
  }
  // every declared maximum is reached on the official tasks (so none is inflated)
  for (const [id, ns] of seen) assert.equal(Math.max(...ns), getFamily(id).turns.max, id);
  const items = taskSet.tasks.map((task, index) => ({ index, task }));
  const total = [...rounds.values()].reduce((a, b) => a + b, 0);
  const of = (it: { index: number }) => rounds.get(it.index)!;
  // 621 rounds over 64 workers: no schedule of whole episodes ends before round 10
  assert.equal(Math.ceil(total / 64), 10);
  assert.equal(simulateSchedule(items, 64, of), 10);
  // equal first estimates (only the learnt means to go by) leave a tail to round 11
  assert.equal(
    simulateSchedule(items, 64, of, () => 2),
    11,
  );
  assert.equal(simulateSchedule(items, 1, of), total);
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
    readFileSync(join(dir, 'runs.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .sort((x, y) => x.index - y.index)
      .map((l) => JSON.stringify(l.output));
  assert.deepEqual(byIndex(b.dir), byIndex(a.dir));
  // runs lines are composed message by message: still exactly Python's json.dumps of the record (ASCII-escaped, ", "
  // and ": " separators), the prompt's U+2019 included
  const runLines = readFileSync(join(b.dir, 'runs.jsonl'), 'utf8').split('\n').filter(Boolean);
  assert.equal(runLines.length, 90);
  assert.ok(
    runLines.every((l) => l.includes('\\u2019')),
    'the prompt beyond ASCII is covered',
  );
  for (const l of runLines) assert.equal(l, pyJsonDumps(JSON.parse(l)));
  const overall = JSON.parse(readFileSync(join(b.dir, 'overall.json'), 'utf8'));
  const histories = new Map(runLines.map((l) => [JSON.parse(l).index, JSON.stringify(JSON.parse(l).output.history)]));
  assert.equal(overall.custom.raw_results.length, 90);
  for (const o of overall.custom.raw_results) assert.equal(JSON.stringify(o.history), histories.get(o.index));
  // interrupted after a few episodes (started by the scheduler), then resumed at another concurrency
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
  // overall.json from histories read back on resume is the same bytes as from histories kept in memory
  assert.equal(readFileSync(join(out, 'overall.json'), 'utf8'), readFileSync(join(a.dir, 'overall.json'), 'utf8'));
});

test('a run with an abort signal adds one listener to it, whatever the concurrency (no MaxListenersExceededWarning)', async () => {
  const store = new FhirStore();
  loadReplica(store);
  const backend = embeddedBackend(store, { name: 'medagentbench', fingerprint: 'test-replica' }, 'http://localhost:8080/fhir/');
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    const ctl = new AbortController();
    const out = mkdtempSync(join(tmpdir(), 'ehrgym-dispatch-'));
    const r = await runEval({
      out,
      taskSet,
      agent: createAgent('oracle'),
      backend,
      grade: officialGrader,
      concurrency: 64,
      progress: false,
      signal: ctl.signal,
    });
    assert.equal(r.summary!.correct, 300);
    await new Promise((res) => setImmediate(res));
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(
    warnings.filter((w) => w === 'MaxListenersExceededWarning'),
    [],
  );
});
