/**
 * Sharded eval runs (`ehrgym eval … --shard i/N`, `ehrgym merge`): shards merged into the folder the same run makes
 * unsharded (every file compared; only wall-clock fields differ between two executions), bad merges refused with one
 * line naming the folder, and a shard killed with SIGKILL resumed and merged.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { startMockOpenAI } from '../src/agent/mock-openai.js';
import { getFamily } from '../src/tasks/registry.js';
import { openTaskSet } from '../src/eval/setup.js';
import { parseShardSpec } from '../src/eval/shard.js';
import type { HistoryItem } from '../src/tasks/types.js';

const made: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'ehrgym-shard-'));
  made.push(d);
  return d;
};
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const countLines = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8').split('\n').length - 1 : 0);

/**
 * The wall-clock fields of a run folder, the only bytes two executions of one run do not share: AgentBench's `time`
 * of each runs.jsonl / error.jsonl line, each episode's `ms` (episodes.jsonl, grades.jsonl) and summary.json's `wallMs`.
 */
const WALL_CLOCK: Record<string, RegExp> = {
  'runs.jsonl': /"time": \{"timestamp": \d+, "str": "[^"]*"\}/g,
  'error.jsonl': /"time": \{"timestamp": \d+, "str": "[^"]*"\}/g,
  'episodes.jsonl': /"ms":\d+/g,
  'grades.jsonl': /"ms":\d+/g,
  'summary.json': /"wallMs": \d+/g,
};

/** Every file of `a` and `b`: the same names, the same bytes once the wall-clock fields are blanked. */
function assertSameRun(a: string, b: string): void {
  const names = readdirSync(a).sort();
  assert.deepEqual(readdirSync(b).sort(), names);
  for (const n of names) {
    const blank = (dir: string) => {
      const text = readFileSync(join(dir, n), 'utf8');
      return WALL_CLOCK[n] ? text.replace(WALL_CLOCK[n], '<wall clock>') : text;
    };
    const x = blank(a);
    const y = blank(b);
    if (x !== y) {
      let k = 0;
      while (k < x.length && x[k] === y[k]) k++;
      assert.fail(`${n} differs at ${k}: …${x.slice(k - 60, k + 60)}… vs …${y.slice(k - 60, k + 60)}…`);
    }
  }
}

