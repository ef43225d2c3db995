/**
 * Scores from logs say what they cover: `ehrgym grade` refuses a missing or empty log and duplicated task indices
 * (unless --dedupe), prints how many tasks a partial log holds and which are missing; `report` says when a run covers
 * part of its task set. Through the real CLI (in-process `main`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { loadRun } from '../src/report/load.js';
import { CLEAN_EPISODE, writeRunFolder } from './report-fixtures.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'ehrgym-coverage-'));

test('grade: missing or empty log, duplicates, partial coverage', async () => {
  const dir = tmp();
  const run = join(dir, 'run');
  let r = await cli('eval', '--agent', 'give-up', '--out', run, '--limit', '4', '--no-progress');
  assert.equal(r.code, 0, r.err);
  const runs = join(run, 'runs.jsonl');

  // a missing or empty log is an error naming it, not 0/300
  r = await cli('grade', '--runs', join(dir, 'nope.jsonl'));
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: .*nope\.jsonl: no such file\n$/);
  assert.equal(r.out, '');
  const empty = join(dir, 'empty.jsonl');
  writeFileSync(empty, '\n');
  r = await cli('grade', '--runs', empty);
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: .*empty\.jsonl is empty: no runs lines to grade\n$/);

  // a partial log: coverage printed, missing tasks named, in --json too
  r = await cli('grade', '--runs', runs);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /\ngraded 4 of 300; 296 missing count as failures: task1_5, task1_6, .*, … \(296 in all\)\n/);
  assert.match(r.out, /total: 0\/300 = 0\.00%/);
  r = await cli('grade', '--runs', runs, '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.graded, 4);
  assert.equal(j.coverage.graded, 4);
  assert.equal(j.coverage.total, 300);
  assert.equal(j.coverage.missing.length, 296);
  assert.equal(j.coverage.missing[0], 'task1_5');
  assert.match(r.err, /^ehrgym: warning: graded 4 of 300; 296 missing/);

  // duplicated indices: refused, naming them; --dedupe picks the first or the last line
  const lines = readFileSync(runs, 'utf8').trimEnd().split('\n');
  const byIndex = new Map(lines.map((l) => [JSON.parse(l).index as number, l]));
  const fixed = byIndex.get(0)!.replace('"result": "[\\"unknown\\"]"', '"result": "[\\"S6534835\\"]"');
  assert.notEqual(fixed, byIndex.get(0));
  const dup = join(dir, 'dup.jsonl');
  writeFileSync(dup, [...lines, byIndex.get(2)!, fixed].join('\n') + '\n');
  r = await cli('grade', '--runs', dup);
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: .*dup\.jsonl has duplicate task indices 0 \(task1_1\), 2 \(task1_3\) \(use --dedupe first\|last to keep one\)\n$/);
  r = await cli('grade', '--runs', dup, '--dedupe', 'first', '--json');
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).correct, 0);
  assert.deepEqual(JSON.parse(r.out).duplicates, ['task1_1', 'task1_3']);
  r = await cli('grade', '--runs', dup, '--dedupe', 'last');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /2 task\(s\) with several lines in the log, last line graded: task1_1, task1_3/);
  assert.match(r.out, /total: 1\/300/);
  r = await cli('grade', '--runs', dup, '--dedupe', 'middle');
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: --dedupe must be one of first, last, got "middle"\n$/);

  // report: a run over part of its task set says so
  const notes: string[] = [];
  const loaded = loadRun(run, (m) => notes.push(m));
  assert.equal(loaded.tasks.length, 4);
  assert.deepEqual(notes, [`${run} covers 4 of the 300 tasks of medagentbench-v2 (--limit 4); its scores are over those 4`]);
  r = await cli('report', run, '--out', join(dir, 'report'));
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /ehrgym: warning: .*run covers 4 of the 300 tasks of medagentbench-v2 \(--limit 4\)/);
  // a run over its whole task set: no note
  const whole = writeRunFolder(join(dir, 'whole'), 'agent', [CLEAN_EPISODE, { ...CLEAN_EPISODE, id: 'task10_2' }]);
  const notes1: string[] = [];
  loadRun(whole, (m) => notes1.push(m));
  assert.deepEqual(notes1, []);
  // a filtered run
  const full = join(dir, 'full');
  r = await cli('eval', '--agent', 'give-up', '--out', full, '--tasks-filter', 'task2', '--no-progress');
  assert.equal(r.code, 0, r.err);
  const notes2: string[] = [];
  loadRun(full, (m) => notes2.push(m));
  assert.deepEqual(notes2, [`${full} covers 30 of the 300 tasks of medagentbench-v2 (--tasks-filter task2); its scores are over those 30`]);
  // grades.jsonl with fewer tasks than the run selected
  const grades = readFileSync(join(full, 'grades.jsonl'), 'utf8').trimEnd().split('\n');
  writeFileSync(join(full, 'grades.jsonl'), grades.slice(0, 28).join('\n') + '\n');
  const notes3: string[] = [];
  loadRun(full, (m) => notes3.push(m));
  assert.deepEqual(notes3, [`${full}: grades.jsonl holds 28 of the 30 tasks the run selected; its scores are over those 28`]);
});
