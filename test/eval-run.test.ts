import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { FhirStore } from '../src/fhir/store.js';
import { loadReplica } from '../src/worlds/medagentbench.js';
import { embeddedBackend, type FhirBackend } from '../src/eval/backend.js';
import { runEval, EvalError, type Grader, type TaskSet } from '../src/eval/run.js';
import { regradeRuns } from '../src/eval/grade.js';
import { PolicyAgent } from '../src/agent/backends/scripted.js';
import { createAgent } from '../src/agent/create.js';
import { startMockOpenAI } from '../src/agent/mock-openai.js';
import type { TaskCase } from '../src/tasks/types.js';

const file = 'data/medagentbench/test_data_v2.json';
const bytes = readFileSync(file);
const taskSet: TaskSet = {
  name: 'medagentbench-v2',
  tasks: JSON.parse(bytes.toString('utf8')) as TaskCase[],
  sha256: createHash('sha256').update(bytes).digest('hex'),
};

let backend: FhirBackend;
before(() => {
  const store = new FhirStore();
  loadReplica(store);
  backend = embeddedBackend(store, { name: 'medagentbench', fingerprint: 'test-replica' }, 'http://localhost:8080/fhir/');
});

// A grader over the real server: task2's answer must equal the age computed from the patient's birthDate.
const grade: Grader = async (task, output, ctx) => {
  const res = await ctx.fhir({ method: 'GET', url: `${ctx.apiBase}Patient?identifier=${task.eval_MRN}&_format=json` });
  const dob: string = JSON.parse(res.body).entry[0].resource.birthDate;
  const [y, m, d] = dob.split('-').map(Number);
  const age = 2023 - y - (m > 11 || (m === 11 && d > 13) ? 1 : 0);
  return { correct: output.result === `[${age}]`, checks: [] };
};

// A policy that looks the patient up and answers the age (wrong for every 3rd task).
const agePolicy = () =>
  new PolicyAgent('age-policy', (task, history) => {
    if (history.length === 1) return `GET http://localhost:8080/fhir/Patient?identifier=${task.eval_MRN}`;
    const body = history[2].content.slice('Here is the response from the GET request:\n'.length).split('. Please call FINISH')[0];
    const dob: string = JSON.parse(body).entry[0].resource.birthDate;
    const [y, m, d] = dob.split('-').map(Number);
    const age = 2023 - y - (m > 11 || (m === 11 && d > 13) ? 1 : 0);
    const k = Number(task.id.split('_')[1]);
    return `FINISH([${k % 3 === 0 ? age + 1 : age}])`;
  });

const tmp = () => mkdtempSync(join(tmpdir(), 'ehrgym-eval-'));
const lines = (p: string) =>
  readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

