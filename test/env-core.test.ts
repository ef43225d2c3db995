/**
 * The environment core: splits (test = medagentbench-v2 in order, train generated off the evaluation patients,
 * deterministic), episodes graded with reward components, the session cap, idle reaping, isolation of 1,000
 * concurrent episodes that write.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { buildEnv, type BuiltEnv } from '../src/env/server.js';
import { CapacityError, EnvCore, TaskRefError, type StepOutcome } from '../src/env/core.js';
import { TRAIN_FIRST_ID, trainSplit } from '../src/env/tasks.js';
import { loadTaskSet } from '../src/tasks/loader.js';
import { evaluationMrns } from '../src/worlds/index.js';
import { playOracle, wrongDose, bpCall } from './helpers/env-oracle.js';

let env: BuiltEnv;
let core: EnvCore;

before(async () => {
  env = await buildEnv({ trainSize: 100, trainSeed: 3 });
  core = env.core;
});

const step = (r: StepOutcome) => (r.ok ? { text: r.text, done: r.finished, r } : { text: r.error, done: false, r });

test('splits: test is medagentbench-v2 in file order; train is generated off evaluation patients with ids after the official ones', async () => {
  const official = loadTaskSet('medagentbench-v2').tasks;
  const test_ = core.split('test');
  assert.equal(test_.type, 'test');
  assert.deepEqual(
    test_.tasks.map((t) => t.id),
    official.map((t) => t.id),
  );
  assert.deepEqual(core.task('test', 0), official[0]);
  const train = core.split('train');
  assert.equal(train.type, 'train');
  assert.ok(train.tasks.length >= 50 && train.tasks.length <= 100, `train has ${train.tasks.length} tasks`);
  const evalMrns = new Set(evaluationMrns());
  for (const t of train.tasks) {
    assert.ok(Number(t.id.split('_')[1]) >= TRAIN_FIRST_ID, t.id);
    if (t.eval_MRN !== undefined) assert.ok(!evalMrns.has(t.eval_MRN), `${t.id} uses evaluation patient ${t.eval_MRN}`);
    for (const m of `${t.instruction} ${t.context}`.match(/S\d{7}/g) ?? []) assert.ok(!evalMrns.has(m), `${t.id} mentions ${m}`);
  }
  assert.deepEqual(new Set(train.tasks.map((t) => t.id.split('_')[0])).size, 10, 'every family is in train');
  // Python slice semantics
  assert.deepEqual(
    core.taskRange('test', -2, null).map((t) => t.id),
    official.slice(-2).map((t) => t.id),
  );
  assert.deepEqual(core.taskRange('test', 5, 2), []);
  assert.throws(
    () => core.split('valid'),
    (e: unknown) => e instanceof TaskRefError && e.message === 'Invalid split',
  );
  assert.throws(
    () => core.task('test', 300),
    (e: unknown) => e instanceof TaskRefError && e.message === 'Invalid index',
  );
});

test('train: the same seed and size give the same tasks; another seed other tasks', async () => {
  const world = [...core.splitList()][0]!.world;
  assert.equal(world, 'medagentbench');
  const again = env.core.split('train').tasks;
  const store = core.worldList()[0]!;
  const patients = (await import('../src/worlds/index.js')).replicaMrns();
  const a = await trainSplit({ size: 100, seed: 3, patients, world: { apiBase: core.apiBase, fhir: store.backend.base } });
  assert.equal(JSON.stringify(a.split.tasks), JSON.stringify(again));
  const b = await trainSplit({ size: 100, seed: 4, patients, world: { apiBase: core.apiBase, fhir: store.backend.base } });
  assert.notEqual(JSON.stringify(b.split.tasks), JSON.stringify(again));
});

test('episode: oracle actions → reward 1 with every component true; a wrong dose → reward 0 with exactly the dose component false', async () => {
  const index = core.split('test').tasks.findIndex((t) => t.id === 'task5_21');
  const task = core.task('test', index);
  const s = core.open('oracle', 'ors');
  const ep = await core.reset(s, { split: 'test', index });
  assert.match(ep.prompt, /^You are an expert in using FHIR functions/);
  const ok = await playOracle(task, async (c) => step(await core.call(s, c.name, c.arguments)));
  assert.equal(ok.calls.at(-1)!.name, 'finish');
  assert.ok(
    ok.calls.some((c) => c.name === 'medication_request_create'),
    'the oracle orders magnesium',
  );
  const fin = ok.last.r;
  assert.ok(fin.ok);
  assert.equal(fin.reward, 1);
  assert.equal(fin.finished, true);
  assert.ok(Object.keys(fin.components!).length >= 10, JSON.stringify(fin.components));
  assert.ok(
    Object.values(fin.components!).every((v) => v === true),
    JSON.stringify(fin.components),
  );
  assert.match(fin.explanation!, /^correct \(branch low_order_required\)/);
  // calls after finish are refused
  const after = await core.call(s, 'finish', '{"answer": []}');
  assert.equal(after.ok, false);

  await core.reset(s, { taskId: 'task5_21' });
  const bad = await playOracle(task, async (c) => step(await core.call(s, c.name, c.arguments)), wrongDose);
  const r = bad.last.r;
  assert.ok(r.ok);
  assert.equal(r.reward, 0);
  const failed = Object.entries(r.components!).filter(([, v]) => !v);
  assert.deepEqual(failed, [['doseQuantity', false]]);
  assert.match(r.explanation!, /check "doseQuantity" failed/);
  await core.close(s);
});

test('episode: unknown tools and bad arguments are errors the episode survives; the step limit ends it with reward 0', async () => {
  const small = new EnvCore({
    splits: core.splitList(),
    worlds: [core.worldList()[0]!],
    apiBase: core.apiBase,
    maxSteps: 3,
  });
  const s = small.open('x', 'ws');
  await small.reset(s, { split: 'test', index: 0 });
  const unknown = await small.call(s, 'nope', '{}');
  assert.deepEqual(unknown.ok ? null : unknown.errorType, 'tool_not_found');
  const badArgs = await small.call(s, 'patient_search', '[1]');
  assert.deepEqual(badArgs.ok ? null : badArgs.errorType, 'invalid_args');
  const last = await small.call(s, 'patient_search', '{"family": "Nobody"}');
  assert.ok(last.ok);
  assert.equal(last.finished, true);
  assert.equal(last.reward, 0);
  assert.match(last.explanation!, /step limit/);
  await small.shutdown();
});

test('episode: calls queued behind a close are refused, not executed on a dropped session', async () => {
  const s = core.open('closing', 'ors');
  await core.reset(s, { split: 'test', index: 0 });
  const first = core.call(s, 'patient_search', '{"family": "Nobody"}');
  const queued = core.call(s, 'patient_search', '{"family": "Nobody"}');
  await core.close(s);
  // neither throws; both were queued behind the close, so both are refused
  for (const r of await Promise.all([first, queued])) assert.ok(!r.ok && /is closed/.test(r.error), JSON.stringify(r));
});

test('capacity: the cap is shared by every surface; closing frees a slot', async () => {
  const capped = new EnvCore({
    splits: core.splitList(),
    worlds: [core.worldList()[0]!],
    apiBase: core.apiBase,
    maxSessions: 3,
  });
  const a = capped.open('a', 'ors');
  capped.open('b', 'ws');
  capped.open('c', 'mcp');
  assert.throws(
    () => capped.open('d', 'ors'),
    (e: unknown) => e instanceof CapacityError && e.active === 3 && e.max === 3,
  );
  await capped.close(a);
  capped.open('d', 'ors');
  assert.equal(capped.activeSessions, 3);
  await capped.shutdown();
  assert.equal(capped.activeSessions, 0);
});

test('idle reaping: a session untouched for the idle timeout is dropped with its FHIR session; a touched one lives', async () => {
  const w = core.worldList()[0]!;
  const reaping = new EnvCore({ splits: core.splitList(), worlds: [w], apiBase: core.apiBase, idleTimeoutMs: 150 });
  const idle = reaping.open('idle', 'ors');
  const busy = reaping.open('busy', 'ors');
  let closed = 0;
  idle.onClose = () => closed++;
  await reaping.reset(idle, { split: 'test', index: 0 });
  await reaping.reset(busy, { split: 'test', index: 1 });
  const wrote = await reaping.call(idle, 'observation_create', bpCall('S6534835', 'reap-me').arguments);
  assert.ok(wrote.ok && /POST request accepted/.test(wrote.text), JSON.stringify(wrote));
  assert.ok(w.store.hasSession('env-task1_1'));
  const until = Date.now() + 1000;
  while (Date.now() < until && reaping.has('idle', 'ors')) {
    reaping.touch(busy);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(reaping.has('idle', 'ors'), false, 'the idle session was reaped');
  assert.equal(reaping.has('busy', 'ors'), true, 'the touched session lives');
  assert.equal(closed, 1);
  assert.equal(w.store.hasSession('env-task1_1'), false, 'its FHIR session is dropped');
  await reaping.shutdown();
});

test('isolation: 1,000 concurrent episodes that write see only their own writes; the base never changes', async () => {
  const w = core.worldList()[0]!;
  const before = w.store.sessionCount;
  const mrn = 'S6534835';
  const sessions = await Promise.all(
    Array.from({ length: 1000 }, async (_, i) => {
      const s = core.open(`iso-${i}`, 'ors');
      await core.reset(s, { split: 'test', index: i % 300 });
      return s;
    }),
  );
  const writes = await Promise.all(sessions.map((s, i) => core.call(s, 'observation_create', bpCall(mrn, `leak-check-${i}-end`).arguments)));
  assert.ok(writes.every((r) => r.ok && /POST request accepted/.test(r.text)));
  // every session numbers its creates from the same first id: the same id names a different resource in each
  const id = /Observation\/(\d+)\//.exec(writes[0]!.ok ? writes[0]!.text : '')![1]!;
  const reads = await Promise.all(sessions.map((s) => core.call(s, 'observation_search_vitals', JSON.stringify({ _id: id }))));
  reads.forEach((r, i) => {
    assert.ok(r.ok);
    const seen = r.text.match(/leak-check-\d+-end/g) ?? [];
    assert.deepEqual(seen, [`leak-check-${i}-end`], `episode ${i} saw ${seen.join(', ')}`);
  });
  await Promise.all(sessions.map((s) => core.close(s)));
  assert.equal(w.store.sessionCount, before);
  const fresh = core.open('iso-after', 'ors');
  await core.reset(fresh, { split: 'test', index: 0 });
  const after = await core.call(fresh, 'observation_search_vitals', JSON.stringify({ _id: id }));
  assert.ok(after.ok && !/leak-check/.test(after.text), 'the base holds none of the writes');
  await core.close(fresh);
});
