/**
 * The clinical suite's `metformin` family (start metformin only if the race-free eGFR allows it; stop it below 30):
 * the equation against published values, generator branch coverage and planted traps, the expert at 100 % (both
 * variants, text and tools), a mutation per checkpoint, trap readers (first page only, entered-in-error results, no
 * unit conversion, the mg/dL code only) failing with class `lookup`, `FINISH([])` and the audit's degenerate policies.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  CR_MGDL_LOINC,
  CR_UMOL_LOINC,
  EGFR_TOLERANCE,
  ckdEpi2021,
  creatinineFor,
  type CreatinineReader,
  type CreatinineReading,
  creatinineOf,
  latestCreatinine,
  METFORMIN_CHECKPOINTS,
  METFORMIN_ER_RXNORM,
  metformin,
  metforminBranch,
  metforminScenarioOf,
  metforminScript,
} from '../src/tasks/suite/metformin.js';
import { plain, runScript } from '../src/tasks/common.js';
import { resources } from '../src/tasks/suite/kit.js';
import { PolicyAgent } from '../src/agent/backends/scripted.js';
import { rngFor } from '../src/worlds/prng.js';
import type { Agent } from '../src/agent/types.js';
import type { GeneratedTask, TaskOutput } from '../src/tasks/types.js';
import {
  API,
  addWrite,
  assertDegenerate,
  assertExpert,
  assertFactoryParity,
  assertFinishEmptyFails,
  assertMutations,
  byBranch,
  editWrite,
  expert,
  failed,
  type SuiteHarness,
  suiteHarness,
} from './helpers/suite.js';

let h: SuiteHarness;
let tasks: GeneratedTask[];

before(async () => {
  h = await suiteHarness(metformin);
  tasks = h.tasks;
});

test('CKD-EPI 2021: published worked values, the inverse, and the label bands', () => {
  // 55-year-old woman, Scr 0.9 mg/dL → "about 76" in a published worked example that rounds its intermediates
  assert.ok(Math.abs(ckdEpi2021(0.9, 55, 'female') - 76) < 1);
  // at the knee (Scr = κ) only age and sex remain: 142 × 0.9938^50 = 104.0 (male)
  assert.ok(Math.abs(ckdEpi2021(0.9, 50, 'male') - 142 * 0.9938 ** 50) < 1e-9);
  assert.equal(Math.round(ckdEpi2021(1.0, 60, 'male')), 86);
  assert.equal(Math.round(ckdEpi2021(2.5, 70, 'female')), 20);
  for (const [e, age, g] of [
    [95, 30, 'female'],
    [37, 64, 'male'],
    [14, 80, 'female'],
    [60, 45, 'male'],
  ] as const)
    assert.ok(Math.abs(ckdEpi2021(creatinineFor(e, age, g), age, g) - e) < 1e-9);
  assert.equal(metforminBranch(45, false), 'start');
  assert.equal(metforminBranch(44.9, false), 'do_not_start');
  assert.equal(metforminBranch(30, false), 'do_not_start');
  assert.equal(metforminBranch(29.9, false), 'contraindicated');
  assert.equal(metforminBranch(29.9, true), 'stop');
  assert.equal(metforminBranch(30, true), 'continue');
  // µmol/L converts by 88.4
  const c = creatinineOf({ effectiveDateTime: '2023-11-13T09:00:00+00:00', valueQuantity: { value: 221, unit: 'µmol/L', code: 'umol/L' } })!;
  assert.equal(c.unit, 'umol/L');
  assert.ok(Math.abs(c.mgdl - 2.5) < 1e-9);
});

test('generator: every branch, facts from the record, the decisive creatinine fresh and past the first page, traps planted', async () => {
  const bb = byBranch(tasks);
  assert.deepEqual([...bb.keys()].sort(), [...metformin.branches].sort());
  for (const b of metformin.branches) assert.ok(bb.get(b)!.length >= 2, `${b}: ${bb.get(b)!.length}`);
  for (const t of tasks) assert.deepEqual(Object.keys(METFORMIN_CHECKPOINTS).includes(t.branch), true);
  // only lane-0 patients serve tasks (the lane's planting makes the fresh creatinine)
  const index = new Map(h.cw.world.patientIds.map((id, i) => [id, i]));
  for (const t of tasks) assert.ok(metforminScenarioOf(index.get(t.patient!)!), `${t.patient} is off the lane`);
  const only = await metformin.generate(h.cw.access, { rng: rngFor('x', 2), patients: h.cw.world.patientIds, branch: 'stop', count: 2 });
  assert.equal(only.length, 2);
  assert.ok(only.every((t) => t.branch === 'stop'));
  let eie = 0;
  let umol = 0;
  let stoppedOld = 0;
  for (const t of tasks) {
    const cr = t.facts.creatinine as CreatinineReading;
    const all = resources(plain(await h.read(`Observation?patient=${t.patient}&code=${CR_MGDL_LOINC},${CR_UMOL_LOINC}&_count=5000`)));
    assert.ok(all.length >= 25, `${t.task.id}: ${all.length} creatinine results`);
    assert.equal(latestCreatinine(all)!.id, cr.id);
    const page1 = resources(await h.read(`Observation?patient=${t.patient}&code=${CR_MGDL_LOINC},${CR_UMOL_LOINC}`));
    assert.equal(page1.length, 20);
    assert.ok(!page1.some((r) => r.id === cr.id), `${t.task.id}: the decisive creatinine is on the first page`);
    // every result newer than the decisive one is entered-in-error
    const newer = all.filter((r) => String(r.effectiveDateTime) > cr.time);
    assert.ok(newer.every((r) => r.status === 'entered-in-error'));
    if (newer.length > 0) {
      eie++;
      // the trap flips the decision
      const d = t.facts.demographics as { age: number; gender: 'male' | 'female' };
      const flip = creatinineOf(newer[0]!)!;
      assert.notEqual(metforminBranch(ckdEpi2021(flip.mgdl, d.age, d.gender), t.branch === 'stop' || t.branch === 'continue'), t.branch);
    }
    if (cr.unit === 'umol/L') umol++;
    const orders = resources(await h.read(`MedicationRequest?patient=${t.patient}&code=861007&_count=500`));
    if (orders.some((r) => r.status === 'stopped')) stoppedOld++;
  }
  assert.ok(eie >= 5, `entered-in-error traps: ${eie}`);
  assert.ok(umol >= 5, `µmol/L decisive results: ${umol}`);
  assert.ok(stoppedOld >= 3, `stopped metformin orders: ${stoppedOld}`);
  // write outcomes: the balanced split fills the five branches evenly (the first three take the extra task of 28),
  // and the two writing branches come first: 12 of 28 write, no outcome covers more than 60 %
  assert.deepEqual(metformin.branches.slice(0, 2), ['start', 'stop']);
  // a fixed answer (which writes nothing, so only the no-write branches) matches at most 5 % of the tasks: the eGFR to
  // one decimal rarely repeats
  for (const t of tasks.filter((x) => metformin.checkpoints[x.branch]!.includes('no_writes'))) {
    const e = t.facts.egfr as number;
    const same = tasks.filter((u) => u.branch === t.branch && Math.abs((u.facts.egfr as number) - e) <= 2 * EGFR_TOLERANCE);
    assert.ok(same.length <= Math.max(1, 0.05 * tasks.length), `${t.task.id}: ${same.length} tasks share its answer`);
  }
  const writing = metformin.branches.filter((b) => metformin.checkpoints[b]!.includes('no_other_writes'));
  assert.deepEqual(writing, ['start', 'stop']);
});

test('expert: 100 % in both variants (text) and in the tools protocol, every checkpoint passed', async () => {
  await assertExpert(metformin, h);
});

test('mutations: breaking one field of the expert action fails exactly that checkpoint', async () => {
  const post = (a: { kind: string; url: string }) => a.kind === 'post' && a.url.endsWith('MedicationRequest');
  const put = (a: { kind: string }) => a.kind === 'put';
  await assertMutations(
    metformin,
    h,
    async (t, out) => {
      const hist = out.history!;
      const answer = JSON.parse(String(out.result)) as [number, string];
      const stray = () =>
        addWrite(hist, 'post', `${API}Observation`, {
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: CR_MGDL_LOINC }] },
          subject: { reference: `Patient/${t.patient}` },
          valueQuantity: { value: 1.0, unit: 'mg/dL' },
        });
      const m: Record<string, () => TaskOutput> = {
        answer_egfr: () => ({ ...out, result: JSON.stringify([answer[0] + 3, answer[1]]) }),
        answer_decision: () => ({ ...out, result: JSON.stringify([answer[0], answer[1] === 'start' ? 'do-not-start' : 'start']) }),
        metformin_ordered: () => ({
          ...out,
          history: editWrite(hist, post, (b) => ((b.medicationCodeableConcept as { coding: Array<{ code: string }> }).coding[0]!.code = '314076')),
        }),
        order_payload: () => ({
          ...out,
          history: editWrite(hist, post, (b) => {
            (b.dosageInstruction as Array<{ timing: { repeat: { frequency: number } } }>)[0]!.timing.repeat.frequency = 2;
          }),
        }),
        no_other_writes: () => ({ ...out, history: stray() }),
        metformin_stopped: () => ({ ...out, history: editWrite(hist, put, (b) => (b.status = 'on-hold')) }),
        stop_only_status: () => ({
          ...out,
          history: editWrite(hist, put, (b) => {
            b.dosageInstruction = [{ text: '500 mg oral daily' }];
          }),
        }),
        no_writes: () => ({
          ...out,
          history: addWrite(hist, 'post', `${API}MedicationRequest`, {
            resourceType: 'MedicationRequest',
            status: 'active',
            intent: 'order',
            medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: METFORMIN_ER_RXNORM }] },
            subject: { reference: `Patient/${t.patient}` },
          }),
        }),
      };
      return m;
    },
    ['answer_egfr', 'answer_decision'],
  );
});

/** A trap reader: the expert's decisions and writes on the creatinine it reads. */
function trapAgent(name: string, read: CreatinineReader): Agent {
  return new PolicyAgent(name, (task, history) => runScript(task, history, { apiBase: API }, [name], metforminScript(read)));
}