test('run folder: AgentBench files, grades, summary, sessions dropped', async () => {
  const out = tmp();
  const r = await runEval({ out, taskSet, agent: agePolicy(), backend, grade, families: ['task2'], concurrency: 4, progress: false });
  const s = r.summary!;
  assert.equal(s.total, 30);
  assert.equal(s.correct, 20);
  assert.equal(s.perFamily.task2.sr, 20 / 30);
  assert.equal(s.querySR, 20 / 30);
  assert.equal(s.statusCounts.completed, 30);
  assert.equal(s.manifest.postMode, 'official');
  assert.equal(s.manifest.world && 'fingerprint' in s.manifest.world && s.manifest.world.fingerprint, 'test-replica');
  const runs = lines(join(out, 'runs.jsonl'));
  assert.equal(runs.length, 30);
  assert.deepEqual(Object.keys(runs[0]), ['index', 'error', 'info', 'output', 'time']);
  assert.deepEqual(Object.keys(runs[0].output), ['index', 'status', 'result', 'history']);
  assert.ok(runs.every((l) => l.index >= 30 && l.index < 60));
  const overall = JSON.parse(readFileSync(join(out, 'overall.json'), 'utf8'));
  assert.equal(overall.total, 30);
  assert.deepEqual(Object.keys(overall.validation).slice(0, 8), [
    'running',
    'completed',
    'agent context limit',
    'agent validation failed',
    'agent invalid action',
    'task limit reached',
    'unknown',
    'task error',
  ]);
  assert.equal(overall.validation.completed, 1);
  assert.equal(overall.validation.average_history_length, 4);
  assert.equal(overall.custom['success rate'], 20 / 30);
  assert.equal(overall.custom.raw_results.filter((o: any) => o.status === 'completedCorrect').length, 20);
  const grades = lines(join(out, 'grades.jsonl'));
  assert.deepEqual(
    grades.map((g) => g.index),
    Array.from({ length: 30 }, (_, i) => 30 + i),
  );
  assert.equal(grades[0].rounds, 2);
  // the GET reply is the embedded server's HAPI-style body, on the advertised base
  assert.match(runs[0].output.history[2].content, /"url": "http:\/\/localhost:8080\/fhir\/Patient\?_format=json&identifier=S/);
  // re-grading the log gives the same verdicts
  const rg = await regradeRuns({ taskSet, runsPath: join(out, 'runs.jsonl'), grade, ctx: { apiBase: 'http://localhost:8080/fhir/', fhir: backend.base } });
  assert.equal(rg.correct, 20);
  assert.equal(rg.missing.length, 270);
});

test('resume after a kill: torn runs.jsonl, no duplicates, same totals', async () => {
  const out = tmp();
  const full = await runEval({ out, taskSet, agent: agePolicy(), backend, grade, families: ['task2'], limit: 20, concurrency: 3, progress: false });
  const runsPath = join(out, 'runs.jsonl');
  const text = readFileSync(runsPath, 'utf8');
  const ls = text.split('\n');
  // keep 8 complete lines and half of the 9th (a write cut by kill -9); derived files never written
  writeFileSync(runsPath, ls.slice(0, 8).join('\n') + '\n' + ls[8].slice(0, 40));
  for (const f of ['overall.json', 'summary.json', 'grades.jsonl']) rmSync(join(out, f));
  let calls = 0;
  const inner = agePolicy();
  const counting = new PolicyAgent('age-policy', async (t, h, e) => {
    calls++;
    return (await inner.act(h, e)).content;
  });
  const r = await runEval({ out, taskSet, agent: counting, backend, grade, families: ['task2'], limit: 20, concurrency: 3, resume: true, progress: false });
  assert.equal(r.ran, 12);
  assert.equal(calls, 24);
  const idx = lines(runsPath).map((l) => l.index);
  assert.equal(idx.length, 20);
  assert.equal(new Set(idx).size, 20);
  assert.equal(r.summary!.correct, full.summary!.correct);
  assert.deepEqual(r.summary!.statusCounts, full.summary!.statusCounts);
  // episodes.jsonl: one line per episode (the 12 cut off from runs.jsonl lost their old stats lines and wrote new ones)
  const stats = lines(join(out, 'episodes.jsonl')).map((l) => l.index);
  assert.equal(stats.length, 20);
  assert.equal(new Set(stats).size, 20);
  // resuming a finished run does nothing and changes nothing
  const again = await runEval({ out, taskSet, agent: agePolicy(), backend, grade, families: ['task2'], limit: 20, resume: true, progress: false });
  assert.equal(again.ran, 0);
  assert.equal(lines(runsPath).length, 20);
});

test('resume after a kill between the two lines of an episode: its stats line goes, it runs again, nothing lost', async () => {
  const whole = tmp();
  await runEval({ out: whole, taskSet, agent: agePolicy(), backend, grade, families: ['task2'], limit: 6, concurrency: 1, progress: false });
  const out = tmp();
  await runEval({ out, taskSet, agent: agePolicy(), backend, grade, families: ['task2'], limit: 6, concurrency: 1, progress: false });
  // killed after the last episode's stats line, before its runs line (the order record() writes them in)
  const runsPath = join(out, 'runs.jsonl');
  const ls = readFileSync(runsPath, 'utf8').split('\n').filter(Boolean);
  writeFileSync(runsPath, `${ls.slice(0, 5).join('\n')}\n`);
  for (const f of ['overall.json', 'summary.json', 'grades.jsonl']) rmSync(join(out, f));
  const r = await runEval({ out, taskSet, agent: agePolicy(), backend, grade, families: ['task2'], limit: 6, concurrency: 1, resume: true, progress: false });
  assert.equal(r.ran, 1);
  const blank = (p: string) => readFileSync(p, 'utf8').replace(/"ms":\d+/g, '"ms":0');
  assert.equal(blank(join(out, 'episodes.jsonl')), blank(join(whole, 'episodes.jsonl')));
  assert.equal(lines(join(out, 'grades.jsonl')).length, 6);
});

test('refusals: existing folder without --resume; manifest changed', async () => {
  const out = tmp();
  await runEval({ out, taskSet, agent: agePolicy(), backend, grade, families: ['task2'], limit: 2, progress: false });
  await assert.rejects(
    runEval({ out, taskSet, agent: agePolicy(), backend, grade, families: ['task2'], limit: 2, progress: false }),
    (e: unknown) => e instanceof EvalError && /already holds a run/.test((e as Error).message),
  );
  await assert.rejects(
    runEval({ out, taskSet, agent: createAgent('finish-empty'), backend, grade, families: ['task2'], limit: 2, resume: true, progress: false }),
    (e: unknown) => e instanceof EvalError && /--resume refused.*agent/.test((e as Error).message),
  );
  await assert.rejects(
    runEval({ out, taskSet, agent: agePolicy(), backend, grade, families: ['task2'], limit: 2, resume: true, postMode: 'live', progress: false }),
    /postMode/,
  );
});

test('agent failures go to error.jsonl and are retried by resume', async () => {
  const out = tmp();
  let down = true;
  const inner = agePolicy();
  const flaky = new PolicyAgent('flaky', async (t, h, e) => {
    if (down && e.index % 2 === 0) throw new Error('connection refused');
    return (await inner.act(h, e)).content;
  });
  const r = await runEval({ out, taskSet, agent: flaky, backend, grade, families: ['task2'], limit: 6, progress: false });
  assert.deepEqual(
    r.failed.sort((a, b) => a - b),
    [30, 32, 34],
  );
  const errs = lines(join(out, 'error.jsonl'));
  assert.equal(errs.length, 3);
  assert.equal(errs[0].error, 'AGENT_FAILED');
  assert.deepEqual(errs[0].output, { index: null, status: 'running', result: null, history: null });
  assert.equal(r.summary!.agentFailures, 3);
  assert.equal(lines(join(out, 'grades.jsonl')).length, 6);
  down = false;
  const r2 = await runEval({ out, taskSet, agent: flaky, backend, grade, families: ['task2'], limit: 6, resume: true, progress: false });
  assert.equal(r2.ran, 3);
  assert.deepEqual(r2.failed, []);
  assert.equal(r2.summary!.agentFailures, 0);
  assert.equal(lines(join(out, 'runs.jsonl')).length, 6);
});

test('secrets never reach the run folder', async () => {
  const secret = 'sk-live-SECRET-4242-abcdef';
  const mock = await startMockOpenAI({ script: (req) => (req.turn === 0 ? 'GET http://localhost:8080/fhir/Patient?identifier=S2874099' : 'FINISH([60])') });
  try {
    const out = tmp();
    const agent = createAgent('openai:mock-model', { baseUrls: [mock.url], apiKeyEnv: 'EHRGYM_TEST_KEY', env: { EHRGYM_TEST_KEY: secret } });
    const r = await runEval({ out, taskSet, agent, backend, grade, families: ['task2'], limit: 3, concurrency: 2, progress: false });
    assert.equal(r.summary!.total, 3);
    assert.ok(mock.stats.authorizations.has(`Bearer ${secret}`), 'the key was used');
    for (const f of readdirSync(out)) assert.ok(!readFileSync(join(out, f), 'utf8').includes(secret), `${f} holds the key`);
    assert.equal(r.summary!.manifest.agent.config.apiKeyEnv, 'EHRGYM_TEST_KEY');
    assert.ok(r.summary!.tokens.prompt > 0);
  } finally {
    await mock.close();
  }
});

test('live POST mode: created in the episode session only', async () => {
  const out = tmp();
  const post = new PolicyAgent('poster', (task, history) => {
    if (history.length === 1)
      return `POST http://localhost:8080/fhir/Observation\n{"resourceType": "Observation", "status": "final", "code": {"text": "BP"}, "subject": {"reference": "Patient/${task.eval_MRN}"}, "effectiveDateTime": "2023-11-13T10:15:00+00:00", "valueString": "118/77 mmHg"}`;
    if (history.length === 3) {
      const id = /Observation\/(\d+)\/_history/.exec(history[2].content)![1];
      return `GET http://localhost:8080/fhir/Observation?_id=${id}`;
    }
    return 'FINISH([])';
  });
  const r = await runEval({
    out,
    taskSet,
    agent: post,
    backend,
    grade: () => ({ correct: true, checks: [] }),
    families: ['task3'],
    limit: 2,
    postMode: 'live',
    progress: false,
  });
  assert.equal(r.summary!.manifest.postMode, 'live');
  const runs = lines(join(out, 'runs.jsonl')).sort((a, b) => a.index - b.index);
  assert.match(
    runs[0].output.history[2].content,
    /^POST request accepted and executed successfully\. Location: http:\/\/localhost:8080\/fhir\/Observation\/\d+\/_history\/1\. Please call FINISH/,
  );
  assert.match(runs[0].output.history[4].content, /118\/77 mmHg/);
  // the base never sees episode writes
  const base = await backend.base({ method: 'GET', url: `http://localhost:8080/fhir/Observation?patient=${taskSet.tasks[60].eval_MRN}&code=BP&_format=json` });
  assert.ok(!base.body.includes('118/77 mmHg'));
  assert.ok(existsSync(join(out, 'summary.json')));
});

test('--fhir-url: an external server over HTTP gives byte-identical transcripts and verdicts', async () => {
  const { startFhirServer } = await import('../src/fhir/server.js');
  const { externalBackend } = await import('../src/eval/backend.js');
  const { createAgent: mk } = await import('../src/agent/create.js');
  const { officialGrader } = await import('../src/eval/setup.js');
  const store = new FhirStore();
  loadReplica(store);
  const server = await startFhirServer(store, { trustForwarded: true });
  try {
    const ext = externalBackend(server.url, 'http://localhost:8080/fhir/');
    const pick = { families: ['task4', 'task9', 'task10'], limit: 45, concurrency: 4, progress: false } as const;
    const a = await runEval({ out: tmp(), taskSet, agent: mk('oracle'), backend, grade: officialGrader, ...pick, families: [...pick.families] });
    const b = await runEval({ out: tmp(), taskSet, agent: mk('oracle'), backend: ext, grade: officialGrader, ...pick, families: [...pick.families] });
    assert.equal(a.summary!.correct, 45);
    assert.equal(b.summary!.correct, 45);
    const hist = (dir: string) => new Map(lines(join(dir, 'runs.jsonl')).map((l) => [l.index, JSON.stringify(l.output)]));
    const ha = hist(a.dir);
    const hb = hist(b.dir);
    assert.equal(ha.size, 45);
    for (const [i, h] of ha) {
      const o = hb.get(i)!;
      if (o !== h) {
        let k = 0;
        while (k < h.length && h[k] === o[k]) k++;
        assert.fail(`task index ${i} differs at ${k}: embedded …${h.slice(k - 80, k + 80)}… vs external …${o.slice(k - 80, k + 80)}…`);
      }
    }
    assert.ok(!readFileSync(join(b.dir, 'runs.jsonl'), 'utf8').includes(server.url), 'the real address never reaches the transcript');
    assert.deepEqual(b.summary!.manifest.world, { fhirUrl: server.url });
  } finally {
    await server.close();
  }
});

test('--api-base: prompts, transcripts and grading use the advertised base', async () => {
  const { createAgent: mk } = await import('../src/agent/create.js');
  const { officialGrader } = await import('../src/eval/setup.js');
  const store = new FhirStore();
  loadReplica(store);
  const base = 'http://ehr.example.org:9090/fhir/';
  const custom = embeddedBackend(store, { name: 'medagentbench', fingerprint: 'test-replica' }, base);
  const r = await runEval({
    out: tmp(),
    taskSet,
    agent: mk('oracle'),
    backend: custom,
    grade: officialGrader,
    apiBase: base,
    families: ['task9', 'task10'],
    limit: 40,
    concurrency: 4,
    progress: false,
  });
  assert.equal(r.summary!.correct, 40);
  assert.equal(r.summary!.manifest.apiBase, base);
  const text = readFileSync(join(r.dir, 'runs.jsonl'), 'utf8');
  assert.ok(text.includes(`Note that you should use ${base} as the api_base.`));
  assert.ok(text.includes(`POST ${base}ServiceRequest`));
  assert.ok(!text.includes('localhost:8080'));
  // the same log graded against the official base fails the exact-URL checks of the action tasks
  const rg = await regradeRuns({
    taskSet,
    runsPath: join(r.dir, 'runs.jsonl'),
    grade: officialGrader,
    ctx: { apiBase: 'http://localhost:8080/fhir/', fhir: backend.base },
  });
  assert.ok(rg.correct < 40);
});

test('replay:<runs.jsonl> re-sends a recorded run and reproduces it byte for byte', async () => {
  const { createAgent: mk } = await import('../src/agent/create.js');
  const { officialGrader } = await import('../src/eval/setup.js');
  const sel = { families: ['task5', 'task6'], limit: 40, concurrency: 4, progress: false };
  const a = await runEval({ out: tmp(), taskSet, agent: mk('oracle'), backend, grade: officialGrader, ...sel });
  const b = await runEval({ out: tmp(), taskSet, agent: mk(`replay:${join(a.dir, 'runs.jsonl')}`), backend, grade: officialGrader, ...sel });
  const outs = (d: string) =>
    lines(join(d, 'runs.jsonl'))
      .map((l) => JSON.stringify(l.output))
      .sort();
  assert.deepEqual(outs(b.dir), outs(a.dir));
  assert.equal(b.summary!.correct, 40);
  // a recorded context-limit episode replays as a context limit; a missing index is an agent failure
  const rec = join(tmp(), 'runs.jsonl');
  writeFileSync(
    rec,
    JSON.stringify({
      index: 30,
      error: null,
      info: null,
      output: { index: 30, status: 'agent context limit', result: null, history: [{ role: 'user', content: 'p' }] },
    }) + '\n',
  );
  const c = await runEval({ out: tmp(), taskSet, agent: mk(`replay:${rec}`), backend, grade: officialGrader, families: ['task2'], limit: 2, progress: false });
  assert.equal(c.summary!.statusCounts['agent context limit'], 1);
  assert.deepEqual(c.failed, [31]);
});

test('live POST mode over --fhir-url: writes stay in the episode session on an ehrgym server and are dropped', async () => {
  const { startFhirServer } = await import('../src/fhir/server.js');
  const { externalBackend } = await import('../src/eval/backend.js');
  const store = new FhirStore();
  loadReplica(store);
  const server = await startFhirServer(store, { trustForwarded: true });
  try {
    const ext = externalBackend(server.url, 'http://localhost:8080/fhir/', { dropSessions: true });
    const post = new PolicyAgent('poster', (task, history) => {
      if (history.length === 1)
        return `POST http://localhost:8080/fhir/Observation\n{"resourceType": "Observation", "status": "final", "code": {"text": "BP"}, "subject": {"reference": "Patient/${task.eval_MRN}"}, "effectiveDateTime": "2023-11-13T10:15:00+00:00", "valueString": "118/77 mmHg"}`;
      if (history.length === 3) return `GET http://localhost:8080/fhir/Observation?_id=${/Observation\/(\d+)\/_history/.exec(history[2].content)![1]}`;
      return 'FINISH([])';
    });
    const r = await runEval({
      out: tmp(),
      taskSet,
      agent: post,
      backend: ext,
      grade: () => ({ correct: true, checks: [] }),
      families: ['task3'],
      limit: 3,
      postMode: 'live',
      concurrency: 3,
      progress: false,
    });
    const runs = lines(join(r.dir, 'runs.jsonl'));
    for (const l of runs) {
      assert.match(l.output.history[2].content, /Location: http:\/\/localhost:8080\/fhir\/Observation\/\d+\/_history\/1\./);
      assert.match(l.output.history[4].content, /"valueString": "118\/77 mmHg"/);
    }
    assert.equal(store.sessionCount, 0, 'sessions dropped at the end of each episode');
    const base = await ext.base({
      method: 'GET',
      url: `http://localhost:8080/fhir/Observation?patient=${taskSet.tasks[60].eval_MRN}&_count=5000&_format=json`,
    });
    assert.ok(!base.body.includes('118/77 mmHg'));
  } finally {
    await server.close();
  }
});

test('resume: a damaged line before the end is reported with its line number, nothing is truncated', async () => {
  const out = tmp();
  await runEval({ out, taskSet, agent: agePolicy(), backend, grade, families: ['task2'], limit: 4, progress: false });
  const runsPath = join(out, 'runs.jsonl');
  const ls = readFileSync(runsPath, 'utf8').split('\n');
  ls[1] = ls[1].slice(0, 30);
  const damaged = ls.join('\n');
  writeFileSync(runsPath, damaged);
  await assert.rejects(
    runEval({ out, taskSet, agent: agePolicy(), backend, grade, families: ['task2'], limit: 4, resume: true, progress: false }),
    (e: unknown) => e instanceof EvalError && /--resume: .*runs\.jsonl:2: not valid JSON/.test((e as Error).message),
  );
  assert.equal(readFileSync(runsPath, 'utf8'), damaged);
});
