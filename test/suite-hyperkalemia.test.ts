/**
 * The `hyperkalemia` family (UKKA acute hyperkalaemia): generator branch coverage and planted traps, the expert at
 * 100 % (both variants, text and tools), a mutation per checkpoint (break one field of the expert's action → exactly
 * that checkpoint fails), trap readers (first page only, entered-in-error results, `status=final` only) failing with
 * class `lookup`, `FINISH([])` failing every task, factory parity and the audit's degenerate policies.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  countingPotassium,
  ECG_SNOMED,
  GLUCOSE_RXNORM,
  hyperkalemia,
  hyperkalemiaScript,
  INSULIN_RXNORM,
  K_LOINC,
  type PotassiumReader,
  potassiumBand,
  SALBUTAMOL_RXNORM,
} from '../src/tasks/suite/hyperkalemia.js';
import { resources } from '../src/tasks/suite/kit.js';
import { plain, runScript } from '../src/tasks/common.js';
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

const RX = 'http://www.nlm.nih.gov/research/umls/rxnorm';
let h: SuiteHarness;
let tasks: GeneratedTask[];

before(async () => {
  h = await suiteHarness(hyperkalemia);
  tasks = h.tasks;
});

type K = { value: number; id: string; time: string; status: string; unit: string };

test('generator: every branch, the decisive serum K past the first page, traps newer than it, mEq/L and corrected results', async () => {
  const bb = byBranch(tasks);
  assert.deepEqual([...bb.keys()].sort(), [...hyperkalemia.branches].sort());
  for (const b of hyperkalemia.branches) assert.ok(bb.get(b)!.length >= 3, `${b}: ${bb.get(b)!.length}`);
  const only = await hyperkalemia.generate(h.cw.access, { rng: rngFor('x', 2), patients: h.cw.world.patientIds, branch: 'severe', count: 2 });
  assert.equal(only.length, 2);
  assert.ok(only.every((t) => t.branch === 'severe'));
  let eieChanging = 0;
  let meq = 0;
  let corrected = 0;
  let bloodGas = 0;
  for (const t of tasks) {
    const k = t.facts.k as K;
    assert.equal(potassiumBand(k.value), t.branch);
    const all = resources(await h.read(`Observation?patient=${t.patient}&code=${K_LOINC}&_count=5000`));
    assert.ok(all.length > 25, 'more results than one page');
    assert.equal(countingPotassium(all)!.id, k.id);
    const page1 = await h.read(`Observation?patient=${t.patient}&code=${K_LOINC}`);
    assert.equal(resources(page1).length, 20);
    assert.ok(!resources(page1).some((r) => r.id === k.id), `${t.task.id}: the decisive result is on the first page`);
    const times = all.map((r) => String(r.effectiveDateTime));
    assert.notDeepEqual(times, [...times].sort());
    const newer = all.filter((r) => Date.parse(String(r.effectiveDateTime)) > Date.parse(k.time));
    assert.ok(
      newer.every((r) => r.status === 'entered-in-error' || r.status === 'cancelled'),
      'only traps are newer',
    );
    if (newer.some((r) => r.status === 'entered-in-error' && potassiumBand((r.valueQuantity as { value: number }).value) !== t.branch)) eieChanging++;
    if (/meq/i.test(k.unit)) meq++;
    if (k.status === 'corrected') corrected++;
    if (resources(await h.read(`Observation?patient=${t.patient}&code=6298-4`)).length > 0) bloodGas++;
  }
  assert.ok(eieChanging >= 6, `entered-in-error results that change the band: ${eieChanging}`);
  assert.ok(meq >= 4, `mEq/L: ${meq}`);
  assert.ok(corrected >= 2, `corrected: ${corrected}`);
  assert.ok(bloodGas >= 2, `blood-gas potassium: ${bloodGas}`);
  // patients outside the lane (no hyperkalaemia problem) serve no task
  const served = new Set(tasks.map((t) => t.patient));
  assert.ok(h.cw.world.patientIds.filter((_, i) => i % 2 === 0).every((id) => !served.has(id)));
});

test('expert: 100 % in both variants (text) and in the tools protocol, every checkpoint passed', async () => {
  await assertExpert(hyperkalemia, h);
});

test('mutations: breaking one field of the expert action fails exactly that checkpoint', async () => {
  const sr = (a: { url: string }) => a.url.endsWith('ServiceRequest');
  const mrOf = (code: string) => (a: { kind: string; url: string; body: Record<string, unknown> }) =>
    a.kind === 'post' && a.url.endsWith('MedicationRequest') && JSON.stringify(a.body.medicationCodeableConcept).includes(`"code":"${code}"`);
  const setCode = (b: Record<string, unknown>, key: string, code: string) => {
    (b[key] as { coding: Array<{ code: string }> }).coding[0]!.code = code;
  };
  const setDose = (b: Record<string, unknown>, value: number) => {
    (b.dosageInstruction as Array<{ doseAndRate: Array<{ doseQuantity: { value: number } }> }>)[0]!.doseAndRate[0]!.doseQuantity.value = value;
  };
  await assertMutations(
    hyperkalemia,
    h,
    (t, out) => {
      const hist = out.history!;
      const k = (t.facts.k as K).value;
      const time = (t.facts.k as K).time;
      const m: Record<string, () => TaskOutput> = {
        answer_potassium: () => ({ ...out, result: JSON.stringify([Math.round((k + 0.2) * 10) / 10, t.branch, time]) }),
        answer_band: () => ({ ...out, result: JSON.stringify([k, t.branch === 'mild' ? 'normal' : 'mild', time]) }),
        no_writes: () => ({
          ...out,
          history: addWrite(hist, 'post', `${API}ServiceRequest`, {
            resourceType: 'ServiceRequest',
            status: 'active',
            intent: 'order',
            code: { coding: [{ system: 'http://snomed.info/sct', code: ECG_SNOMED }] },
            subject: { reference: `Patient/${t.patient}` },
          }),
        }),
        ecg_ordered: () => ({ ...out, history: editWrite(hist, sr, (b) => setCode(b, 'code', '29303009')) }),
        ecg_payload: () => ({ ...out, history: editWrite(hist, sr, (b) => (b.status = 'draft')) }),
        insulin_ordered: () => ({ ...out, history: editWrite(hist, mrOf(INSULIN_RXNORM), (b) => setCode(b, 'medicationCodeableConcept', '106892')) }),
        insulin_payload: () => ({ ...out, history: editWrite(hist, mrOf(INSULIN_RXNORM), (b) => setDose(b, 20)) }),
        glucose_ordered: () => ({ ...out, history: editWrite(hist, mrOf(GLUCOSE_RXNORM), (b) => setCode(b, 'medicationCodeableConcept', '4851')) }),
        glucose_payload: () => ({ ...out, history: editWrite(hist, mrOf(GLUCOSE_RXNORM), (b) => setDose(b, 50)) }),
        salbutamol_ordered: () => ({
          ...out,
          history: editWrite(hist, mrOf(SALBUTAMOL_RXNORM), (b) => setCode(b, 'medicationCodeableConcept', '237159')),
        }),
        salbutamol_payload: () => ({ ...out, history: editWrite(hist, mrOf(SALBUTAMOL_RXNORM), (b) => setDose(b, 2.5)) }),
        no_calcium: () => ({
          ...out,
          history: addWrite(hist, 'post', `${API}MedicationRequest`, {
            resourceType: 'MedicationRequest',
            status: 'active',
            intent: 'order',
            medicationCodeableConcept: { text: 'Calcium gluconate 10 % 30 mL IV' },
            subject: { reference: `Patient/${t.patient}` },
          }),
        }),
        no_other_writes: () => ({
          ...out,
          history: addWrite(hist, 'post', `${API}Observation`, {
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: K_LOINC }] },
            subject: { reference: `Patient/${t.patient}` },
            valueQuantity: { value: k },
          }),
        }),
      };
      return m;
    },
    ['answer_potassium', 'answer_band'],
  );
});

test('moderate: salbutamol is optional, a second insulin order is a stray write, the answer time is an instant', async () => {
  const t = tasks.find((x) => x.branch === 'moderate')!;
  const out = await h.play(expert, t);
  const salbutamol = {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: { coding: [{ system: RX, code: SALBUTAMOL_RXNORM }] },
    subject: { reference: `Patient/${t.patient}` },
    dosageInstruction: [{ doseAndRate: [{ doseQuantity: { value: 10, unit: 'mg' } }] }],
  };
  const withSalbutamol = await h.grade(t, { ...out, history: addWrite(out.history!, 'post', `${API}MedicationRequest`, salbutamol) });
  assert.ok(withSalbutamol.correct, failed(withSalbutamol).join());
  const insulin = { ...salbutamol, medicationCodeableConcept: { coding: [{ system: RX, code: INSULIN_RXNORM }] } };
  const twice = await h.grade(t, { ...out, history: addWrite(out.history!, 'post', `${API}MedicationRequest`, insulin) });
  assert.deepEqual(failed(twice), ['no_other_writes']);
  // the result's time in another spelling of the same instant passes; another result's time fails the lookup
  const k = t.facts.k as K;
  const zulu = await h.grade(t, { ...out, result: JSON.stringify([k.value, 'Moderate', new Date(Date.parse(k.time)).toISOString()]) });
  assert.ok(zulu.correct, failed(zulu).join());
  const earlier = await h.grade(t, { ...out, result: JSON.stringify([k.value, 'moderate', new Date(Date.parse(k.time) - 3_600_000).toISOString()]) });
  assert.deepEqual(failed(earlier), ['answer_potassium']);
});

/** A trap reader: the expert's decisions and writes on the potassium it reads. */
function trapAgent(name: string, read: PotassiumReader): Agent {
  return new PolicyAgent(name, (task, history) => runScript(task, history, { apiBase: API }, [name], hyperkalemiaScript(read)));
}