async function ok(...args: string[]): Promise<string> {
  const r = await cli(...args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
  return r.out;
}

/** A mock OpenAI server whose model `mock-expert` answers every v2 task with the expert solver. */
function startExpertMock(latencyMs = 0) {
  const taskSet = openTaskSet('medagentbench-v2');
  const byQuestion = new Map(taskSet.tasks.map((t) => [t.instruction, t]));
  return startMockOpenAI({
    model: 'mock-expert',
    latencyMs,
    keepBodies: false,
    script: (req) => {
      const task = byQuestion.get(req.prompt.slice(req.prompt.indexOf('\nQuestion: ') + 11))!;
      const history: HistoryItem[] = req.messages.map((m) => ({ role: m.role === 'assistant' ? 'agent' : 'user', content: m.content }));
      return getFamily(task.id.split('_')[0]).solve(task, history);
    },
  });
}

/** Runs `args` unsharded (concurrency 1: task order) and as `n` shards (concurrency 3), merges, compares. */
async function shardedEqualsUnsharded(args: string[], n: number): Promise<{ merged: string; shards: string[] }> {
  const root = tmp();
  const whole = join(root, 'whole');
  await ok('eval', ...args, '--concurrency', '1', '--out', whole, '--no-progress', '--json');
  const shards: string[] = [];
  for (let i = n - 1; i >= 0; i--) {
    const dir = join(root, `shard-${i}`);
    await ok('eval', ...args, '--concurrency', '3', '--shard', `${i}/${n}`, '--out', dir, '--no-progress', '--json');
    shards.push(dir);
  }
  const merged = join(root, 'merged');
  const out = await ok('merge', ...shards, '--out', merged, '--json');
  assertSameRun(whole, merged);
  assert.deepEqual(JSON.parse(out).correct, JSON.parse(readFileSync(join(whole, 'summary.json'), 'utf8')).correct);
  return { merged, shards };
}

test('--shard i/N: 0-based, bad values refused naming the flag', async () => {
  assert.deepEqual(parseShardSpec('0/4'), { index: 0, count: 4 });
  assert.deepEqual(parseShardSpec('3/4'), { index: 3, count: 4 });
  assert.deepEqual(parseShardSpec('0/1'), { index: 0, count: 1 });
  const out = tmp();
  for (const bad of ['4/4', '5/4', 'a/b', '1', '-1/4', '0/0', '1/2/3', '']) {
    const r = await cli('eval', '--agent', 'oracle', '--shard', bad, '--out', join(out, 'x'));
    assert.equal(r.code, 2, bad);
    assert.match(r.err, /^ehrgym: --shard: .*\n$/, bad);
    const g = await cli('generate', '--shard', bad, '--out', join(out, 'y'));
    assert.equal(g.code, 2, bad);
    assert.match(g.err, /^ehrgym: --shard: .*\n$/, bad);
  }
  assert.equal(
    (await cli('eval', '--agent', 'oracle', '--shard', '4/4', '--out', join(out, 'x'))).err,
    'ehrgym: --shard: the shard index is 0-based: i must be between 0 and 3 for 4 shards, got "4/4"\n',
  );
  assert.ok(!existsSync(join(out, 'x')));
});

test('8 shards of scripted agents, merged: every file as the unsharded run writes it; grade and report read it', async () => {
  const sel = ['--tasks-filter', 'task2,task5,task9,task10', '--limit', '20'];
  const { merged, shards } = await shardedEqualsUnsharded(['--agent', 'oracle', ...sel], 8);
  const m0 = JSON.parse(readFileSync(join(shards[shards.length - 1], 'manifest.json'), 'utf8'));
  assert.equal(m0.shard.index, 0);
  assert.equal(m0.shard.count, 8);
  assert.match(m0.shard.config, /^[0-9a-f]{64}$/);
  assert.equal(JSON.parse(readFileSync(join(merged, 'manifest.json'), 'utf8')).shard, undefined);
  const g = JSON.parse(await ok('grade', '--runs', join(merged, 'runs.jsonl'), '--json'));
  assert.equal(g.correct, 20);
  await ok('report', merged, '--out', join(tmp(), 'report'));
  // a floor agent, and a shard count above the task count (empty shards are complete, empty runs)
  await shardedEqualsUnsharded(['--agent', 'finish-empty', '--tasks-filter', 'task4,task7', '--limit', '6'], 8);
});

test('8 shards of a model over the OpenAI API with --trials 2, merged: identical to the unsharded run', async () => {
  const mock = await startExpertMock();
  try {
    const args = ['--agent', 'openai:mock-expert', '--base-url', mock.url, '--tasks-filter', 'task3,task6,task8', '--limit', '12', '--trials', '2'];
    const { merged } = await shardedEqualsUnsharded(args, 8);
    const s = JSON.parse(readFileSync(join(merged, 'summary.json'), 'utf8'));
    assert.equal(s.total, 24);
    assert.ok(s.trialStats.passAtK['2'] > 0);
  } finally {
    await mock.close();
  }
});

test('reply caches kept beside the shards are merged beside the merged run (each request once), and the manifest says so', async () => {
  const mock = await startExpertMock();
  try {
    const root = tmp();
    const args = [
      '--agent',
      'openai:mock-expert',
      '--base-url',
      mock.url,
      '--tasks-filter',
      'task4',
      '--limit',
      '6',
      '--reply-cache',
      '--no-progress',
      '--json',
    ];
    await ok('eval', ...args, '--out', join(root, 'whole'));
    for (let i = 0; i < 3; i++) await ok('eval', ...args, '--shard', `${i}/3`, '--out', join(root, `s${i}`));
    const merged = join(root, 'merged');
    await ok('merge', join(root, 's0'), join(root, 's1'), join(root, 's2'), '--out', merged);
    const keys = (dir: string) =>
      readFileSync(join(dir, 'reply-cache.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).key as string);
    const mergedKeys = keys(merged);
    assert.equal(new Set(mergedKeys).size, mergedKeys.length);
    assert.deepEqual([...mergedKeys].sort(), [...keys(join(root, 'whole'))].sort());
    assert.equal(JSON.parse(readFileSync(join(merged, 'manifest.json'), 'utf8')).agent.config.replyCache, join(merged, 'reply-cache.jsonl'));
    // the merged run is answered from its cache alone: no model request
    const calls = mock.stats.completions;
    await ok('eval', ...args, '--out', join(root, 'again'), '--reply-cache', join(merged, 'reply-cache.jsonl'));
    assert.equal(mock.stats.completions, calls);
  } finally {
    await mock.close();
  }
});

test('bad merges are refused with one line naming the folder', async () => {
  const root = tmp();
  const sel = ['--agent', 'oracle', '--tasks-filter', 'task2', '--limit', '6', '--no-progress', '--json'];
  const shard = async (name: string, spec: string, ...extra: string[]) => {
    const dir = join(root, name);
    await ok('eval', ...sel, ...extra, '--shard', spec, '--out', dir);
    return dir;
  };
  const s0 = await shard('s0', '0/3');
  const s1 = await shard('s1', '1/3');
  const s2 = await shard('s2', '2/3');
  const other = await shard('other', '2/3', '--max-rounds', '6');
  const refuse = async (dirs: string[], message: RegExp) => {
    const out = join(root, `merged-${Math.random().toString(36).slice(2)}`);
    const r = await cli('merge', ...dirs, '--out', out);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, message);
    assert.equal(r.err.split('\n').length, 2, r.err);
    assert.ok(!existsSync(out));
  };
  await refuse([s0, s1, other], new RegExp(`^ehrgym: ${other}: a shard of a different run \\(configuration [0-9a-f]{12}, 3 shards\\) than ${s0}`));
  await refuse([s0, s2], /^ehrgym: missing shard 1\/3 of the run in .*s0 \(2 of 3 given\)\n$/);
  const copy = join(root, 's1-copy');
  cpSync(s1, copy, { recursive: true });
  await refuse([s0, s1, copy, s2], new RegExp(`^ehrgym: ${copy}: shard 1/3 is given twice \\(also ${s1}\\)\n$`));
  // a shard whose run did not finish: no summary yet, or episodes after its last finish (a resume cut short)
  const unfinished = join(root, 's2-unfinished');
  cpSync(s2, unfinished, { recursive: true });
  rmSync(join(unfinished, 'summary.json'));
  await refuse(
    [s0, s1, unfinished],
    new RegExp(`^ehrgym: ${unfinished}: shard 2/3 did not finish \\(no summary.json\\); complete it with ehrgym eval … --shard 2/3 --resume\n$`),
  );
  const resumedCut = join(root, 's2-resumed-cut');
  cpSync(s2, resumedCut, { recursive: true });
  appendFileSync(
    join(resumedCut, 'runs.jsonl'),
    '{"index": 299, "error": null, "info": null, "output": {"index": 299, "status": "completed", "result": "[]", "history": []}, "time": {"timestamp": 0, "str": ""}}\n',
  );
  await refuse(
    [s0, s1, resumedCut],
    new RegExp(`^ehrgym: ${resumedCut}: shard 2/3 did not finish \\(1 episode\\(s\\) of its runs.jsonl are not in its grades.jsonl\\)`),
  );
  // not a shard; mixed kinds
  const whole = join(root, 'whole');
  await ok('eval', ...sel, '--out', whole);
  await refuse([s0, whole], new RegExp(`^ehrgym: ${whole}: not a shard \\(its manifest has no shard stamp`));
  await refuse([s0, root], new RegExp(`^ehrgym: ${root}: neither a run folder nor a corpus shard\n$`));
  await refuse([s0, join(root, 'nope')], new RegExp(`^ehrgym: ${join(root, 'nope')}: no such folder\n$`));
  // the right set still merges
  await ok('merge', s2, s0, s1, '--out', join(root, 'merged'));
});

test('a shard killed with SIGKILL mid-run resumes with --resume, then merges into the unsharded run', async () => {
  const mock = await startExpertMock(40);
  try {
    const root = tmp();
    const args = ['--agent', 'openai:mock-expert', '--base-url', mock.url, '--tasks-filter', 'task2', '--limit', '18', '--no-progress'];
    const killed = join(root, 'shard-1');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'eval', ...args, '--concurrency', '2', '--shard', '1/3', '--out', killed], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = new Promise<number>((r) => child.on('exit', (code, sig) => r(sig ? -1 : (code ?? 0))));
    const runs = join(killed, 'runs.jsonl');
    for (let i = 0; i < 2400 && countLines(runs) < 3; i++) await sleep(25);
    child.kill('SIGKILL');
    assert.equal(await exited, -1, 'killed before finishing');
    await sleep(200);
    const before = countLines(runs);
    assert.ok(before >= 3 && before < 6, `killed mid-run (${before} of 6 episodes on disk)`);
    assert.ok(!existsSync(join(killed, 'summary.json')));
    for (const i of [0, 2]) await ok('eval', ...args, '--concurrency', '2', '--shard', `${i}/3`, '--out', join(root, `shard-${i}`), '--json');
    // merging now is refused: the killed shard did not finish
    const early = await cli('merge', join(root, 'shard-0'), killed, join(root, 'shard-2'), '--out', join(root, 'early'));
    assert.equal(early.code, 2);
    assert.equal(early.err, `ehrgym: ${killed}: shard 1/3 did not finish (no summary.json); complete it with ehrgym eval … --shard 1/3 --resume\n`);
    const calls0 = mock.stats.completions;
    await ok('eval', ...args, '--concurrency', '2', '--shard', '1/3', '--out', killed, '--resume', '--json');
    assert.equal(mock.stats.completions - calls0, 2 * (6 - before), 'only the missing episodes were run');
    const idx = readFileSync(runs, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).index);
    assert.equal(idx.length, 6);
    assert.equal(new Set(idx).size, 6);
    await ok('eval', ...args, '--concurrency', '1', '--out', join(root, 'whole'), '--json');
    await ok('merge', join(root, 'shard-0'), killed, join(root, 'shard-2'), '--out', join(root, 'merged'));
    assertSameRun(join(root, 'whole'), join(root, 'merged'));
  } finally {
    await mock.close();
  }
});
