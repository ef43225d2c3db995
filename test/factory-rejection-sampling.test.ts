/**
 * The rejection-sampling loop, end to end with the mock model (docs/factory.md): train tasks on patients held out from
 * evaluation → K sampled rollouts per task from an OpenAI-compatible endpoint (`eval --trials`) → the graded passes
 * merged with expert rows, deduplicated and pollution-filtered (`generate --collect`) → and the same run's passing and
 * failing rollouts as DPO pairs (`export --format dpo`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMockOpenAI } from '../src/agent/mock-openai.js';
import { expertPolicy } from '../src/agent/create.js';
import type { TaskCase } from '../src/tasks/types.js';
import { cli } from './helpers/cli.js';

test('tasks generate → eval --trials 3 (mock model) → generate --collect → export --format dpo', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-rs-'));
  const train = join(tmp, 'train.json');
  let mock: Awaited<ReturnType<typeof startMockOpenAI>> | undefined;
  try {
    const g = await cli('tasks', 'generate', '--world', 'synthetic', '--families', 'task2,task4,task5', '--per-family', '2', '--out', train);
    assert.equal(g.code, 0, g.err);
    const tasks = JSON.parse(readFileSync(train, 'utf8')) as TaskCase[];
    // the model: the expert, except that every third request after the first turn answers [-5]
    let n = 0;
    mock = await startMockOpenAI({
      script: (req) => {
        const task = tasks.find((t) => req.prompt.endsWith(`Question: ${t.instruction}`))!;
        if (req.turn > 0 && n++ % 3 === 0) return 'FINISH([-5])';
        const history = req.messages.map((m) => ({ role: m.role === 'assistant' ? ('agent' as const) : ('user' as const), content: m.content }));
        return expertPolicy(task, history, { index: 0, task, apiBase: 'http://localhost:8080/fhir/' });
      },
    });
    const rs = join(tmp, 'rollouts');
    const e = await cli(
      'eval',
      '--agent',
      'openai:mock',
      '--base-url',
      mock.url,
      '--tasks',
      train,
      '--trials',
      '3',
      '--temperature',
      '0.7',
      '--concurrency',
      '1',
      '--out',
      rs,
      '--json',
      '--no-progress',
    );
    assert.equal(e.code, 0, e.err);
    const summary = JSON.parse(e.out);
    assert.equal(summary.total, 18);
    assert.ok(summary.correct > 0 && summary.correct < 18, `${summary.correct} of 18 passed`);
    assert.equal(summary.trialStats.trials, 3);
    // the manifest names the task file, so the factory can read the tasks back
    assert.equal(summary.manifest.taskSet.path, train);

    const sft = join(tmp, 'sft');
    const c = await cli(
      'generate',
      '--collect',
      join(rs, 'runs.jsonl'),
      '--families',
      'task2,task4,task5',
      '--per-family',
      '1',
      '--tokenizer',
      'estimate',
      '--out',
      sft,
      '--json',
    );
    assert.equal(c.code, 0, c.err);
    const m = JSON.parse(c.out);
    assert.equal(m.pipeline.collected_read, 18);
    // every failing rollout is dropped by the grader; the passes are kept (less duplicates and length limits)
    assert.equal(m.drops.collect?.grader, 18 - summary.correct);
    assert.ok(m.counts.origin.collected > 0, JSON.stringify(m.counts));
    assert.equal(m.pipeline.polluted, 0);

    const dpo = await cli('export', rs, '--format', 'dpo', '--out', join(tmp, 'dpo'), '--json');
    assert.equal(dpo.code, 0, dpo.err);
    const d = JSON.parse(dpo.out);
    assert.ok(d.pairs > 0);
    const rows = readFileSync(join(tmp, 'dpo', 'train.jsonl'), 'utf8')
      .trim()
      .split('\n');
    assert.equal(rows.length, d.pairs);
    for (const line of rows) assert.equal(JSON.parse(line).rejected[0].content, 'FINISH([-5])');
  } finally {
    await mock?.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});