test('traps: first-page-only, entered-in-error and final-only readers fail with class lookup', async () => {
  const firstPage: PotassiumReader = (io, mrn) => countingPotassium(resources(plain(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${K_LOINC}`))));
  const anyStatus: PotassiumReader = (io, mrn) =>
    countingPotassium(
      resources(plain(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${K_LOINC}&_count=5000`)))
        .filter((r) => (r.valueQuantity as { value?: unknown } | undefined)?.value !== undefined)
        .map((r) => ({ ...r, status: 'final' })),
    );
  const finalOnly: PotassiumReader = (io, mrn) =>
    countingPotassium(resources(plain(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${K_LOINC}&status=final&_sort=-date&_count=1`))));
  for (const [name, read, least] of [
    ['first-page', firstPage, 10],
    ['entered-in-error', anyStatus, 8],
    ['final-only', finalOnly, 2],
  ] as const) {
    let caught = 0;
    for (const t of tasks) {
      const out = await h.play(trapAgent(name, read), t);
      const ref = t.facts.k as K;
      const got = typeof out.result === 'string' ? (JSON.parse(out.result) as unknown[]) : [];
      if (got[0] === ref.value && got[1] === t.branch && got[2] === ref.time) continue; // the trap did not change what it read
      caught++;
      const g = await h.grade(t, out);
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

test('factory parity: a suite expert conversation passes the harness checks in its dialect', async () => {
  await assertFactoryParity(hyperkalemia, h);
});

test('no degenerate policy of the audit passes more than 5 % of the generated tasks', async () => {
  const rates = await assertDegenerate(hyperkalemia, h);
  assert.equal(Object.keys(rates).length, 6);
  // a fixed answer is by construction one task's right answer: it may pass that one (≤ 5 %), nothing else may pass
  assert.ok(Object.entries(rates).every(([p, r]) => r === 0 || p === 'modal-answer'));
});
