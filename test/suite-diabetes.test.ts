/**
 * The `diabetes` family (type 2 diabetes on the problem list when HbA1c confirms it): generator branch coverage and
 * planted traps, the expert at 100 % (both variants, text and tools), a mutation per checkpoint, trap readers (first
 * page only, entered-in-error results, the IFCC code left out, any diabetes Condition taken as the problem list)
 * failing with class `lookup`, FINISH([]) at zero, factory parity and the audit's degenerate policies at ≤ 5 %.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  A1C_IFCC_LOINC,
  A1C_LOINC,
  answerA1c,
  CONDITION_CATEGORY,
  CONDITION_CLINICAL,
  CONDITION_VERIFICATION,
  type DiabetesReader,
  diabetes,
  diabetesScript,
  documentsDiabetes,
  EXPERT_READERS,
  summarizeA1c,
  T2DM_SNOMED,
} from '../src/tasks/suite/diabetes.js';
import { resources } from '../src/tasks/suite/kit.js';
import { plain, runScript } from '../src/tasks/common.js';
import { PolicyAgent } from '../src/agent/backends/scripted.js';
import { rngFor } from '../src/worlds/prng.js';
import type { Agent } from '../src/agent/types.js';
import type { GeneratedTask, TaskOutput } from '../src/tasks/types.js';
import {
  API,
  addWrite,
  assertExpert,
  assertFactoryParity,
  assertFinishEmptyFails,
  assertMutations,
  byBranch,
  dropWrites,
  editWrite,
  expert,
  failed,
  type SuiteHarness,
  suiteHarness,
} from './helpers/suite.js';

let h: SuiteHarness;
let tasks: GeneratedTask[];

before(async () => {
  h = await suiteHarness(diabetes, { patients: 60 });
  tasks = h.tasks;
});

const a1cOf = (t: GeneratedTask) => t.facts.a1c as number;
const observation = (mrn: string) => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: A1C_LOINC }] },
  subject: { reference: `Patient/${mrn}` },
  effectiveDateTime: '2023-11-13T10:00:00+00:00',
  valueQuantity: { value: 6.1, unit: '%' },
});

test('generator: every branch, facts from the record, the newest result past the first page, traps planted', async () => {
  const m = byBranch(tasks);
  assert.deepEqual([...m.keys()].sort(), [...diabetes.branches].sort());
  for (const b of diabetes.branches) assert.ok(m.get(b)!.length >= 3, `${b}: ${m.get(b)!.length}`);
  const only = await diabetes.generate(h.cw.access, { rng: rngFor('x', 2), patients: h.cw.world.patientIds, branch: 'added', count: 2 });
  assert.equal(only.length, 2);
  assert.ok(only.every((t) => t.branch === 'added'));
  let ifccLatest = 0;
  let eieResult = 0;
  let eieProblem = 0;
  let encounterDx = 0;
  let outside = 0;
  for (const t of tasks) {
    const all = resources(await h.read(`Observation?patient=${t.patient}&code=${A1C_LOINC},${A1C_IFCC_LOINC}&_count=5000`));
    assert.ok(all.length >= 25, `${t.task.id} ${t.patient}: ${all.length} results`);
    const page1 = resources(await h.read(`Observation?patient=${t.patient}&code=${A1C_LOINC},${A1C_IFCC_LOINC}`));
    assert.equal(page1.length, 20);
    const latest = t.facts.latest as { id: string; unit: string; time: string };
    assert.ok(!page1.some((r) => r.id === latest.id), `${t.task.id}: the newest result is on the first page`);
    assert.equal(answerA1c(summarizeA1c(all).latest!), a1cOf(t));
    if (latest.unit === 'mmol/mol') ifccLatest++;
    if (all.some((r) => r.status === 'entered-in-error' && String(r.effectiveDateTime) > latest.time)) eieResult++;
    const age = (r: Record<string, unknown>) => Date.parse('2023-11-13T10:15:00+00:00') - Date.parse(String(r.effectiveDateTime));
    if (all.some((r) => age(r) > 365 * 86400000 && age(r) <= 365 * 86400000 + 90 * 60000)) outside++;
    const conds = resources(await h.read(`Condition?patient=${t.patient}&code=E11.9&_count=5000`));
    const eie = conds.filter((r) => JSON.stringify(r.verificationStatus).includes('entered-in-error'));
    if (eie.length) eieProblem++;
    if (t.branch === 'added') {
      assert.ok(!conds.some(documentsDiabetes), 'added: nothing documents diabetes');
      if (conds.some((r) => JSON.stringify(r.category).includes('encounter-diagnosis') && !JSON.stringify(r.verificationStatus).includes('entered')))
        encounterDx++;
    }
    if (t.branch === 'already_documented') assert.ok((t.facts.documentedBy as string[]).length > 0);
    if (t.branch !== 'not_confirmed') assert.ok((t.facts.abnormalDays as string[]).length >= 2);
    else assert.ok((t.facts.abnormalDays as string[]).length <= 1);
  }
  assert.ok(ifccLatest >= 3, `IFCC latest: ${ifccLatest}`);
  assert.ok(eieResult >= 2, `entered-in-error results newer than the latest: ${eieResult}`);
  assert.ok(eieProblem >= 2, `entered-in-error problems: ${eieProblem}`);
  assert.ok(outside >= 1, `results just outside the window: ${outside}`);
  assert.ok(encounterDx >= 1, `added with an encounter diagnosis: ${encounterDx}`);
});

test('expert: 100 % in both variants (text) and in the tools protocol, every checkpoint passed', async () => {
  await assertExpert(diabetes, h);
});

test('mutations: breaking one field of the expert action fails exactly that checkpoint', async () => {
  const cond = (a: { kind: string; url: string }) => a.kind === 'post' && a.url.endsWith('Condition');
  await assertMutations(
    diabetes,
    h,
    (t, out) => {
      const hist = out.history!;
      const day = JSON.parse(String(out.result))[2] as string;
      const label = (l: string) => () => ({ ...out, result: JSON.stringify([l, a1cOf(t), day]) });
      const m: Record<string, () => TaskOutput> = {
        answer_a1c: () => ({ ...out, result: JSON.stringify([JSON.parse(String(out.result))[0], a1cOf(t) + 0.5, day]) }),
        criteria: label(t.branch === 'not_confirmed' ? 'added' : 'not-confirmed'),
        existing_problem: label(t.branch === 'added' ? 'already-documented' : 'added'),
        no_writes: () => ({ ...out, history: addWrite(hist, 'post', `${API}Observation`, observation(t.patient!)) }),
        problem_added: () => ({
          ...out,
          history: editWrite(hist, cond, (b) => {
            b.code = { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'I10' }], text: 'Essential hypertension' };
          }),
        }),
        problem_payload: () => ({
          ...out,
          history: editWrite(hist, cond, (b) => {
            b.verificationStatus = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'provisional' }] };
          }),
        }),
        prediabetes_reconciled: () => ({
          ...out,
          history: addWrite(hist, 'post', `${API}Condition`, {
            resourceType: 'Condition',
            clinicalStatus: { coding: [{ system: CONDITION_CLINICAL, code: 'active' }] },
            verificationStatus: { coding: [{ system: CONDITION_VERIFICATION, code: 'confirmed' }] },
            category: [{ coding: [{ system: CONDITION_CATEGORY, code: 'problem-list-item' }] }],
            code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'R73.03' }] },
            subject: { reference: `Patient/${t.patient}` },
          }),
        }),
        no_other_writes: () => ({ ...out, history: addWrite(hist, 'post', `${API}Observation`, observation(t.patient!)) }),
      };
      return m;
    },
    ['answer_a1c', 'criteria', 'existing_problem'],
  );
});

test('prediabetes: resolving it while changing another field is a payload failure; leaving it active a decision one', async () => {
  const t = tasks.find((x) => x.branch === 'prediabetes_resolved')!;
  const out = await h.play(expert, t);
  const put = (a: { kind: string }) => a.kind === 'put';
  const edited = editWrite(out.history!, put, (b) => {
    (b.code as { text: string }).text = 'Impaired glucose';
  });
  const g = await h.grade(t, { ...out, history: edited });
  assert.deepEqual(failed(g), ['prediabetes_reconciled']);
  assert.equal(g.failureClass, 'payload');
  const left = await h.grade(t, { ...out, history: dropWrites(out.history!, put) });
  assert.deepEqual(failed(left), ['prediabetes_reconciled']);
  assert.equal(left.failureClass, 'decision');
});

/** A trap reader: the expert's decisions and writes on what it reads. */
function trapAgent(name: string, read: DiabetesReader): Agent {
  return new PolicyAgent(name, (task, history) => runScript(task, history, { apiBase: API }, [name], diabetesScript(read)));
}

