import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTaskSet, KNOWN_TASK_SETS } from '../src/tasks/loader.js';
import { ACTION_FAMILIES, FAMILIES, FAMILY_IDS, QUERY_FAMILIES, getFamily } from '../src/tasks/registry.js';
import { matchTemplate } from '../src/tasks/common.js';
import { pyJsonDumps } from '../src/tasks/pysem.js';

const v2 = loadTaskSet('medagentbench-v2');
const v1 = loadTaskSet('medagentbench-v1');

test('registry: 10 families, query {1,2,4,6,7}, action {3,5,8,9,10}', () => {
  assert.deepEqual(FAMILY_IDS, ['task1', 'task2', 'task3', 'task4', 'task5', 'task6', 'task7', 'task8', 'task9', 'task10']);
  assert.deepEqual(QUERY_FAMILIES, ['task1', 'task2', 'task4', 'task6', 'task7']);
  assert.deepEqual(ACTION_FAMILIES, ['task3', 'task5', 'task8', 'task9', 'task10']);
  assert.equal(getFamily('task10_3').id, 'task10');
  assert.throws(() => getFamily('task11'), /unknown task family "task11" \(known: task1, task2/);
});

test('loader: shipped sets are the official bytes, key order preserved', () => {
  assert.equal(v2.tasks.length, 300);
  assert.equal(v1.tasks.length, 100);
  assert.equal(v2.rawText.length, 118276);
  // byte-identical to the official file: its git blob id equals upstream's (stanfordmlgroup/MedAgentBench commit
  // 99260117, data/medagentbench/test_data_v2.json, blob 7f568f04…; see data/medagentbench/README.md)
  const gitBlob = (text: string) => {
    const bytes = Buffer.from(text, 'utf8');
    return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
  };
  assert.equal(gitBlob(v2.rawText), '7f568f041f9d22e11b5bf31b80efd2219aaaf14f');
  assert.equal(gitBlob(v1.rawText), 'ef1ae3444c4d043886533248fbfc190f20ddd926');
  assert.equal(v2.sha256, createHash('sha256').update(readFileSync('data/medagentbench/test_data_v2.json')).digest('hex'));
  // re-serialising with Python json.dumps gives back the exact file (order of records and keys preserved)
  assert.equal(pyJsonDumps(v2.tasks), v2.rawText);
  assert.equal(pyJsonDumps(v1.tasks), v1.rawText);
  assert.deepEqual(Object.keys(v2.tasks[0]), ['id', 'instruction', 'context', 'sol', 'eval_MRN']);
  assert.deepEqual(Object.keys(v2.tasks[28]), ['id', 'instruction', 'context', 'sol']);
  assert.deepEqual(Object.keys(v2.tasks[30]), ['id', 'instruction', 'context', 'eval_MRN']);
  // the same file by path
  const byPath = loadTaskSet('data/medagentbench/test_data_v2.json');
  assert.equal(byPath.name, 'test_data_v2');
  assert.equal(byPath.sha256, v2.sha256);
});

test('loader: clear errors', () => {
  assert.throws(() => loadTaskSet('medagentbench-v3'), /unknown task set "medagentbench-v3": not a file and not one of medagentbench-v1, medagentbench-v2/);
  const dir = mkdtempSync(join(tmpdir(), 'ehrgym-tasks-'));
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '[{"id": "task1_1", ');
  assert.throws(
    () => loadTaskSet(bad),
    (e: Error) => e.message.startsWith(`${bad}: not valid JSON`),
  );
  const notArray = join(dir, 'obj.json');
  writeFileSync(notArray, '{"id": "task1_1"}');
  assert.throws(() => loadTaskSet(notArray), /obj\.json: expected a JSON array of task records, got object/);
  const unknown = join(dir, 'unknown.json');
  writeFileSync(unknown, JSON.stringify([{ id: 'task11_1', instruction: 'x', context: '', eval_MRN: 'S1' }]));
  assert.throws(() => loadTaskSet(unknown), /unknown\.json: record 0 \(id "task11_1"\): unknown task family "task11" \(known: task1,/);
  const noMrn = join(dir, 'nomrn.json');
  writeFileSync(noMrn, JSON.stringify([{ id: 'task4_1', instruction: 'x', context: '' }]));
  assert.throws(() => loadTaskSet(noMrn), /record 0 \(id "task4_1"\): task4 records need "eval_MRN"/);
  const dup = join(dir, 'dup.json');
  writeFileSync(
    dup,
    JSON.stringify([
      { id: 'task3_1', instruction: 'x', context: '', eval_MRN: 'S1' },
      { id: 'task3_1', instruction: 'x', context: '', eval_MRN: 'S1' },
    ]),
  );
  assert.throws(() => loadTaskSet(dup), /record 1: duplicate id "task3_1"/);
  assert.deepEqual(Object.keys(KNOWN_TASK_SETS), ['medagentbench-v1', 'medagentbench-v2', 'ehrgym-clinical']);
});

for (const [label, set] of [
  ['v2', v2],
  ['v1', v1],
] as const) {
  test(`templates and contexts are byte-exact for every ${label} record`, () => {
    for (const t of set.tasks) {
      const fam = getFamily(t.id);
      assert.equal(t.context, fam.context, `${t.id} context`);
      if (fam.id === 'task1') {
        const notFound = t.sol?.[0] === 'Patient not found';
        const m = matchTemplate(fam.instructionTemplates[notFound ? 1 : 0], t.instruction);
        assert.ok(m, `${t.id} matches its template`);
        assert.equal(fam.instruction({ name: m!.NAME, dob: m!.DOB, notFound }), t.instruction, t.id);
        if (!notFound) assert.deepEqual(t.sol, [t.eval_MRN]);
      } else {
        assert.equal(fam.instruction({ mrn: t.eval_MRN }), t.instruction, t.id);
        assert.equal(fam.instructionTemplates.length, 1);
      }
    }
  });
}

test('every family object is complete', () => {
  for (const id of FAMILY_IDS) {
    const f = FAMILIES[id];
    assert.equal(f.id, id);
    assert.ok(f.branches.length > 0 && f.variants.length > 0 && f.name.length > 0);
    assert.ok(['query', 'action'].includes(f.kind));
  }
});
