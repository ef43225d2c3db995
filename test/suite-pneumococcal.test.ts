/**
 * The `pneumococcal` family (adult PCV20 per ACIP 2023): generator branch coverage and planted traps (decisive record
 * past the first page, `not-done` / `entered-in-error` PCV20 records, the 364/365-day edges), the rule's date
 * arithmetic, the expert at 100 % (both variants, text and tools), one mutation per checkpoint, trap readers (first
 * page only, any status → class lookup; PCV13 taken for PCV20 → class decision), `FINISH([])`, factory parity and the
 * audit's degenerate policies.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  CVX,
  type ImmunizationReader,
  LABEL,
  PCV13,
  PCV20,
  pcv20Order,
  plusOneYear,
  pneumococcal,
  pneumococcalScript,
  pneumoDecision,
  REGISTRY_SYSTEM,
  riskConditions,
  sameEvidence,
  scanImmunizations,
  scenarioOf,
} from '../src/tasks/suite/pneumococcal.js';
import { plain, runScript } from '../src/tasks/common.js';
import { resources } from '../src/tasks/suite/kit.js';
import { PolicyAgent } from '../src/agent/backends/scripted.js';
import type { Agent } from '../src/agent/types.js';
import type { GeneratedTask, TaskOutput } from '../src/tasks/types.js';
import { rngFor } from '../src/worlds/prng.js';
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
  h = await suiteHarness(pneumococcal);
  tasks = h.tasks;
});

const imm = (cvx: string, date: string, status = 'completed', id = `${cvx}-${date}`) => ({
  resourceType: 'Immunization',
  id,
  status,
  vaccineCode: { coding: [{ system: CVX, code: cvx }] },
  occurrenceDateTime: `${date}T10:00:00+00:00`,
});

test('the rule: calendar-year interval, completed doses only, outside cases served as no task', () => {
  assert.equal(plusOneYear('2022-11-14'), '2023-11-14');
  assert.equal(plusOneYear('2020-02-29'), '2021-03-01');
  assert.deepEqual(pneumoDecision([imm('33', '2022-11-14')]), { branch: 'not_yet', evidence: '2023-11-14', decisiveId: '33-2022-11-14' });
  assert.deepEqual(pneumoDecision([imm('33', '2022-11-13')]), { branch: 'due_after_ppsv23', evidence: '2022-11-13', decisiveId: '33-2022-11-13' });
  assert.equal((pneumoDecision([imm('33', '2015-01-02'), imm('33', '2019-06-30')]) as { evidence: string }).evidence, '2019-06-30');
  assert.equal((pneumoDecision([imm(PCV13, '2020-05-05')]) as { branch: string }).branch, 'due_after_pcv13');
  assert.equal((pneumoDecision([imm(PCV13, '2018-05-05'), imm(PCV20, '2022-01-10')]) as { branch: string }).branch, 'complete');
  assert.equal(
    (pneumoDecision([imm(PCV20, '2023-01-10', 'not-done'), imm(PCV20, '2023-02-10', 'entered-in-error')]) as { branch: string }).branch,
    'due_naive',
  );
  assert.equal((pneumoDecision([imm('150', '2023-10-01')]) as { evidence: string }).evidence, 'none');
  assert.ok('why' in pneumoDecision([imm(PCV13, '2016-01-01'), imm('33', '2018-01-01')]), 'PCV13 + PPSV23: shared decision-making');
  assert.ok('why' in pneumoDecision([imm(PCV13, '2023-06-01')]), 'PCV13 < 1 year');
  assert.ok('why' in pneumoDecision([imm('215', '2022-06-01')]), 'PCV15');
  const cond = (code: string, clinical = 'active', verification = 'confirmed') => ({
    clinicalStatus: { coding: [{ code: clinical }] },
    verificationStatus: { coding: [{ code: verification }] },
    code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code }] },
  });
  assert.deepEqual(riskConditions([cond('E11.9'), cond('N18.30'), cond('I10')]), ['E11.9']);
  assert.deepEqual(riskConditions([{ ...cond('x'), code: { coding: [{ system: 'http://snomed.info/sct', code: '13645005' }] } }]), ['13645005']);
  assert.deepEqual(riskConditions([cond('J44.9', 'resolved'), cond('I50.9', 'active', 'entered-in-error'), cond('E110')]), []);
  assert.ok(sameEvidence('2023-11-14', '2023-11-14') && sameEvidence('2023-11-14T00:00:00Z', '2023-11-14') && sameEvidence(' None ', 'none'));
  assert.ok(!sameEvidence('2023-11-13', '2023-11-14') && !sameEvidence('', 'none') && !sameEvidence(null, 'none'));
  // only lane-0 patients get a scenario
  assert.equal(scenarioOf(1), null);
  assert.ok(scenarioOf(0) && scenarioOf(6));
});

test('generator: every branch, facts from the record, the decisive record past the first page, traps planted', async () => {
  const m = byBranch(tasks);
  assert.deepEqual([...m.keys()].sort(), [...pneumococcal.branches].sort());
  for (const b of pneumococcal.branches) assert.ok(m.get(b)!.length >= 2, `${b}: ${m.get(b)!.length}`);
  const only = await pneumococcal.generate(h.cw.access, { rng: rngFor('x', 2), patients: h.cw.world.patientIds, branch: 'not_yet', count: 2 });
  assert.equal(only.length, 2);
  assert.ok(only.every((t) => t.branch === 'not_yet'));
  const statuses = new Map<string, number>();
  let edges = 0;
  for (const t of tasks) {
    const all = resources(plain(await h.read(`Immunization?patient=${t.patient}&_count=5000`)));
    assert.ok(all.length > 20, `${t.task.id}: ${all.length} immunizations`);
    assert.ok(all.every((r) => (r.identifier as Array<{ system: string }>)[0]!.system === REGISTRY_SYSTEM));
    const d = pneumoDecision(all) as { branch: string; evidence: string; decisiveId: string | null };
    assert.equal(d.branch, t.branch);
    assert.equal(d.evidence, t.facts.evidence);
    const page1 = await h.read(`Immunization?patient=${t.patient}`);
    const ids = resources(page1).map((r) => String(r.id));
    assert.equal(ids.length, 20);
    assert.ok((page1.link as Array<{ relation: string }>).some((l) => l.relation === 'next'));
    if (d.decisiveId) assert.ok(!ids.includes(d.decisiveId), `${t.task.id}: the decisive record is on the first page`);
    const times = all.map((r) => String(r.occurrenceDateTime));
    assert.notDeepEqual(times, [...times].sort(), 'server order is not date order');
    for (const r of all)
      if ((r.vaccineCode as { coding: Array<{ code: string }> }).coding[0]!.code === PCV20)
        statuses.set(String(r.status), (statuses.get(String(r.status)) ?? 0) + 1);
    if (t.facts.evidence === '2023-11-14' || (t.branch === 'due_after_ppsv23' && t.facts.evidence === '2022-11-13')) edges++;
    assert.ok((t.facts.age as number) >= 65 || (t.facts.risk as string[]).length > 0, `${t.task.id}: eligible`);
  }
  assert.ok((statuses.get('not-done') ?? 0) >= 3, `not-done PCV20: ${statuses.get('not-done')}`);
  assert.ok((statuses.get('entered-in-error') ?? 0) >= 3, `entered-in-error PCV20: ${statuses.get('entered-in-error')}`);
  assert.ok(edges >= 1, `364/365-day edges: ${edges}`);
  assert.ok(
    tasks.some((t) => (t.facts.age as number) < 65),
    'adults under 65 with a risk condition are served',
  );
});

test('expert: 100 % in both variants (text) and in the tools protocol, every checkpoint passed', async () => {
  await assertExpert(pneumococcal, h);
});

test('mutations: breaking one field of the expert action fails exactly that checkpoint', async () => {
  const mr = (a: { kind: string; url: string }) => a.kind === 'post' && a.url.endsWith('MedicationRequest');
  await assertMutations(
    pneumococcal,
    h,
    (t, out) => {
      const hist = out.history!;
      const label = LABEL[t.branch as keyof typeof LABEL];
      const evidence = String(t.facts.evidence);
      const m: Record<string, () => TaskOutput> = {
        answer_evidence: () => ({ ...out, result: JSON.stringify([label, evidence === 'none' ? '2020-01-01' : 'none']) }),
        answer_decision: () => ({ ...out, result: JSON.stringify([label === 'complete' ? 'ordered' : 'complete', evidence]) }),
        pcv20_ordered: () => ({
          ...out,
          history: editWrite(hist, mr, (b) => ((b.medicationCodeableConcept as { coding: Array<{ code: string }> }).coding[0]!.code = PCV13)),
        }),
        pcv20_payload: () => ({
          ...out,
          history: editWrite(hist, mr, (b) => {
            (b.dosageInstruction as Array<{ doseAndRate: Array<{ doseQuantity: { value: number } }> }>)[0]!.doseAndRate[0]!.doseQuantity.value = 0.25;
          }),
        }),
        no_other_writes: () => ({
          ...out,
          history: addWrite(hist, 'post', `${API}Observation`, {
            resourceType: 'Observation',
            status: 'final',
            code: { text: 'note' },
            subject: { reference: `Patient/${t.patient}` },
          }),
        }),
        no_writes: () => ({ ...out, history: addWrite(hist, 'post', `${API}MedicationRequest`, pcv20Order(String(t.patient))) }),
      };
      return m;
    },
    ['answer_evidence', 'answer_decision'],
  );
});

test('payload: route and dose spellings a clinician would accept pass, others fail', async () => {
  const t = tasks.find((x) => x.branch === 'due_naive')!;
  const out = await h.play(expert, t);
  const mr = (a: { kind: string; url: string }) => a.kind === 'post' && a.url.endsWith('MedicationRequest');
  const withRoute = (route: unknown) =>
    h.grade(t, {
      ...out,
      history: editWrite(out.history!, mr, (b) => ((b.dosageInstruction as Array<Record<string, unknown>>)[0]!.route = route)),
    });
  assert.ok((await withRoute({ text: 'IM' })).correct);
  assert.ok((await withRoute({ text: 'intramuscular' })).correct);
  assert.deepEqual(failed(await withRoute({ text: 'subcutaneous' })), ['pcv20_payload']);
  assert.deepEqual(failed(await withRoute(undefined)), ['pcv20_payload']);
});

/** A trap reader: the expert's eligibility check, decision, order and answer on what it reads. */
function trapAgent(name: string, read: ImmunizationReader): Agent {
  return new PolicyAgent(name, (task, history) => runScript(task, history, { apiBase: API }, [name], pneumococcalScript(read)));
}

