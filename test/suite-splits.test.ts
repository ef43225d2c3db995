/**
 * The clinical suite's splits: the shipped frozen test split regenerates to the same bytes (manifest hash included),
 * loads as `--tasks ehrgym-clinical` on its recorded clinical world, and is balanced; the train split uses only
 * held-out patients and held-out (paraphrased) instructions, passes the pollution filter against the test split, and
 * the environment server serves both (`--tasks ehrgym-clinical`), its rewards' components being the checkpoints.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  buildSuiteSplit,
  type ClinicalWorld,
  CLINICAL_WORLD,
  openClinicalWorld,
  renderTestSplit,
  splitOfPatient,
  TEST_PER_FAMILY,
} from '../src/tasks/suite/splits.js';
import { loadTaskSet } from '../src/tasks/loader.js';
import { getFamily, suiteFamilies } from '../src/tasks/registry.js';
import { buildEvalIndex, taskPollutionReasons } from '../src/factory/pollution.js';
import { renderToolsPrompt } from '../src/protocol/tools.js';
import { buildEnv } from '../src/env/server.js';
import { playOracle } from './helpers/env-oracle.js';
import type { SuiteFamily } from '../src/tasks/types.js';

/** A template with its `{PLACEHOLDER}`s filled in. */
const fillIn = (template: string, values: Record<string, string>): string => template.replace(/\{([A-Z]+)\}/g, (m, k: string) => values[k] ?? m);
let cw: ClinicalWorld;
before(async () => {
  cw = await openClinicalWorld();
});

test('test split: regenerating gives the shipped bytes; the manifest records seed, world and hash', async () => {
  const tasks = await buildSuiteSplit(cw.access, { split: 'test', patientIds: cw.world.patientIds });
  const { taskFile, manifest } = renderTestSplit(tasks, cw.record);
  const shipped = readFileSync('data/ehrgym-clinical/test.json', 'utf8');
  assert.equal(taskFile, shipped);
  assert.equal(manifest, readFileSync('data/ehrgym-clinical/manifest.json', 'utf8'));
  const m = JSON.parse(manifest);
  assert.equal(m.sha256, createHash('sha256').update(shipped).digest('hex'));
  assert.deepEqual(m.world, { ...CLINICAL_WORLD, fingerprint: cw.world.fingerprint });
  assert.equal(m.tasks, TEST_PER_FAMILY * suiteFamilies().length);
  // balanced over each family's branches
  for (const f of suiteFamilies()) {
    const counts = Object.values(m.branches[f.id] as Record<string, number>);
    assert.equal(counts.length, f.branches.length);
    assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, f.id);
  }
});

test('--tasks ehrgym-clinical: loads with its world record; test patients and the template only', () => {
  const set = loadTaskSet('ehrgym-clinical');
  assert.deepEqual(set.world, { ...CLINICAL_WORLD, fingerprint: cw.world.fingerprint });
  const index = new Map(cw.world.patientIds.map((p, i) => [p, i]));
  for (const t of set.tasks) {
    assert.equal(splitOfPatient(index.get(t.eval_MRN!)!), 'test', t.id);
    const fam = getFamily(t.id) as SuiteFamily;
    // the family's template, filled with the task's placeholders (a read-out beside the MRN for some families)
    assert.equal(t.instruction, fillIn(fam.instructionTemplates[0]!, fam.placeholders(t)!), t.id);
    assert.equal(fam.placeholders(t)!.MRN, t.eval_MRN, t.id);
  }
});

test('train split: held-out patients and paraphrases, ids after the test ids, nothing polluted', async () => {
  const test_ = loadTaskSet('ehrgym-clinical').tasks;
  const train = await buildSuiteSplit(cw.access, { split: 'train', patientIds: cw.world.patientIds });
  assert.ok(train.length >= 40, `train: ${train.length}`);
  const testMrns = new Set(test_.map((t) => t.eval_MRN));
  const index = buildEvalIndex('ehrgym-clinical', test_);
  for (const g of train) {
    assert.ok(!testMrns.has(g.patient!), `${g.task.id} uses test patient ${g.patient}`);
    assert.ok(Number(g.task.id.split('_')[1]) >= 1001);
    const fam = getFamily(g.task.id);
    const values = fam.placeholders(g.task)!;
    assert.equal(values.MRN, g.patient);
    assert.notEqual(g.task.instruction, fillIn(fam.instructionTemplates[0]!, values));
    assert.ok(fam.paraphrases.some((p) => fillIn(p, values) === g.task.instruction));
    assert.deepEqual(taskPollutionReasons(g.task, renderToolsPrompt(g.task), g.patient, index), []);
  }
  // a test task would be caught by the filter
  const t0 = test_[0]!;
  assert.ok(taskPollutionReasons(t0, renderToolsPrompt(t0), t0.eval_MRN!, index).length > 0);
});

test('env server --tasks ehrgym-clinical: test and train splits; an oracle episode is rewarded with the checkpoints as components', async () => {
  const stages: string[] = [];
  const { core } = await buildEnv({
    trainSize: 10,
    taskFiles: ['ehrgym-clinical'],
    // the whole train split is the test above's; the server's needs only a few tasks per family
    suiteTrainPerFamily: 4,
    onStage: (x) => stages.push(x),
  });
  // what `ehrgym env serve` says on a terminal while it loads
  assert.deepEqual(stages, [
    'loading the world medagentbench',
    'generating the train split (10 tasks asked)',
    'loading the world synthetic (seed 11, 200 patients, ehrgym-clinical)',
    'generating the ehrgym-clinical train split',
  ]);
  const splits = core.splitList().map((s) => [s.name, s.type]);
  assert.deepEqual(
    splits.filter(([n]) => String(n).startsWith('ehrgym-clinical')),
    [
      ['ehrgym-clinical', 'test'],
      ['ehrgym-clinical-train', 'train'],
    ],
  );
  const train = core.split('ehrgym-clinical-train');
  for (const [split, index] of [
    ['ehrgym-clinical-train', 0],
    ['ehrgym-clinical', 5],
  ] as const) {
    const s = core.open(`suite-${split}`, 'ors');
    const ep = await core.reset(s, { split, index });
    assert.ok(
      core.tools(ep).some((t) => t.name.endsWith('_update')),
      'the episode speaks the ehrgym dialect',
    );
    assert.ok(!core.tools().some((t) => t.name.endsWith('_update')));
    const { last } = await playOracle(ep.task, async (call) => {
      const r = await core.call(s, call.name, call.arguments);
      assert.ok(r.ok, r.ok ? '' : r.error);
      return { text: r.ok ? r.text : '', done: r.ok && r.finished, r };
    });
    const r = last.r as { reward: number; components: Record<string, boolean> };
    assert.equal(r.reward, 1);
    const fam = getFamily(ep.task.id) as SuiteFamily;
    assert.ok(Object.values(fam.checkpoints).some((names) => JSON.stringify(Object.keys(r.components)) === JSON.stringify(names)));
  }
  assert.ok(train.tasks.length > 0);
  await core.shutdown();
});
