/**
 * `--trials K`: K episodes per task, keyed by (task index, trial) in every file, resumable per (task, trial), with
 * pass@k (unbiased estimator) and pass^k (τ-bench) checked against values computed by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { passAtK, passHatK, trialStats } from '../src/eval/passk.js';
import { runEval } from '../src/eval/run.js';
import { regradeRuns } from '../src/eval/grade.js';
import { openBackend, officialGrader, openTaskSet } from '../src/eval/setup.js';
import { expertPolicy } from '../src/agent/create.js';
import type { Agent } from '../src/agent/types.js';
import { buildReport, createViewerApp, loadRunsByTrial, renderReport } from '../src/report/index.js';

const API = 'http://localhost:8080/fhir/';
const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} ≠ ${b}`);

test('pass@k and pass^k by hand', () => {
  // n = 5 trials, c = 2 passes
  close(passAtK(5, 2, 1), 0.4);
  close(passAtK(5, 2, 2), 1 - 3 / 10); // 1 - C(3,2)/C(5,2)
  close(passAtK(5, 2, 4), 1); // n - c < k: some pass always drawn
  close(passHatK(5, 2, 1), 0.4);
  close(passHatK(5, 2, 2), 1 / 10); // C(2,2)/C(5,2)
  close(passHatK(5, 2, 3), 0);
  close(passAtK(3, 0, 3), 0);
  close(passHatK(3, 3, 3), 1);
  assert.throws(() => passAtK(3, 1, 4), RangeError);
  const s = trialStats(
    [
      { id: 'task2_1', outcomes: [true, true, false] },
      { id: 'task2_2', outcomes: [true, true, true] },
      { id: 'task4_1', outcomes: [false, false, false] },
      { id: 'task4_2', outcomes: [false, true, false] },
    ],
    3,
  );
  close(s.passAtK['1'], 6 / 12);
  close(s.passAtK['2'], (1 + 1 + 0 + 2 / 3) / 4);
  close(s.passAtK['3'], (1 + 1 + 0 + 1) / 4);
  close(s.passHatK['2'], (1 / 3 + 1 + 0 + 0) / 4);
  close(s.passHatK['3'], (0 + 1 + 0 + 0) / 4);
  close(s.consistency, 0.5);
  close(s.perFamily.task2.passHatK['3'], 0.5);
  close(s.perFamily.task4.passAtK['1'], 1 / 6);
  assert.ok(s.pass1Interval[0] < 0.5 && s.pass1Interval[1] > 0.5);
});

test('eval --trials 3: K episodes per task, pass@k in the summary, resumable per (task, trial)', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-trials-'));
  try {
    const taskSet = openTaskSet('medagentbench-v2');
    const backend = await openBackend({ apiBase: API, world: 'medagentbench' });
    // task2_1..task2_4 (indices 30..33): the first (index mod 4) episodes of a task answer right, later ones wrong
    const started = new Map<number, number>();
    const agent = (): Agent => ({
      name: 'alternating',
      config: { backend: 'scripted' },
      act: async (history, episode) => {
        if (history.length === 1) started.set(episode.index, (started.get(episode.index) ?? 0) + 1);
        const right = (started.get(episode.index) ?? 0) <= episode.index % 4;
        return { content: right ? await expertPolicy(episode.task, history, episode) : 'FINISH([-5])' };
      },
    });
    const out = join(tmp, 'run');
    const opts = { out, taskSet, backend, grade: officialGrader, apiBase: API, families: ['task2'], limit: 4, trials: 3, progress: false, concurrency: 1 };
    const r = await runEval({ ...opts, agent: agent() });
    const s = r.summary!;
    assert.equal(s.total, 12);
    assert.equal(s.correct, 2 + 3 + 0 + 1);
    assert.equal(s.manifest.trials, 3);
    const t = s.trialStats!;
    close(t.passAtK['1'], 0.5);
    close(t.passAtK['2'], (1 + 1 + 0 + 2 / 3) / 4);
    close(t.passHatK['2'], (1 / 3 + 1 + 0 + 0) / 4);
    close(t.consistency, 0.5);
    const lines = readFileSync(join(out, 'runs.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 12);
    assert.deepEqual(
      lines.map((l) => `${l.index}.${l.trial}`),
      ['30.1', '30.2', '30.3', '31.1', '31.2', '31.3', '32.1', '32.2', '32.3', '33.1', '33.2', '33.3'],
    );
    const grades = readFileSync(join(out, 'grades.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      grades.map((g) => `${g.index}.${g.trial}:${g.correct ? 1 : 0}`),
      ['30.1:1', '30.2:1', '30.3:0', '31.1:1', '31.2:1', '31.3:1', '32.1:0', '32.2:0', '32.3:0', '33.1:1', '33.2:0', '33.3:0'],
    );
    // ehrgym grade reads the trials back: same verdicts, same statistics
    const regraded = await regradeRuns({ taskSet, runsPath: join(out, 'runs.jsonl'), grade: officialGrader, ctx: { apiBase: API, fhir: backend.base } });
    assert.deepEqual(
      regraded.graded.map((g) => `${g.index}.${g.trial}:${g.correct ? 1 : 0}`),
      grades.map((g) => `${g.index}.${g.trial}:${g.correct ? 1 : 0}`),
    );
    // over the whole task set: the 296 tasks the run did not select count as failed trials
    assert.equal(regraded.trialStats!.trials, 3);
    assert.equal(regraded.missing.length, 296);
    close(regraded.trialStats!.passAtK['1'], 6 / 900);
    // the report: task views read trial 1; the Trials table and the tasks whose trials disagree
    const report = await renderReport(buildReport([out]));
    const md = report.markdown;
    assert.match(md, /### Trials/);
    assert.match(md, /\| pass@2 \| 66\.7% \|/);
    assert.match(md, /\| pass\^2 \| 33\.3% \|/);
    assert.match(md, /\| tasks whose trials agree \| 50\.0% \|/);
    assert.match(md, /trials disagree on 2 task\(s\): `task2_1` ✓✓✗, `task2_4` ✓✗✗/);
    assert.match(report.html, /<h3 id="trials">Trials<\/h3>/);
    // the viewer: one column per trial, a task's trials side by side
    const byTrial = loadRunsByTrial([out], () => {});
    assert.deepEqual(
      byTrial.map((r) => r.label),
      ['run trial 1', 'run trial 2', 'run trial 3'],
    );
    const api = (await (await createViewerApp(byTrial).request('/api/tasks')).json()) as { tasks: Array<{ id: string; runs: Array<{ correct: boolean }> }> };
    assert.deepEqual(
      api.tasks.find((t) => t.id === 'task2_1')!.runs.map((r) => r.correct),
      [true, true, false],
    );
    // an interrupted run: the last 5 episodes lost; --resume runs exactly those, and the summary is the same
    writeFileSync(join(out, 'runs.jsonl'), readFileSync(join(out, 'runs.jsonl'), 'utf8').trim().split('\n').slice(0, 7).join('\n') + '\n');
    writeFileSync(join(out, 'episodes.jsonl'), readFileSync(join(out, 'episodes.jsonl'), 'utf8').trim().split('\n').slice(0, 7).join('\n') + '\n');
    started.clear();
    for (const [i, n] of [
      [30, 3],
      [31, 3],
      [32, 1],
    ]) {
      started.set(i, n);
    }
    const again = await runEval({ ...opts, agent: agent(), resume: true });
    assert.equal(again.ran, 5);
    assert.equal(again.summary!.correct, s.correct);
    assert.deepEqual(again.summary!.trialStats, t);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