test('traps: a first-page reader and an any-status reader fail with class lookup; PCV13 taken for PCV20 with class decision', async () => {
  const firstPage: ImmunizationReader = (io, mrn) => resources(plain(io.get(`${io.apiBase}Immunization?patient=${mrn}`)));
  const anyStatus: ImmunizationReader = (io, mrn) => scanImmunizations(io, mrn).map((r) => ({ ...r, status: 'completed' }));
  const pcv13IsPcv20: ImmunizationReader = (io, mrn) =>
    scanImmunizations(io, mrn).map((r) =>
      (r.vaccineCode as { coding: Array<{ code: string }> }).coding[0]!.code === PCV13 ? { ...r, vaccineCode: { coding: [{ system: CVX, code: PCV20 }] } } : r,
    );
  for (const [name, read, cls, branches, least] of [
    ['first-page', firstPage, 'lookup', pneumococcal.branches, 8],
    ['any-status', anyStatus, 'lookup', pneumococcal.branches, 4],
    // every PCV13-only patient is taken for complete: the right record read, the wrong decision
    ['pcv13-is-pcv20', pcv13IsPcv20, 'decision', ['due_after_pcv13'], tasks.filter((t) => t.branch === 'due_after_pcv13').length],
  ] as const) {
    let caught = 0;
    for (const t of tasks.filter((x) => (branches as readonly string[]).includes(x.branch))) {
      const out = await h.play(trapAgent(name, read), t);
      const g = await h.grade(t, out);
      if (g.correct) continue; // the trap did not change what it read
      caught++;
      assert.equal(g.failureClass, cls, `${name} ${t.task.id}: ${failed(g)}`);
    }
    assert.ok(caught >= Math.max(least, 2), `${name}: ${caught} tasks trapped`);
  }
});

test('FINISH([]) fails every task: no free points', async () => {
  await assertFinishEmptyFails(h);
});

test('factory parity: the expert conversation passes the harness checks in its dialect', async () => {
  await assertFactoryParity(pneumococcal, h);
});

test('no degenerate policy of the audit passes more than 5 % of the generated tasks', async () => {
  const rates = await assertDegenerate(pneumococcal, h);
  assert.equal(Object.keys(rates).length, 6);
});