test('traps: first page only, entered-in-error results, no IFCC code, any diabetes Condition: fail with class lookup', async () => {
  const scan = EXPERT_READERS.scan!;
  const firstPage: DiabetesReader = {
    ...scan,
    a1c: (io, mrn) => summarizeA1c(resources(plain(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${A1C_LOINC},${A1C_IFCC_LOINC}`)))),
  };
  const anyStatus: DiabetesReader = {
    ...scan,
    a1c: (io, mrn) =>
      summarizeA1c(resources(plain(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${A1C_LOINC},${A1C_IFCC_LOINC}&_count=5000`))), () => true),
  };
  const percentOnly: DiabetesReader = {
    ...scan,
    a1c: (io, mrn) => summarizeA1c(resources(plain(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${A1C_LOINC}&_count=5000`)))),
  };
  // every Condition coded type 2 diabetes taken as an active problem-list entry, whatever its category and status
  const anyCondition: DiabetesReader = {
    ...scan,
    problems: (io, mrn) => [
      ...scan.problems(io, mrn).filter((r) => !JSON.stringify(r.code).includes(T2DM_SNOMED)),
      ...resources(plain(io.get(`${io.apiBase}Condition?patient=${mrn}&code=E11.9&_count=5000`))).map((r) => ({
        ...r,
        category: [{ coding: [{ system: CONDITION_CATEGORY, code: 'problem-list-item' }] }],
        clinicalStatus: { coding: [{ system: CONDITION_CLINICAL, code: 'active' }] },
        verificationStatus: { coding: [{ system: CONDITION_VERIFICATION, code: 'confirmed' }] },
      })),
    ],
  };
  for (const [name, read, least] of [
    ['first-page', firstPage, 8],
    ['entered-in-error', anyStatus, 2],
    ['percent-only', percentOnly, 3],
    ['any-condition', anyCondition, 2],
  ] as const) {
    let caught = 0;
    for (const t of tasks) {
      const out = await h.play(trapAgent(name, read), t);
      const g = await h.grade(t, out);
      const ref = g.reference as [string, number];
      const got = JSON.parse(String(out.result)) as [string, number];
      if (got[0] === ref[0] && Math.abs(got[1] - ref[1]) < 1e-9) continue; // the trap did not change what it read
      assert.equal(g.correct, false, `${name} ${t.task.id}`);
      // a wrong A1c (or, for the condition reader, a wrong problem list) is a lookup failure; a record missed on the
      // way to the decision (an abnormal IFCC result left out) fails the criteria, class decision
      if (Math.abs(got[1] - ref[1]) < 1e-9 && name !== 'any-condition') {
        assert.equal(g.failureClass, 'decision', `${name} ${t.task.id}: ${failed(g)}`);
        continue;
      }
      caught++;
      assert.equal(g.failureClass, 'lookup', `${name} ${t.task.id}: ${failed(g)} ${out.result} vs ${JSON.stringify(ref)}`);
    }
    assert.ok(caught >= least, `${name}: ${caught} tasks trapped with class lookup`);
  }
});

test('FINISH([]) fails every task (class lookup): no free points', async () => {
  await assertFinishEmptyFails(h);
  const g = await h.grade(tasks[0]!, { ...(await h.play(expert, tasks[0]!)), result: '[]' });
  assert.equal(g.checks.find((c) => !c.pass)!.class, 'lookup');
});

test('factory parity: a suite expert conversation passes the harness checks in its dialect', async () => {
  await assertFactoryParity(diabetes, h);
});

test('no degenerate policy of the audit passes more than 5 % of the generated tasks', async () => {
  const { assertDegenerate } = await import('./helpers/suite.js');
  const rates = await assertDegenerate(diabetes, h);
  assert.equal(Object.keys(rates).length, 6);
  // a fixed answer is by construction one task's right answer: it may pass that one (≤ 5 %), nothing else may pass
  assert.ok(
    Object.entries(rates).every(([p, r]) => r === 0 || p === 'modal-answer'),
    JSON.stringify(rates),
  );
});
