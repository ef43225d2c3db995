/**
 * The worked example of the clinical suite, `warfarin` (INR-guided warfarin management): generator branch coverage
 * and planted traps, the expert at 100 % (both variants, text and tools), a mutation test per checkpoint (break one
 * field of the expert's action → exactly that checkpoint fails), trap readers (first page only, entered-in-error
 * results) failing with class `lookup`, and `FINISH([])` failing every task.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { countingInr, INR_LOINC, type InrReader, REPEAT_INR_AT, VITAMIN_K_RXNORM, warfarin, warfarinScript } from '../src/tasks/suite/warfarin.js';
import { plain, runScript } from '../src/tasks/common.js';
import { PolicyAgent } from '../src/agent/backends/scripted.js';
import { taskDialect } from '../src/protocol/dialect.js';
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
  editWrite,
  expert,
  failed,
  type SuiteHarness,
  suiteHarness,
} from './helpers/suite.js';

let h: SuiteHarness;
let tasks: GeneratedTask[];

before(async () => {
  h = await suiteHarness(warfarin);
  tasks = h.tasks;
});

test('generator: every branch, facts from the record, the decisive INR past the first page, traps newer than it', async () => {
  const byBranch = new Map<string, GeneratedTask[]>();
  for (const t of tasks) byBranch.set(t.branch, [...(byBranch.get(t.branch) ?? []), t]);
  assert.deepEqual([...byBranch.keys()].sort(), [...warfarin.branches].sort());
  for (const b of warfarin.branches) assert.ok(byBranch.get(b)!.length >= 3, `${b}: ${byBranch.get(b)!.length}`);
  // a branch filter gives only that branch
  const only = await warfarin.generate(h.cw.access, { rng: rngFor('x', 2), patients: h.cw.world.patientIds, branch: 'high_hold', count: 3 });
  assert.equal(only.length, 3);
  assert.ok(only.every((t) => t.branch === 'high_hold'));
  let eie = 0;
  for (const t of tasks) {
    const inr = t.facts.inr as { value: number; id: string } | null;
    const all = plain(
      JSON.parse((await h.cw.access.fhir({ method: 'GET', url: `${API}Observation?patient=${t.patient}&code=${INR_LOINC}&_count=5000` })).body),
    ) as {
      entry: Array<{ resource: Record<string, unknown> }>;
    };
    assert.ok(all.entry.length > 20, 'more results than one page');
    const page1 = JSON.parse((await h.cw.access.fhir({ method: 'GET', url: `${API}Observation?patient=${t.patient}&code=${INR_LOINC}` })).body) as {
      entry: Array<{ resource: { id: string } }>;
      link: Array<{ relation: string }>;
    };
    assert.equal(page1.entry.length, 20);
    assert.ok(page1.link.some((l) => l.relation === 'next'));
    const latestAny = t.facts.latestAny as { id: string };
    assert.ok(!page1.entry.some((e) => e.resource.id === latestAny.id), `${t.task.id}: the decisive result is on the first page`);
    // unsorted: server order is not date order
    const times = all.entry.map((e) => String(e.resource.effectiveDateTime));
    assert.notDeepEqual(times, [...times].sort());
    if (inr) assert.equal(countingInr(all.entry).inWindow!.value, inr.value);
    const newer = all.entry.filter((e) => String(e.resource.effectiveDateTime) > String((t.facts.latestAny as { time: string }).time));
    if (newer.some((e) => e.resource.status === 'entered-in-error')) eie++;
    assert.ok(
      newer.every((e) => e.resource.status === 'entered-in-error' || e.resource.status === 'cancelled'),
      'only traps are newer',
    );
  }
  assert.ok(eie >= 4, `entered-in-error traps: ${eie}`);
});

test('expert: 100 % in both variants (text) and in the tools protocol, every checkpoint passed', async () => {
  await assertExpert(warfarin, h);
});

test('mutations: breaking one field of the expert action fails exactly that checkpoint', async () => {
  const sr = (a: { url: string }) => a.url.endsWith('ServiceRequest');
  const mr = (a: { kind: string; url: string }) => a.kind === 'post' && a.url.endsWith('MedicationRequest');
  const put = (a: { kind: string }) => a.kind === 'put';
  await assertMutations(
    warfarin,
    h,
    async (t, out) => {
      const hist = out.history!;
      const orderId = String(t.facts.orderId);
      const order = await h.read(`MedicationRequest/${orderId}`);
      const m: Record<string, () => TaskOutput> = {
        answer_inr: () => ({ ...out, result: `[${(t.facts.inr ? (t.facts.inr as { value: number }).value : -1) + 0.5}]` }),
        warfarin_on_hold: () => ({ ...out, history: editWrite(hist, put, (b) => (b.status = 'stopped')) }),
        hold_only_status: () => ({
          ...out,
          history: editWrite(hist, put, (b) => {
            b.dosageInstruction = [{ text: '2.5 mg oral DAILY' }];
          }),
        }),
        repeat_inr_ordered: () => ({
          ...out,
          history: editWrite(hist, sr, (b) => ((b.code as { coding: Array<{ code: string }> }).coding[0]!.code = '5902-2')),
        }),
        repeat_inr_payload: () => ({ ...out, history: editWrite(hist, sr, (b) => (b.occurrenceDateTime = '2023-11-15T08:00:00+00:00')) }),
        no_vitamin_k: () => ({
          ...out,
          history: addWrite(hist, 'post', `${API}MedicationRequest`, {
            resourceType: 'MedicationRequest',
            status: 'active',
            intent: 'order',
            medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: VITAMIN_K_RXNORM }] },
            subject: { reference: `Patient/${t.patient}` },
          }),
        }),
        vitamin_k_ordered: () => ({
          ...out,
          history: editWrite(hist, mr, (b) => ((b.medicationCodeableConcept as { coding: Array<{ code: string }> }).coding[0]!.code = '11289')),
        }),
        vitamin_k_payload: () => ({
          ...out,
          history: editWrite(hist, mr, (b) => {
            (b.dosageInstruction as Array<{ doseAndRate: Array<{ doseQuantity: { value: number } }> }>)[0]!.doseAndRate[0]!.doseQuantity.value = 5;
          }),
        }),
        no_other_writes: () => ({
          ...out,
          history: addWrite(hist, 'post', `${API}Observation`, {
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: INR_LOINC }] },
            subject: { reference: `Patient/${t.patient}` },
            valueQuantity: { value: 2.5 },
          }),
        }),
        warfarin_unchanged: () => ({ ...out, history: addWrite(hist, 'put', `${API}MedicationRequest/${orderId}`, { ...order, status: 'on-hold' }) }),
        no_writes: () => ({
          ...out,
          history: addWrite(hist, 'post', `${API}ServiceRequest`, {
            resourceType: 'ServiceRequest',
            status: 'active',
            intent: 'order',
            code: { coding: [{ system: 'http://loinc.org', code: INR_LOINC }] },
            subject: { reference: `Patient/${t.patient}` },
            occurrenceDateTime: REPEAT_INR_AT,
          }),
        }),
        inr_ordered: () => ({ ...out, history: editWrite(hist, sr, (b) => ((b.code as { coding: Array<{ code: string }> }).coding[0]!.code = '5902-2')) }),
        inr_order_payload: () => ({ ...out, history: editWrite(hist, sr, (b) => (b.priority = 'routine')) }),
      };
      return m;
    },
    ['answer_inr'],
  );
});

/** A trap reader: the expert's decisions and writes on the INR it reads. */
function trapAgent(name: string, read: InrReader): Agent {
  return new PolicyAgent(name, (task, history) => runScript(task, history, { apiBase: API }, [name], warfarinScript(read)));
}

