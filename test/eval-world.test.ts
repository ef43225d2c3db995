/**
 * Task files carry their world: `tasks generate` records it on every record (`ehrgym_world`), and `eval`, `grade` and
 * `tasks solve` run on it by default and refuse another world, seed, patient count or fingerprint with one line naming
 * both. Through the real CLI (in-process `main`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { loadTaskSet } from '../src/tasks/loader.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'ehrgym-world-'));
const OFFICIAL_KEYS = ['id', 'instruction', 'context', 'sol', 'eval_MRN'];
const oneLine = (err: string) => assert.equal(err.trim().split('\n').length, 1, err);

test('a generated task file records its world; eval, grade and solve use it and refuse another', async () => {
  const dir = tmp();
  const set = join(dir, 'set.json');
  let r = await cli('tasks', 'generate', '--out', set, '--seed', '3', '--patients', '40', '--families', 'task2,task5,task9', '--per-family', '3');
  assert.equal(r.code, 0, r.err);

  // still an official task file: a JSON list of records whose official keys come first, plus one extra key
  const records = JSON.parse(readFileSync(set, 'utf8')) as Array<Record<string, unknown>>;
  assert.ok(Array.isArray(records) && records.length === 9);
  const fp = (records[0].ehrgym_world as { fingerprint: string }).fingerprint;
  assert.match(fp, /^[0-9a-f]{64}$/);
  for (const rec of records) {
    const keys = Object.keys(rec);
    assert.equal(keys[keys.length - 1], 'ehrgym_world');
    assert.ok(
      keys.slice(0, -1).every((k) => OFFICIAL_KEYS.includes(k)),
      keys.join(),
    );
    assert.deepEqual(rec.ehrgym_world, { name: 'synthetic', seed: 3, patients: 40, fingerprint: fp });
  }
  assert.deepEqual(loadTaskSet(set).world, { name: 'synthetic', seed: 3, patients: 40, fingerprint: fp });

  // eval runs on the recorded world without being told: the oracle scores everything
  const run = join(dir, 'run');
  r = await cli('eval', '--agent', 'oracle', '--tasks', set, '--out', run, '--json', '--no-progress');
  assert.equal(r.code, 0, r.err);
  const s = JSON.parse(r.out);
  assert.equal(s.correct, 9);
  assert.equal(s.total, 9);
  assert.deepEqual(s.manifest.world, { name: 'synthetic', seed: 3, patients: 40, fingerprint: fp });
  // the same flags as recorded are accepted
  r = await cli('eval', '--agent', 'oracle', '--tasks', set, '--out', join(dir, 'run2'), '--world', 'synthetic', '--seed', '3', '--no-progress');
  assert.equal(r.code, 0, r.err);

  // another world, seed or size: exit 2, one line naming both
  const refusals: Array<[string[], RegExp]> = [
    [['--seed', '4'], /^ehrgym: --seed 4: the tasks of .*set\.json were made on world synthetic seed 3 \(40 patients\), not synthetic seed 4 \(40 patients\)/],
    [['--patients', '41'], /^ehrgym: --patients 41: .* synthetic seed 3 \(40 patients\), not synthetic seed 3 \(41 patients\)/],
    [['--world', 'medagentbench'], /^ehrgym: --world medagentbench: .* synthetic seed 3 \(40 patients\), not medagentbench \(the replica\)/],
  ];
  for (const [flags, re] of refusals) {
    for (const cmd of [
      ['eval', '--agent', 'oracle', '--tasks', set, '--out', join(dir, 'never'), ...flags],
      ['grade', '--runs', join(run, 'runs.jsonl'), '--tasks', set, ...flags],
      ['tasks', 'solve', '--set', set, '--id', 'task5_1', ...flags],
    ]) {
      r = await cli(...cmd);
      assert.equal(r.code, 2, `${cmd.join(' ')}: ${r.err}`);
      assert.match(r.err, re);
      oneLine(r.err);
    }
  }

  // a log graded against another task set (here the default, medagentbench-v2): the prompts differ, no score
  r = await cli('grade', '--runs', join(run, 'runs.jsonl'));
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /^ehrgym: .*runs\.jsonl: the prompt of task index 0 is not task task1_1 of medagentbench-v2 \(nor are 8 more\): pass the task set the run used with --tasks\n$/,
  );

  // grade and solve default to the recorded world too
  r = await cli('grade', '--runs', join(run, 'runs.jsonl'), '--tasks', set, '--json');
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).correct, 9);
  r = await cli('tasks', 'solve', '--set', set, '--id', 'task9_2');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /=== task9_2 .*: CORRECT/);

  // a fingerprint that is not the world's (another generator version): refused
  const stale = join(dir, 'stale.json');
  writeFileSync(stale, readFileSync(set, 'utf8').replaceAll(fp, 'f'.repeat(64)));
  r = await cli('eval', '--agent', 'oracle', '--tasks', stale, '--out', join(dir, 'never2'));
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /^ehrgym: --tasks: the tasks of .*stale\.json were made on world synthetic seed 3 \(40 patients\) with fingerprint ffffffffffff, but that world now has fingerprint [0-9a-f]{12} .*regenerate/,
  );
  oneLine(r.err);

  // records of different worlds in one file
  const mixed = join(dir, 'mixed.json');
  const m = records.map((rec, i) => (i === 2 ? { ...rec, ehrgym_world: { name: 'synthetic', seed: 9, patients: 40 } } : rec));
  writeFileSync(mixed, JSON.stringify(m));
  r = await cli('eval', '--agent', 'oracle', '--tasks', mixed, '--out', join(dir, 'never3'));
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: --tasks: .*mixed\.json: record 2 \(id "task2_3"\) has another "ehrgym_world" than record 0/);
});

test('official task files mean the replica: another world is refused', async () => {
  const dir = tmp();
  let r = await cli('eval', '--agent', 'oracle', '--out', join(dir, 'r'), '--world', 'synthetic', '--limit', '1');
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /^ehrgym: --world synthetic: the tasks of medagentbench-v2 were made on world medagentbench \(the replica\), not synthetic seed 1 \(500 patients\)/,
  );
  oneLine(r.err);
  r = await cli('eval', '--agent', 'oracle', '--out', join(dir, 'r'), '--seed', '2', '--limit', '1');
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: --seed and --patients apply to the synthetic world only \(world is medagentbench\)/);
});
