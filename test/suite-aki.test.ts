/**
 * The clinical suite's `aki` family (KDIGO 2012 AKI staging, problem-list entry, NSAIDs stopped): generator branch
 * coverage and planted traps, the expert at 100 % (both variants, text and tools), a mutation test per checkpoint,
 * trap readers (first page only, entered-in-error results counted, µmol/L read as mg/dL, a date-level 7-day window)
 * failing, FINISH([]) at zero, factory parity and the audit's degenerate policies.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { aki, akiScript, CR_MGDL_LOINC, CR_UMOL_LOINC, type CrReader, creatinineReadings, kdigo, PEAK_TOLERANCE, WINDOW_MS } from '../src/tasks/suite/aki.js';
import { inLane, resources } from '../src/tasks/suite/kit.js';
import { plain, runScript } from '../src/tasks/common.js';
import { PolicyAgent } from '../src/agent/backends/scripted.js';
import { NOW_MS } from '../src/worlds/clinical.js';
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
const CR_QUERY = (mrn: string) => `Observation?patient=${mrn}&code=${CR_MGDL_LOINC},${CR_UMOL_LOINC}`;

before(async () => {
  h = await suiteHarness(aki);
  tasks = h.tasks;
});

test('generator: every branch, lane 1 only, facts from the record, traps planted, results past the first page', async () => {
  const bb = byBranch(tasks);
  assert.deepEqual([...bb.keys()].sort(), [...aki.branches].sort());
  for (const b of aki.branches) assert.ok(bb.get(b)!.length >= 2, `${b}: ${bb.get(b)!.length}`);
  const only = await aki.generate(h.cw.access, { rng: rngFor('x', 2), patients: h.cw.world.patientIds, branch: 'stage3', count: 2 });
  assert.equal(only.length, 2);
  assert.ok(only.every((t) => t.branch === 'stage3'));
  let pastFirst = 0;
  for (const t of tasks) {
    assert.ok(inLane(h.cw.world.patientIds.indexOf(t.patient!), 1), `${t.task.id}: planted outside lane 1`);
    const all = resources(plain(await h.read(`${CR_QUERY(t.patient!)}&_count=5000`)));
    assert.ok(all.length > 25, 'more results than one page');
    const k = kdigo(creatinineReadings(all));
    assert.equal(k.stage, t.facts.stage);
    assert.equal(k.peak!.value, t.facts.peak);
    // an entered-in-error spike above every standing result, a cancelled result, a high result just before the window
    const eie = all.filter((r) => r.status === 'entered-in-error');
    assert.ok(
      eie.some((r) => ((r.valueQuantity as { value: number }).value as number) > (t.facts.peak as number)),
      `${t.task.id}: no spike`,
    );
    assert.ok(all.some((r) => r.status === 'cancelled'));
    const stale = creatinineReadings(all).filter((r) => r.t <= NOW_MS - WINDOW_MS && r.t >= NOW_MS - WINDOW_MS - 90 * 60_000);
    assert.equal(stale.length, 1, `${t.task.id}: one result just before the window`);
    assert.ok(
      all.some((r) => (r.code as { coding: Array<{ code: string }> }).coding.some((c) => c.code === CR_UMOL_LOINC)),
      'µmol/L results',
    );
    const page1 = (await h.read(CR_QUERY(t.patient!))) as { entry: Array<{ resource: { id: string } }>; link: Array<{ relation: string }> };
    assert.equal(page1.entry.length, 20);
    assert.ok(page1.link.some((l) => l.relation === 'next'));
    if (!page1.entry.some((e) => e.resource.id === t.facts.peakId)) pastFirst++;
    // every task has an active NSAID to stop (or to leave alone)
    assert.ok((t.facts.nsaids as string[]).length >= 1);
  }
  assert.ok(pastFirst >= tasks.length / 2, `decisive peak past the first page in ${pastFirst} of ${tasks.length}`);
});

test('expert: 100 % in both variants (text) and in the tools protocol, every checkpoint passed', async () => {
  await assertExpert(aki, h);
});

test('mutations: breaking one field of the expert action fails exactly that checkpoint', async () => {
  const cond = (a: { url: string }) => a.url.endsWith('Condition');
  const firstPut = () => {
    let n = 0;
    return (a: { kind: string }) => a.kind === 'put' && n++ === 0;
  };
  await assertMutations(
    aki,
    h,
    (t, out) => {
      const hist = out.history!;
      const stage = t.facts.stage as number;
      const peak = t.facts.peak as number;
      const m: Record<string, () => TaskOutput> = {
        answer_peak: () => ({ ...out, result: JSON.stringify([stage, peak + 0.5]) }),
        answer_stage: () => ({ ...out, result: JSON.stringify([(stage + 1) % 4, peak]) }),
        no_writes: () => ({
          ...out,
          history: addWrite(hist, 'post', `${API}Condition`, {
            resourceType: 'Condition',
            code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'N17.9' }] },
            subject: { reference: `Patient/${t.patient}` },
          }),
        }),
        aki_problem: () => ({
          ...out,
          history: editWrite(hist, cond, (b) => (b.code = { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'N17.0' }] })),
        }),
        aki_problem_payload: () => ({
          ...out,
          history: editWrite(
            hist,
            cond,
            (b) => (b.category = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'encounter-diagnosis' }] }]),
          ),
        }),
        nsaids_stopped: () => ({ ...out, history: editWrite(hist, firstPut(), (b) => (b.status = 'on-hold')) }),
        nsaid_only_status: () => ({
          ...out,
          history: editWrite(hist, firstPut(), (b) => {
            b.dosageInstruction = [{ text: 'half dose' }];
          }),
        }),
        no_other_writes: () => ({
          ...out,
          history: addWrite(hist, 'post', `${API}Observation`, {
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: CR_MGDL_LOINC }] },
            subject: { reference: `Patient/${t.patient}` },
            valueQuantity: { value: 1.1, unit: 'mg/dL' },
          }),
        }),
      };
      return m;
    },
    ['answer_peak', 'answer_stage'],
  );
});

/** A trap reader: the expert's decisions and writes on what it reads (`windowStart`: its 7-day window's start). */
function trapAgent(name: string, read: CrReader, windowStart?: number): Agent {
  return new PolicyAgent(name, (task, history) => runScript(task, history, { apiBase: API }, [name], akiScript(read, windowStart)));
}