test('traps: first page only, entered-in-error, no unit conversion and the mg/dL code only all fail with class lookup', async (ctx) => {
  const both = `code=${CR_MGDL_LOINC},${CR_UMOL_LOINC}`;
  const bundle = (io: { get(url: string): unknown; apiBase: string }, q: string) => resources(plain(io.get(`${io.apiBase}Observation?${q}`)));
  const firstPage: CreatinineReader = (io, mrn) => latestCreatinine(bundle(io, `patient=${mrn}&${both}`));
  const anyStatus: CreatinineReader = (io, mrn) => latestCreatinine(bundle(io, `patient=${mrn}&${both}&_count=5000`).map((r) => ({ ...r, status: 'final' })));
  const noConversion: CreatinineReader = (io, mrn) => {
    const c = latestCreatinine(bundle(io, `patient=${mrn}&${both}&_count=5000`));
    return c && { ...c, mgdl: c.value };
  };
  const mgdlOnly: CreatinineReader = (io, mrn) => latestCreatinine(bundle(io, `patient=${mrn}&code=${CR_MGDL_LOINC}&_count=5000`));
  for (const [name, read, least] of [
    ['first-page', firstPage, 10],
    ['entered-in-error', anyStatus, 4],
    ['no-conversion', noConversion, 4],
    ['mg/dL code only', mgdlOnly, 4],
  ] as const) {
    let caught = 0;
    for (const t of tasks) {
      const out = await h.play(trapAgent(name, read), t);
      const g = await h.grade(t, out);
      const got = JSON.parse(String(out.result)) as [number, string];
      if (Math.abs(got[0] - (t.facts.egfr as number)) <= EGFR_TOLERANCE) continue; // the trap did not change what it read
      caught++;
      assert.equal(g.correct, false, `${name} ${t.task.id}`);
      assert.equal(g.failureClass, 'lookup', `${name} ${t.task.id}: ${failed(g)}`);
    }
    assert.ok(caught >= least, `${name}: ${caught} tasks trapped`);
    ctx.diagnostic(`${name}: ${caught} of ${tasks.length} tasks trapped`);
  }
});

test('FINISH([]) fails every task (class lookup): no free points', async () => {
  await assertFinishEmptyFails(h);
  const g = await h.grade(tasks[0]!, { ...(await h.play(expert, tasks[0]!)), result: '[]' });
  assert.equal(g.checks.find((c) => !c.pass)!.class, 'lookup');
});

test('factory parity: a suite expert conversation passes the harness checks in its dialect (prompt, PUT, live writes)', async () => {
  await assertFactoryParity(metformin, h);
});

test('no degenerate policy of the audit passes more than 5 % of the generated tasks', async (ctx) => {
  const rates = await assertDegenerate(metformin, h);
  ctx.diagnostic(JSON.stringify(rates));
  assert.equal(Object.keys(rates).length, 6);
  // a fixed answer is by construction one task's right answer: it may pass that one (≤ 5 %), nothing else may pass
  assert.ok(Object.entries(rates).every(([p, r]) => r === 0 || p === 'modal-answer'));
});
