/**
 * The clinical suite's `citalopram` family (a citalopram dose increase limited by age and QTc): generator branch
 * coverage and planted traps, the expert at 100 % (both variants, text and tools), a mutation test per checkpoint,
 * trap readers (first page only, entered-in-error results, seconds read as milliseconds, the age limit skipped)
 * failing, `FINISH([])` failing every task, factory parity and the audit's degenerate policies.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  AGE_LIMIT,
  CITALOPRAM_LABELS,
  citalopram,
  citalopramBranch,
  citalopramScript,
  ECG_SNOMED,
  QTC_LOINC,
  type QtcReader,
  standingQtcs,
} from '../src/tasks/suite/citalopram.js';
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
  editWrite,
  expert,
  failed,
  type SuiteHarness,
  suiteHarness,
} from './helpers/suite.js';

let h: SuiteHarness;
let tasks: GeneratedTask[];

before(async () => {
  h = await suiteHarness(citalopram);
  tasks = h.tasks;
});

const qtcOf = (t: GeneratedTask): number => (t.facts.qtc as { ms: number }).ms;

test('generator: every branch, facts from the record, the decisive QTc past the first page, only traps newer than it', async () => {
  const m = byBranch(tasks);
  assert.deepEqual([...m.keys()].sort(), [...citalopram.branches].sort());
  for (const b of citalopram.branches) assert.ok(m.get(b)!.length >= 3, `${b}: ${m.get(b)!.length}`);
  const only = await citalopram.generate(h.cw.access, { rng: rngFor('x', 2), patients: h.cw.world.patientIds, branch: 'stop', count: 2 });
  assert.equal(only.length, 2);
  assert.ok(only.every((t) => t.branch === 'stop'));
  let eie = 0;
  let seconds = 0;
  for (const t of tasks) {
    const all = resources(plain(await h.read(`Observation?patient=${t.patient}&code=${QTC_LOINC}&_count=5000`)));
    assert.ok(all.length > 25, 'more results than one page');
    const page1 = await h.read(`Observation?patient=${t.patient}&code=${QTC_LOINC}`);
    const ids = resources(page1).map((r) => r.id);
    assert.equal(ids.length, 20);
    assert.ok(!ids.includes((t.facts.qtc as { id: string }).id), `${t.task.id}: the decisive result is on the first page`);
    const times = all.map((r) => String(r.effectiveDateTime));
    assert.notDeepEqual(times, [...times].sort(), 'unsorted in server order');
    const qtcs = standingQtcs(all);
    assert.equal(qtcs[0]!.ms, qtcOf(t));
    assert.equal(citalopramBranch(t.facts.age as number, qtcs), t.branch);
    if (t.branch === 'keep') assert.ok((t.facts.age as number) > AGE_LIMIT);
    if (t.branch === 'increase' || t.branch === 'ecg') assert.ok((t.facts.age as number) <= AGE_LIMIT);
    const newer = all.filter((r) => String(r.effectiveDateTime) > qtcs[0]!.time);
    assert.ok(
      newer.every((r) => r.status === 'entered-in-error' || r.status === 'cancelled'),
      'only traps are newer',
    );
    if (newer.some((r) => r.status === 'entered-in-error')) eie++;
    if (all.some((r) => (r.valueQuantity as { code?: string } | undefined)?.code === 's')) seconds++;
  }
  assert.ok(eie >= 4, `entered-in-error traps: ${eie}`);
  assert.ok(seconds >= tasks.length / 2, `results in seconds: ${seconds}`);
  // answers differ: no fixed value covers more than a few tasks
  const values = new Map<number, number>();
  for (const t of tasks) values.set(qtcOf(t), (values.get(qtcOf(t)) ?? 0) + 1);
  assert.ok(Math.max(...values.values()) <= Math.max(2, tasks.length / 20), 'a QTc value repeats too often');
  // the written outcomes are balanced: no single one covers more than 60 %
  for (const b of citalopram.branches) assert.ok(m.get(b)!.length <= 0.6 * tasks.length, b);
});

test('expert: 100 % in both variants (text) and in the tools protocol, every checkpoint passed', async () => {
  await assertExpert(citalopram, h);
});

test('mutations: breaking one field of the expert action fails exactly that checkpoint', async () => {
  const put = (a: { kind: string }) => a.kind === 'put';
  const sr = (a: { kind: string; url: string }) => a.kind === 'post' && a.url.endsWith('ServiceRequest');
  await assertMutations(
    citalopram,
    h,
    async (t, out) => {
      const hist = out.history!;
      const orderId = String(t.facts.orderId);
      const order = await h.read(`MedicationRequest/${orderId}`);
      const label = CITALOPRAM_LABELS[t.branch as keyof typeof CITALOPRAM_LABELS];
      const dose = (b: Record<string, unknown>) =>
        (b.dosageInstruction as Array<{ doseAndRate: Array<{ doseQuantity: { value: number } }> }>)[0]!.doseAndRate[0]!.doseQuantity;
      const m: Record<string, () => TaskOutput> = {
        answer_qtc: () => ({ ...out, result: JSON.stringify([label, qtcOf(t) + 7]) }),
        answer_decision: () => ({ ...out, result: JSON.stringify([label === 'stop' ? 'keep-20mg' : 'stop', qtcOf(t)]) }),
        dose_40mg: () => ({ ...out, history: editWrite(hist, put, (b) => (dose(b).value = 30)) }),
        increase_only_dose: () => ({ ...out, history: editWrite(hist, put, (b) => (b.authoredOn = '2023-11-13T10:15:00+00:00')) }),
        citalopram_stopped: () => ({ ...out, history: editWrite(hist, put, (b) => (b.status = 'on-hold')) }),
        stop_only_status: () => ({ ...out, history: editWrite(hist, put, (b) => (dose(b).value = 10)) }),
        citalopram_unchanged: () => ({ ...out, history: addWrite(hist, 'put', `MedicationRequest/${orderId}`, { ...order, status: 'stopped' }) }),
        ecg_ordered: () => ({ ...out, history: editWrite(hist, sr, (b) => ((b.code as { coding: Array<{ code: string }> }).coding[0]!.code = '29303009')) }),
        ecg_payload: () => ({ ...out, history: editWrite(hist, sr, (b) => (b.intent = 'plan')) }),
        no_writes: () => ({
          ...out,
          history: addWrite(hist, 'post', 'ServiceRequest', {
            resourceType: 'ServiceRequest',
            status: 'active',
            intent: 'order',
            code: { coding: [{ system: 'http://snomed.info/sct', code: ECG_SNOMED }] },
            subject: { reference: `Patient/${t.patient}` },
            authoredOn: '2023-11-13T10:15:00+00:00',
          }),
        }),
        no_other_writes: () => ({
          ...out,
          history: addWrite(hist, 'post', 'Observation', {
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: QTC_LOINC }] },
            subject: { reference: `Patient/${t.patient}` },
            valueQuantity: { value: 450, unit: 'ms' },
          }),
        }),
      };
      return m;
    },
    ['answer_qtc', 'answer_decision'],
  );
});

test('the increase may switch the order to the 40 mg tablet; a 40 mg order of two tablets a day at 20 mg fails', async () => {
  const t = tasks.find((x) => x.branch === 'increase')!;
  const out = await h.play(expert, t);
  const put = (a: { kind: string }) => a.kind === 'put';
  const tablet40 = editWrite(out.history!, put, (b) => {
    b.medicationCodeableConcept = {
      coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '309314', display: 'citalopram 40 MG Oral Tablet' }],
    };
  });
  assert.ok((await h.grade(t, { ...out, history: tablet40 })).correct);
  const twice = editWrite(out.history!, put, (b) => {
    const d = (b.dosageInstruction as Array<Record<string, unknown>>)[0]!;
    (d.doseAndRate as Array<{ doseQuantity: { value: number } }>)[0]!.doseQuantity.value = 20;
    d.timing = { code: { text: 'BID' } };
  });
  assert.deepEqual(failed(await h.grade(t, { ...out, history: twice })), ['dose_40mg', 'increase_only_dose']);
});

/** A trap reader: the expert's decisions and writes on the QTc results it reads. */
function trapAgent(name: string, read: QtcReader): Agent {
  return new PolicyAgent(name, (task, history) => runScript(task, history, { apiBase: API }, [name], citalopramScript(read)));
}