test('traps: a first-page-only reader and an entered-in-error reader fail with class lookup', async () => {
  const firstPage: InrReader = (io, mrn) =>
    countingInr((plain(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${INR_LOINC}`)) as { entry?: unknown[] }).entry ?? []).inWindow;
  const anyStatus: InrReader = (io, mrn) => {
    const b = plain(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${INR_LOINC}&_count=5000`)) as {
      entry?: Array<{ resource: Record<string, unknown> }>;
    };
    return countingInr((b.entry ?? []).map((e) => ({ resource: { ...e.resource, status: 'final' } }))).inWindow;
  };
  for (const [name, read, least] of [
    ['first-page', firstPage, 8],
    ['entered-in-error', anyStatus, 4],
  ] as const) {
    let caught = 0;
    for (const t of tasks) {
      const out = await h.play(trapAgent(name, read), t);
      const g = await h.grade(t, out);
      const ref = t.facts.inr ? (t.facts.inr as { value: number }).value : -1;
      if (out.result === `[${ref}]`) continue; // the trap did not change what it read
      caught++;
      assert.equal(g.correct, false, `${name} ${t.task.id}`);
      assert.equal(g.failureClass, 'lookup', `${name} ${t.task.id}: ${failed(g)}`);
    }
    assert.ok(caught >= least, `${name}: ${caught} tasks trapped`);
  }
});

test('FINISH([]) fails every task (class lookup): no free points', async () => {
  await assertFinishEmptyFails(h);
  const g = await h.grade(tasks[0]!, { ...(await h.play(expert, tasks[0]!)), result: '[]' });
  assert.equal(g.checks.find((c) => !c.pass)!.class, 'lookup');
});

test('factory parity: a suite expert conversation passes the harness checks in its dialect (prompt, PUT, live writes)', async () => {
  const { corpusTools } = await import('../src/factory/tools-rows.js');
  await assertFactoryParity(warfarin, h);
  assert.ok(corpusTools(taskDialect('warfarin_1')).some((x) => x.function.name === 'medication_request_update'));
  assert.ok(!corpusTools().some((x) => x.function.name.endsWith('_update')));
});

test('no degenerate policy of the audit passes more than 5 % of the generated tasks', async () => {
  const { assertDegenerate } = await import('./helpers/suite.js');
  const rates = await assertDegenerate(warfarin, h);
  assert.equal(Object.keys(rates).length, 6);
  assert.ok('modal-answer' in rates);
});
