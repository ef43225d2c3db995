/**
 * The clinical suite's family contract: every suite family satisfies it, a suite family missing any required part
 * (suite, dialect, rule and source, checkpoints per branch, planting) is refused naming the part, suite families stay
 * out of MedAgentBench's lists, and the dialect of a task is its family's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CLINICAL_SUITE,
  FAMILY_IDS,
  SUITE_FAMILY_IDS,
  familyProblems,
  getFamily,
  isSuiteFamily,
  suiteFamilies,
  suiteNames,
  suitePlantings,
} from '../src/tasks/registry.js';
import { EHRGYM_DIALECT, MEDAGENTBENCH_DIALECT, taskDialect } from '../src/protocol/dialect.js';
import { FAILURE_CLASSES } from '../src/tasks/checkpoints.js';
import type { SuiteFamily, TaskFamily } from '../src/tasks/types.js';

test('every suite family satisfies the contract; suite families are not MedAgentBench families', () => {
  assert.ok(SUITE_FAMILY_IDS.length >= 1);
  assert.deepEqual(suiteNames(), [CLINICAL_SUITE]);
  for (const id of SUITE_FAMILY_IDS) {
    const f = getFamily(id);
    assert.ok(isSuiteFamily(f));
    assert.deepEqual(familyProblems(f), [], id);
    assert.ok(!FAMILY_IDS.includes(id));
  }
  assert.deepEqual(
    suiteFamilies().map((f) => f.id),
    SUITE_FAMILY_IDS,
  );
  assert.deepEqual(
    suitePlantings().map((p) => p.name),
    SUITE_FAMILY_IDS,
  );
  assert.throws(() => suitePlantings('nope'), /no task families belong to suite "nope"/);
  assert.equal(FAMILY_IDS.length, 10);
});

test("the dialect of a task is its family's: ehrgym for the suite, MedAgentBench for the ten and unknown ids", () => {
  assert.equal(taskDialect({ id: 'warfarin_3' }), EHRGYM_DIALECT);
  assert.equal(taskDialect('warfarin'), EHRGYM_DIALECT);
  for (const id of FAMILY_IDS) assert.equal(taskDialect(`${id}_1`), MEDAGENTBENCH_DIALECT);
  assert.equal(taskDialect('nosuch_1'), MEDAGENTBENCH_DIALECT);
});

test('a suite family missing any required part is refused, naming it', () => {
  const good = getFamily('warfarin') as SuiteFamily;
  const without = (over: Record<string, unknown>): TaskFamily => ({ ...good, ...over }) as unknown as TaskFamily;
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ suite: '' }, /suite must be a non-empty string/],
    [{ dialect: undefined }, /must speak the "ehrgym" dialect/],
    [{ dialect: 'medagentbench' }, /must speak the "ehrgym" dialect/],
    [{ rule: undefined }, /rule must name the clinical rule and its published source/],
    [{ rule: { name: 'x', source: '' } }, /rule must name/],
    [{ checkpoints: undefined }, /checkpoints must list/],
    [{ checkpoints: { ...good.checkpoints, high_hold: undefined } }, /checkpoints\.high_hold must list/],
    [{ checkpoints: { ...good.checkpoints, high_hold: ['answer_inr', 'no_other_writes'] } }, /checkpoints\.high_hold must start with "finished"/],
    [{ checkpoints: { ...good.checkpoints, extra: ['finished', 'x'] } }, /checkpoints\.extra is not a branch/],
    [{ planting: undefined }, /planting is missing/],
    [{ planting: { ...good.planting, plant: undefined } }, /planting\.plant must be a function/],
    [{ planting: { ...good.planting, version: '' } }, /planting\.version/],
    [{ planting: { ...good.planting, name: 'other' } }, /planting\.name must be the family id/],
    [{ id: 'task11' }, /a suite family's id must be a lower-case word other than task<N>/],
    [{ recordKey: 'sol' }, /records carry "eval_MRN"/],
  ];
  for (const [over, re] of cases) {
    const problems = familyProblems(without(over));
    assert.ok(
      problems.some((p) => re.test(p)),
      `${JSON.stringify(Object.keys(over))}: ${problems.join('; ')}`,
    );
  }
});

test('checkpoint classes are failure classes; each branch lists its checkpoints in expert order', () => {
  for (const f of suiteFamilies()) {
    for (const b of f.branches) {
      const names = f.checkpoints[b]!;
      assert.equal(names[0], 'finished');
      assert.ok(names.length >= 3, `${f.id} ${b}`);
    }
  }
  assert.deepEqual([...FAILURE_CLASSES], ['lookup', 'decision', 'payload', 'protocol', 'budget']);
});

test('partial credit: fraction passed, or (suite) the prefix passed after the finished gate', async () => {
  const { checkpoint, gradeCheckpoints } = await import('../src/tasks/checkpoints.js');
  const cps = (...pass: boolean[]) => pass.map((p, i) => checkpoint(`c${i}`, i === 0 ? 'protocol' : 'decision', p));
  assert.equal(gradeCheckpoints(cps(true, false, true, true)).score, 0.75);
  assert.equal(gradeCheckpoints(cps(true, false, true, true), { credit: 'prefix' }).score, 0);
  assert.equal(gradeCheckpoints(cps(true, true, false, true), { credit: 'prefix' }).score, 1 / 3);
  assert.equal(gradeCheckpoints(cps(true, true, true, true), { credit: 'prefix' }).score, 1);
  assert.equal(gradeCheckpoints(cps(false, true, true, true), { credit: 'prefix' }).score, 0);
  assert.equal(gradeCheckpoints(cps(true, true, true), { credit: 'prefix', exception: 'x' }).score, 0);
  assert.equal(gradeCheckpoints(cps(true, false, true, true), { credit: 'prefix' }).failureClass, 'decision');
});

test('every suite family, end to end on a small clinical world: each branch generated, the expert passes with exactly the declared checkpoints, each of a failure class; FINISH([]) earns nothing', async () => {
  const { openClinicalWorld } = await import('../src/tasks/suite/splits.js');
  const { runEpisode } = await import('../src/agent/loop.js');
  const { PolicyAgent, finishEmptyAgent } = await import('../src/agent/backends/scripted.js');
  const { expertPolicy } = await import('../src/agent/create.js');
  const { rngFor } = await import('../src/worlds/prng.js');
  const cw = await openClinicalWorld({ seed: 5, patients: 60 });
  const expert = new PolicyAgent('expert', expertPolicy);
  for (const f of suiteFamilies()) {
    for (const branch of f.branches) {
      const [t] = await f.generate(cw.access, { rng: rngFor('contract', f.id, branch), patients: cw.world.patientIds, branch, count: 1 });
      assert.ok(t, `${f.id}: no ${branch} task on a 60-patient clinical world`);
      for (const agent of [expert, finishEmptyAgent()]) {
        const s = await cw.access.openSession!(`contract-${t.task.id}`);
        const { output } = await runEpisode({ index: 0, task: t.task, agent, fhir: s.transport, postMode: 'live', maxRounds: 12 });
        await s.close();
        const g = await f.grade(t.task, output, cw.access);
        assert.deepEqual(
          g.checks.map((c) => c.name),
          f.checkpoints[branch],
          `${f.id} ${branch} ${agent.name}`,
        );
        assert.ok(g.checks.every((c) => c.class && FAILURE_CLASSES.includes(c.class)));
        assert.equal(g.branch, branch);
        if (agent === expert)
          assert.ok(g.correct && g.score === 1, `${f.id} ${branch}: the expert failed ${g.checks.filter((c) => !c.pass).map((c) => c.name)}`);
        else assert.ok(!g.correct && g.score === 0, `${f.id} ${branch}: FINISH([]) earned ${g.score}`);
      }
    }
  }
});
