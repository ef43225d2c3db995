/**
 * kill -9 in the middle of a run, then --resume: no episode lost or duplicated, same totals as an uninterrupted run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMockOpenAI } from '../src/agent/mock-openai.js';
import { getFamily } from '../src/tasks/registry.js';
import { runEval } from '../src/eval/run.js';
import { createAgent } from '../src/agent/create.js';
import { openTaskSet, openBackend, officialGrader } from '../src/eval/setup.js';
import type { HistoryItem } from '../src/tasks/types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const countLines = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).length : 0);

/** A mock OpenAI server whose model `mock-expert` answers every v2 task with the expert solver (80 ms latency). */
function startExpertMock(taskSet: ReturnType<typeof openTaskSet>) {
  const byQuestion = new Map(taskSet.tasks.map((t) => [t.instruction, t]));
  return startMockOpenAI({
    model: 'mock-expert',
    latencyMs: 80,
    keepBodies: false,
    script: (req) => {
      const task = byQuestion.get(req.prompt.slice(req.prompt.indexOf('\nQuestion: ') + 11))!;
      const history: HistoryItem[] = req.messages.map((m) => ({ role: m.role === 'assistant' ? 'agent' : 'user', content: m.content }));
      return getFamily(task.id.split('_')[0]).solve(task, history);
    },
  });
}

test('kill -9 mid-run, then resume: nothing lost, nothing duplicated, same totals', async () => {
  const taskSet = openTaskSet('medagentbench-v2');
  const mock = await startExpertMock(taskSet);
  try {
    const out = mkdtempSync(join(tmpdir(), 'ehrgym-kill-'));
    const runs = join(out, 'runs.jsonl');
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/eval-child.ts', out, mock.url, '30'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((r) => child.on('exit', (code, sig) => r(sig ? -1 : code)));
    // wait until some episodes are on disk, then kill -9 mid-run
    for (let i = 0; i < 1600 && countLines(runs) < 8; i++) await sleep(25);
    child.kill('SIGKILL');
    assert.equal(await exited, -1, 'the child was killed before finishing');
    await sleep(300); // requests the dead child left in flight at the mock complete (and are counted) now
    // complete lines only: a line cut by the kill (no newline yet) is not an episode on disk
    const before = readFileSync(runs, 'utf8').split('\n').length - 1;
    assert.ok(before >= 8 && before < 30, `killed mid-run (${before} lines)`);
    assert.ok(!existsSync(join(out, 'summary.json')));

    const backend = await openBackend({ apiBase: 'http://localhost:8080/fhir/' });
    const calls0 = mock.stats.completions;
    const r = await runEval({
      out,
      taskSet,
      agent: createAgent('openai:mock-expert', { baseUrls: [mock.url], env: {} }),
      backend,
      grade: officialGrader,
      families: ['task2'],
      limit: 30,
      concurrency: 4,
      resume: true,
      progress: false,
    });
    const idx = readFileSync(runs, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).index);
    assert.equal(idx.length, 30);
    assert.equal(new Set(idx).size, 30);
    assert.equal(r.ran, 30 - before);
    assert.equal(mock.stats.completions - calls0, 2 * (30 - before), 'only the missing episodes were run');
    assert.equal(r.summary!.correct, 30);
    assert.equal(r.summary!.statusCounts.completed, 30);
  } finally {
    await mock.close();
  }
});

test('Ctrl-C (SIGINT) on `ehrgym eval`: one line, exit 130, folder resumable to the same totals', async () => {
  const mock = await startExpertMock(openTaskSet('medagentbench-v2'));
  try {
    const out = mkdtempSync(join(tmpdir(), 'ehrgym-sigint-'));
    const runs = join(out, 'runs.jsonl');
    const args = [
      'eval',
      '--agent',
      'openai:mock-expert',
      '--base-url',
      mock.url,
      '--out',
      out,
      '--tasks-filter',
      'task7',
      '--limit',
      '30',
      '--concurrency',
      '3',
      '--no-progress',
    ];
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    for (let i = 0; i < 1600 && countLines(runs) < 6; i++) await sleep(25);
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    assert.match(stderr, /^ehrgym: interrupted; .* is kept, continue with --resume\n$/);
    const before = readFileSync(runs, 'utf8').split('\n').length - 1;
    assert.ok(before >= 6 && before < 30, `${before} episodes before the interrupt`);
    const resumed = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args, '--resume', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    resumed.stdout.on('data', (c) => (stdout += c));
    assert.equal(await new Promise((r) => resumed.on('exit', r)), 0);
    const s = JSON.parse(stdout);
    assert.equal(s.correct, 30);
    const idx = readFileSync(runs, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).index);
    assert.equal(new Set(idx).size, 30);
    assert.equal(idx.length, 30);
  } finally {
    await mock.close();
  }
});
