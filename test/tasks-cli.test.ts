/**
 * `ehrgym tasks list|generate`: a generated task set loads with the task-set loader, is in the official file format,
 * is byte-identical for the same seeds, covers every branch in balanced mode and is solved by the expert solver.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadTaskSet } from '../src/tasks/loader.js';
import { pyJsonDumps } from '../src/tasks/pysem.js';
import { FAMILIES } from '../src/tasks/registry.js';
import type { FamilyId } from '../src/tasks/types.js';
import { loadWorld } from '../src/worlds/index.js';
import { createFhirApp } from '../src/fhir/server.js';
import { inProcessTransport } from '../src/fhir/client.js';
import { BASE, runMini } from './helpers/tasks-fake.js';

const pexec = promisify(execFile);

/** Run the command in a child process (its stdout must not mix with the test runner's). */
async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await pexec(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], { maxBuffer: 64 << 20 });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof x.code !== 'number') throw e;
    return { code: x.code, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

test('tasks list', async () => {
  const r = await run('tasks', 'list', '--set', 'medagentbench-v1', '--json');
  assert.equal(r.code, 0);
  const rows = JSON.parse(r.out) as Array<{ id: string; kind: string; tasks: number }>;
  assert.equal(rows.length, 10);
  assert.ok(rows.every((x) => x.tasks === 10));
  assert.deepEqual(
    rows.filter((x) => x.kind === 'query').map((x) => x.id),
    ['task1', 'task2', 'task4', 'task6', 'task7'],
  );
  const bad = await run('tasks', 'list', '--set', 'nope');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^ehrgym: --set: unknown task set "nope"/);
});

test('tasks generate: official format, deterministic, balanced, solvable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ehrgym-tasks-cli-'));
  const out = join(dir, 'set.json');
  const facts = join(dir, 'facts.jsonl');
  const args = [
    'tasks',
    'generate',
    '--out',
    out,
    '--facts',
    facts,
    '--patients',
    '60',
    '--seed',
    '5',
    '--families',
    'task1,task5,task9,task10',
    '--per-family',
    '6',
  ];
  const r = await run(...args);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^wrote 24 tasks to /);
  const text = readFileSync(out, 'utf8');
  const set = loadTaskSet(out);
  assert.equal(set.tasks.length, 24);
  assert.equal(pyJsonDumps(set.tasks), text);
  const lines = readFileSync(facts, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: string; branch: string });
  assert.deepEqual(
    lines.map((l) => l.id),
    set.tasks.map((t) => t.id),
  );
  for (const fam of ['task5', 'task9', 'task10'] as const) {
    const branches = lines.filter((l) => l.id.startsWith(`${fam}_`)).map((l) => l.branch);
    for (const b of FAMILIES[fam].branches) assert.equal(branches.filter((x) => x === b).length, 2, `${fam} ${b}`);
  }
  // refuses to overwrite, then the same seeds give the same bytes
  const again = await run(...args);
  assert.equal(again.code, 2);
  assert.match(again.err, /--out: .* exists \(use --force to overwrite\)/);
  assert.equal((await run(...args, '--force')).code, 0);
  assert.equal(readFileSync(out, 'utf8'), text);
  // every generated task is solved by the expert on the same world
  const world = await loadWorld({ world: 'synthetic', seed: 5, patients: 60 });
  const fhir = inProcessTransport(createFhirApp(world.store));
  for (const t of set.tasks) {
    const fam = FAMILIES[t.id.split('_')[0] as FamilyId];
    const g = await fam.grade(t, await runMini(t, fam, fhir), { apiBase: BASE, fhir });
    assert.equal(g.correct, true, `${t.id}: ${JSON.stringify(g.checks.filter((c) => !c.pass))}`);
  }
});

test('tasks generate: bad flags are one-line errors', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--world', 'empty'], /--world must be synthetic or medagentbench/],
    [['--families', 'task11'], /--families: unknown task family "task11"/],
    [['--per-family', '0'], /--per-family must be between 1 and/],
    [['--balance', 'even'], /--balance must be one of balanced, natural/],
    [['--world', 'medagentbench', '--seed', '3'], /--seed and --patients apply to --world synthetic only/],
  ];
  for (const [extra, re] of cases) {
    const r = await run('tasks', 'generate', '--out', join(tmpdir(), 'never-written.json'), ...extra);
    assert.equal(r.code, 2, extra.join(' '));
    assert.match(r.err, re);
    assert.equal(r.err.trim().split('\n').length, 1);
  }
});

test('tasks solve: the expert in the official loop, graded by the official grader', async () => {
  const r = await run('tasks', 'solve', '--id', 'task5_21', '--variant', 'sorted', '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { output: { status: string; history: Array<{ role: string; content: string }> }; grade: { correct: boolean; branch: string } };
  assert.equal(j.output.status, 'completed');
  assert.deepEqual(j.grade.correct, true);
  assert.equal(j.grade.branch, 'low_order_required');
  assert.equal(j.output.history[1].content, 'GET http://localhost:8080/fhir/Observation?patient=S3084624&code=MG&_sort=-date&_count=1');
  const text = await run('tasks', 'solve', '--id', 'task10_13');
  assert.match(
    text.out,
    /=== task10_13 \(task10, variant scan\) status completed: CORRECT; branch stale_order_required; reference \[5\.8, "2022-09-09T15:33:00\+00:00"\]/,
  );
  for (const [args, re] of [
    [['--id', 'task5_99'], /--id: no task "task5_99" in medagentbench-v2/],
    [['--id', 'task5_1', '--variant', 'nope'], /--variant: "nope" is not a variant of task5 \(known: scan, sorted, lookup-first\)/],
    [['--id', 'task5_1', '--set', 'nope'], /--set: unknown task set "nope"/],
  ] as Array<[string[], RegExp]>) {
    const b = await run('tasks', 'solve', ...args);
    assert.equal(b.code, 2);
    assert.match(b.err, re);
  }
});