test('traps: first page only, entered-in-error counted, µmol/L read as mg/dL, a date-level window — each fails where it changes the answer', async () => {
  const full = (io: Parameters<CrReader>[0], mrn: string) => resources(plain(io.get(`${io.apiBase}${CR_QUERY(mrn)}&_count=5000`)));
  const readers: Array<[string, CrReader, number | undefined, number]> = [
    ['first-page', (io, mrn) => creatinineReadings(resources(plain(io.get(`${io.apiBase}${CR_QUERY(mrn)}`)))), undefined, 12],
    ['entered-in-error', (io, mrn) => creatinineReadings(full(io, mrn), { statuses: 'any' }), undefined, tasks.length],
    ['no-conversion', (io, mrn) => creatinineReadings(full(io, mrn), { convert: false }), undefined, 8],
    // `date=ge2023-11-06`: the day, not the instant, seven days back
    ['date-window', (io, mrn) => creatinineReadings(full(io, mrn)), Date.parse('2023-11-06T00:00:00Z'), 12],
  ];
  for (const [name, read, windowStart, least] of readers) {
    let caught = 0;
    for (const t of tasks) {
      const out = await h.play(trapAgent(name, read, windowStart), t);
      const g = await h.grade(t, out);
      const [stage, peak] = JSON.parse(String(out.result)) as [number, number];
      if (stage === t.facts.stage && Math.abs(peak - (t.facts.peak as number)) <= PEAK_TOLERANCE) continue; // the trap did not change what it read
      caught++;
      assert.equal(g.correct, false, `${name} ${t.task.id}`);
      if (Math.abs(peak - (t.facts.peak as number)) > PEAK_TOLERANCE) assert.equal(g.failureClass, 'lookup', `${name} ${t.task.id}: ${failed(g)}`);
    }
    assert.ok(caught >= least, `${name}: ${caught} tasks trapped`);
  }
});

test('careless writes: stopping acetaminophen, or stopping NSAIDs without AKI, fails the task', async () => {
  for (const t of tasks.slice(0, 8)) {
    const out = await h.play(expert, t);
    const meds = resources(plain(await h.read(`MedicationRequest?patient=${t.patient}&status=active&_count=5000`)));
    const apap = meds.find((r) => JSON.stringify(r.medicationCodeableConcept).includes('313782'))!;
    const g = await h.grade(t, { ...out, history: addWrite(out.history!, 'put', `${API}MedicationRequest/${apap.id}`, { ...apap, status: 'stopped' }) });
    assert.equal(g.correct, false, t.task.id);
    assert.deepEqual(failed(g), [t.branch === 'no_aki' ? 'no_writes' : 'no_other_writes']);
  }
});

test('FINISH([]) fails every task (class lookup): no free points', async () => {
  await assertFinishEmptyFails(h);
  const g = await h.grade(tasks[0]!, { ...(await h.play(expert, tasks[0]!)), result: '[]' });
  assert.equal(g.checks.find((c) => !c.pass)!.class, 'lookup');
});

test('factory parity: a suite expert conversation passes the harness checks in its dialect (prompt, PUT, live writes)', async () => {
  await assertFactoryParity(aki, h);
});

test('no degenerate policy of the audit passes more than 5 % of the generated tasks', async () => {
  const { assertDegenerate } = await import('./helpers/suite.js');
  const rates = await assertDegenerate(aki, h);
  assert.equal(Object.keys(rates).length, 6);
});