test('traps: a first-page reader, an entered-in-error reader and a reader that takes seconds for ms fail with class lookup', async () => {
  const firstPage: QtcReader = (io, mrn) => standingQtcs(resources(plain(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${QTC_LOINC}`))));
  const anyStatus: QtcReader = (io, mrn) =>
    standingQtcs(
      resources(plain(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${QTC_LOINC}&_count=5000`)))
        .filter((r) => r.valueQuantity)
        .map((r) => ({ ...r, status: 'final' })),
    );
  const noConversion: QtcReader = (io, mrn) =>
    standingQtcs(
      resources(plain(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${QTC_LOINC}&_count=5000`))).map((r) => ({
        ...r,
        valueQuantity: { ...(r.valueQuantity as object), code: 'ms', unit: 'ms' },
      })),
    );
  for (const [name, read, least] of [
    ['first-page', firstPage, 6],
    ['entered-in-error', anyStatus, 3],
    ['seconds-as-ms', noConversion, 3],
  ] as const) {
    let caught = 0;
    for (const t of tasks) {
      const out = await h.play(trapAgent(name, read), t);
      const g = await h.grade(t, out);
      const a = JSON.parse(typeof out.result === 'string' ? out.result : '[]') as unknown[];
      if (a[1] === qtcOf(t) && a[0] === CITALOPRAM_LABELS[t.branch as keyof typeof CITALOPRAM_LABELS]) continue; // the trap did not change what it read
      caught++;
      assert.equal(g.correct, false, `${name} ${t.task.id}`);
      if (a[1] !== qtcOf(t)) assert.equal(g.failureClass, 'lookup', `${name} ${t.task.id}: ${failed(g)}`);
    }
    assert.ok(caught >= least, `${name}: ${caught} tasks trapped`);
  }
});

test('traps: a reader that ignores the age limit fails with class decision on every patient over 60', async () => {
  let caught = 0;
  for (const t of tasks.filter((x) => x.branch === 'keep')) {
    // the same reads, the rule applied as if the patient were 60
    const young = new PolicyAgent('no-age', (task, history) =>
      runScript(task, history, { apiBase: API }, ['no-age'], (io, tk) => {
        const patched = { ...io, json: (url: string) => (url.includes('Patient?') ? { entry: [{ resource: { birthDate: '1963-11-13' } }] } : io.json(url)) };
        citalopramScript((io2, mrn) => standingQtcs(resources(plain(io2.get(`${io2.apiBase}Observation?patient=${mrn}&code=${QTC_LOINC}&_count=5000`)))))(
          patched,
          tk,
        );
      }),
    );
    const g = await h.grade(t, await h.play(young, t));
    assert.equal(g.correct, false, t.task.id);
    assert.equal(g.failureClass, 'decision', `${t.task.id}: ${failed(g)}`);
    caught++;
  }
  assert.ok(caught >= 3, `keep tasks: ${caught}`);
});

test('FINISH([]) fails every task (class lookup): no free points', async () => {
  await assertFinishEmptyFails(h);
  const g = await h.grade(tasks[0]!, { ...(await h.play(expert, tasks[0]!)), result: '[]' });
  assert.equal(g.checks.find((c) => !c.pass)!.class, 'lookup');
});

test('factory parity: a suite expert conversation passes the harness checks in its dialect (prompt, PUT, live writes)', async () => {
  await assertFactoryParity(citalopram, h);
});

test('no degenerate policy of the audit passes more than 5 % of the generated tasks', async () => {
  const { assertDegenerate } = await import('./helpers/suite.js');
  const rates = await assertDegenerate(citalopram, h);
  assert.equal(Object.keys(rates).length, 6);
});
