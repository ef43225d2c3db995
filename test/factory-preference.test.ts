/**
 * Preference data past SFT: an eval run with several trials per task whose rollouts sometimes pass becomes TRL DPO and
 * KTO rows: chosen/rejected over the same prompt prefix, every pair graded again, the file round-tripped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEval } from '../src/eval/run.js';
import { openBackend, officialGrader, openTaskSet } from '../src/eval/setup.js';
import { expertPolicy } from '../src/agent/create.js';
import { divergence } from '../src/factory/preference.js';
import type { Agent } from '../src/agent/types.js';
import { PolicyAgent } from '../src/agent/backends/scripted.js';
import type { Protocol } from '../src/protocol/action.js';
import { cli } from './helpers/cli.js';

const API = 'http://localhost:8080/fhir/';

/** The first (index mod 3) episodes of each task follow the expert; later ones answer [-5] after the expert's first read. */
function alternating(): Agent {
  const started = new Map<number, number>();
  const policy = new PolicyAgent('alternating', async (task, history, episode) => {
    if (history.length === 1) started.set(episode.index, (started.get(episode.index) ?? 0) + 1);
    const right = (started.get(episode.index) ?? 0) <= episode.index % 3;
    const agentTurns = history.filter((h) => h.role === 'agent').length;
    if (right || agentTurns === 0) return expertPolicy(task, history, episode);
    return 'FINISH([-5])';
  });
  return policy;
}

async function trialsRun(dir: string, protocol: Protocol) {
  const backend = await openBackend({ apiBase: API, world: 'medagentbench', live: true });
  const r = await runEval({
    out: dir,
    taskSet: openTaskSet('medagentbench-v2'),
    agent: alternating(),
    backend,
    grade: officialGrader,
    apiBase: API,
    protocol,
    postMode: protocol === 'text' ? 'official' : 'live',
    families: ['task2', 'task4'],
    limit: 6,
    trials: 3,
    concurrency: 1,
    progress: false,
  });
  return r.summary!;
}

test('divergence: the first differing message', () => {
  const u = { role: 'user' as const, content: 'q' };
  assert.equal(divergence([u, { role: 'assistant', content: 'a' }], [u, { role: 'assistant', content: 'b' }]), 1);
  assert.equal(divergence([u], [u, { role: 'assistant', content: 'b' }]), 1);
  // answers to the same action may differ in incidental ids (each trial has its own session): compared by role
  const a = { role: 'assistant' as const, content: 'GET x' };
  assert.equal(
    divergence(
      [u, a, { role: 'user', content: 'id 1' }, { role: 'assistant', content: 'y' }],
      [u, a, { role: 'user', content: 'id 2' }, { role: 'assistant', content: 'z' }],
    ),
    3,
  );
  assert.equal(divergence([u, a], [u, { role: 'user', content: 'q' }]), -1);
});

for (const protocol of ['text', 'tools'] as const) {
  test(`export --format dpo and kto from a ${protocol} run with --trials 3`, async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-pref-'));
    try {
      const run = join(tmp, 'run');
      const s = await trialsRun(run, protocol);
      // task2_1..task2_6 (indices 30..35): 0,1,2,0,1,2 passing trials of 3 → tasks with both: indices 31, 32, 34, 35
      assert.equal(s.total, 18);
      const dpo = await cli('export', run, '--format', 'dpo', '--out', join(tmp, 'dpo'), '--json');
      assert.equal(dpo.code, 0, dpo.err);
      const sum = JSON.parse(dpo.out);
      assert.equal(sum.tasks_with_both, 4);
      // pairs: min(passes, fails) per task: 1 + 1 + 1 + 1
      assert.equal(sum.pairs, 4);
      const rows = readFileSync(join(tmp, 'dpo', 'train.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(rows.length, 4);
      // every chosen row comes from a trial the grader passed, every rejected row from one it failed (and the export
      // graded both again: nothing dropped)
      const verdict = new Map(
        readFileSync(join(run, 'grades.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
          .map((g) => [`${g.id}#${g.trial}`, g.correct]),
      );
      assert.deepEqual(sum.dropped, []);
      for (const r of rows) {
        assert.equal(verdict.get(`${r.ehrgym.task_id}#${r.ehrgym.trials[0]}`), true);
        assert.equal(verdict.get(`${r.ehrgym.task_id}#${r.ehrgym.trials[1]}`), false);
      }
      for (const r of rows) {
        assert.deepEqual(Object.keys(r).slice(0, 3), ['prompt', 'chosen', 'rejected']);
        assert.equal(r.chosen.length, 1);
        assert.equal(r.chosen[0].role, 'assistant');
        assert.equal(r.rejected[0].role, 'assistant');
        assert.notDeepEqual(r.chosen, r.rejected);
        // the rollouts part after the expert's first read: prompt = task message, first call, its answer
        assert.equal(r.prompt.length, 3);
        assert.equal(r.prompt[0].role, 'user');
        if (protocol === 'text') {
          assert.equal(r.rejected[0].content, 'FINISH([-5])');
          assert.match(r.chosen[0].content, /^FINISH\(\[\d+\]\)$/);
          assert.equal(r.tools, undefined);
        } else {
          assert.equal(r.rejected[0].tool_calls[0].function.name, 'finish');
          assert.equal(r.rejected[0].tool_calls[0].function.arguments, '{"answer": [-5]}');
          assert.equal(r.tools.length, 10);
          assert.equal(r.prompt[2].role, 'tool');
        }
      }
      const kto = await cli('export', run, '--format', 'kto', '--out', join(tmp, 'kto'), '--json');
      assert.equal(kto.code, 0, kto.err);
      const krows = readFileSync(join(tmp, 'kto', 'train.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(krows.length, 8);
      assert.deepEqual(
        krows.map((r) => r.label),
        [true, false, true, false, true, false, true, false],
      );
      assert.deepEqual(krows[0].prompt, rows[0].prompt);
      assert.deepEqual(krows[1].completion, rows[0].rejected);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}

test('export --format dpo: a run with no task that both passes and fails, or a corpus folder, is refused in one line', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-pref-bad-'));
  try {
    const backend = await openBackend({ apiBase: API, world: 'medagentbench' });
    const run = join(tmp, 'oracle');
    await runEval({
      out: run,
      taskSet: openTaskSet('medagentbench-v2'),
      agent: new PolicyAgent('oracle', expertPolicy),
      backend,
      grade: officialGrader,
      limit: 2,
      trials: 2,
      progress: false,
    });
    const r = await cli('export', run, '--format', 'dpo', '--out', join(tmp, 'o'));
    assert.equal(r.code, 2);
    assert.match(r.err, /^ehrgym: .*no task has both a passing and a failing rollout/);
    const r2 = await cli('export', tmp, '--format', 'kto', '--out', join(tmp, 'o'));
    assert.equal(r2.code, 2);
    assert.match(r2.err, /not an eval run folder/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
