/**
 * The clinical suite's `hypoglycemia` family (rule of 15): generator branch coverage and planted traps, the expert at
 * 100 % (both variants, text and tools), a mutation test per checkpoint (break one field of the expert's action →
 * exactly that checkpoint fails), trap readers (no mmol/L conversion, entered-in-error readings, a reader of every
 * glucose code including serum) failing with class `lookup`, and `FINISH([])` failing every task.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { type ClinicalWorld, openClinicalWorld } from '../src/tasks/suite/splits.js';
import {
  countingGlucose,
  GLUCOSE_RXNORM,
  type GlucoseReader,
  type GlucoseReading,
  HYPOGLYCEMIA_CHECKPOINTS,
  type HypoglycemiaBranch,
  hypoglycemia,
  hypoglycemiaScript,
  POC_MGDL_LOINC,
  POC_MMOL_LOINC,
  RECHECK_AT,
  SERUM_GLU_LOINC,
} from '../src/tasks/suite/hypoglycemia.js';
import { plain, runScript } from '../src/tasks/common.js';
import { runEpisode } from '../src/agent/loop.js';
import { runToolsEpisode, directToolEnvironment } from '../src/agent/tools-loop.js';
import { PolicyAgent, finishEmptyAgent } from '../src/agent/backends/scripted.js';
import { expertPolicy } from '../src/agent/create.js';
import { taskDialect } from '../src/protocol/dialect.js';
import { formatAction, parseAction, POST_ACCEPTED, PUT_ACCEPTED } from '../src/protocol/text.js';
import { rngFor } from '../src/worlds/prng.js';
import type { Agent } from '../src/agent/types.js';
import type { GeneratedTask, GradeResult, HistoryItem, TaskOutput } from '../src/tasks/types.js';

let cw: ClinicalWorld;
let tasks: GeneratedTask[];
const API = 'http://localhost:8080/fhir/';
const NOW_MS = Date.parse('2023-11-13T10:15:00+00:00');

before(async () => {
  cw = await openClinicalWorld({ seed: 3, patients: 40 });
  tasks = await hypoglycemia.generate(cw.access, { rng: rngFor('suite-hypoglycemia-test', 1), patients: cw.world.patientIds });
});

async function play(agent: Agent, t: GeneratedTask, protocol: 'text' | 'tools' = 'text'): Promise<TaskOutput> {
  const s = await cw.access.openSession!(`ep-${t.task.id}`);
  try {
    if (protocol === 'text')
      return (await runEpisode({ index: 0, task: t.task, agent, fhir: s.transport, apiBase: API, postMode: 'live', maxRounds: 10 })).output;
    const env = directToolEnvironment({ fhir: s.transport, dialect: taskDialect(t.task) });
    return (await runToolsEpisode({ index: 0, task: t.task, agent, env, apiBase: API, maxRounds: 10 })).output;
  } finally {
    await s.close();
  }
}

const grade = (t: GeneratedTask, o: TaskOutput): Promise<GradeResult> => hypoglycemia.grade(t.task, o, cw.access);
const failed = (g: GradeResult) => g.checks.filter((c) => !c.pass).map((c) => c.name);
const expert = new PolicyAgent('expert', expertPolicy);
const glucoseOf = (t: GeneratedTask) => t.facts.glucose as GlucoseReading;
const label = (t: GeneratedTask) => (t.branch.startsWith('treat') ? 'treat' : 'no-treat');

async function search(query: string): Promise<Array<{ resource: Record<string, unknown> }>> {
  const b = plain(JSON.parse((await cw.access.fhir({ method: 'GET', url: `${API}${query}` })).body)) as {
    entry?: Array<{ resource: Record<string, unknown> }>;
  };
  return b.entry ?? [];
}

test('generator: every branch, facts from the record, the decisive glucose past the first page, traps in place', async () => {
  const byBranch = new Map<string, GeneratedTask[]>();
  for (const t of tasks) byBranch.set(t.branch, [...(byBranch.get(t.branch) ?? []), t]);
  assert.deepEqual([...byBranch.keys()].sort(), [...hypoglycemia.branches].sort());
  for (const b of hypoglycemia.branches) assert.ok(byBranch.get(b)!.length >= 3, `${b}: ${byBranch.get(b)!.length}`);
  const only = await hypoglycemia.generate(cw.access, { rng: rngFor('x', 2), patients: cw.world.patientIds, branch: 'no_treat_decoy', count: 3 });
  assert.equal(only.length, 3);
  assert.ok(only.every((t) => t.branch === 'no_treat_decoy'));
  let mmol = 0;
  let eie = 0;
  let serumNewer = 0;
  let staleLow = 0;
  for (const t of tasks) {
    const g = glucoseOf(t);
    // the branch follows the rule on the converted value
    assert.equal(t.branch.startsWith('treat'), g.mgdl < 70, t.task.id);
    if (t.branch === 'treat_level2') assert.ok(g.mgdl < 54);
    if (t.branch === 'treat_level1') assert.ok(g.mgdl >= 54 && g.mgdl < 70);
    if (g.unit === 'mmol/L') {
      mmol++;
      assert.ok(Math.abs(g.value * 18 - 70) > 1 && Math.abs(g.value * 18.016 - 70) > 1, `${t.task.id}: ${g.value} mmol/L too close to 70 mg/dL`);
    }
    const all = await search(`Observation?patient=${t.patient}&code=${POC_MGDL_LOINC},${POC_MMOL_LOINC}&_count=5000`);
    assert.ok(all.length > 20, 'more results than one page');
    assert.equal(countingGlucose(all)!.id, g.id);
    const page1 = await search(`Observation?patient=${t.patient}&code=${POC_MGDL_LOINC},${POC_MMOL_LOINC}`);
    assert.equal(page1.length, 20);
    assert.ok(!page1.some((e) => e.resource.id === g.id), `${t.task.id}: the decisive result is on the first page`);
    const times = all.map((e) => String(e.resource.effectiveDateTime));
    assert.notDeepEqual(times, [...times].sort());
    // every capillary result newer than the decisive one is a trap (entered-in-error or cancelled)
    const newer = all.filter((e) => String(e.resource.effectiveDateTime) > g.time);
    assert.ok(
      newer.every((e) => e.resource.status === 'entered-in-error' || e.resource.status === 'cancelled'),
      `${t.task.id}: only traps are newer`,
    );
    if (newer.some((e) => e.resource.status === 'entered-in-error')) eie++;
    const serum = await search(`Observation?patient=${t.patient}&code=${SERUM_GLU_LOINC}&_count=5000`);
    if (serum.some((e) => String(e.resource.effectiveDateTime) > g.time)) serumNewer++;
    const win = all.filter((e) => {
      const ms = Date.parse(String(e.resource.effectiveDateTime));
      return ms <= NOW_MS - 30 * 60_000 && ms > NOW_MS - 41 * 60_000 && (e.resource.valueQuantity as { value: number }).value < 70;
    });
    if (win.length > 0) staleLow++;
  }
  assert.ok(mmol >= 8, `mmol/L tasks: ${mmol}`);
  assert.ok(eie >= 4, `entered-in-error traps: ${eie}`);
  assert.ok(serumNewer >= 1, `serum newer than the fingerstick: ${serumNewer}`);
  assert.ok(staleLow >= 1, `a low just outside the window: ${staleLow}`);
});

test('expert: 100 % in both variants (text) and in the tools protocol, every checkpoint passed', async () => {
  for (const t of tasks) {
    for (const variant of hypoglycemia.variants) {
      const agent = new PolicyAgent(variant, (task, history) => hypoglycemia.solve(task, history, { apiBase: API, variant }));
      const out = await play(agent, t);
      const g = await grade(t, out);
      assert.ok(g.correct, `${t.task.id} ${variant}: ${failed(g)} ${g.exception ?? ''}`);
      assert.equal(g.score, 1);
      assert.equal(g.branch, t.branch);
      assert.equal(out.result, JSON.stringify([glucoseOf(t).mgdl, label(t)]).replace(',', ', '));
      assert.deepEqual(
        g.checks.map((c) => c.name),
        HYPOGLYCEMIA_CHECKPOINTS[t.branch as HypoglycemiaBranch],
      );
    }
    const g = await grade(t, await play(expert, t, 'tools'));
    assert.ok(g.correct, `${t.task.id} tools: ${failed(g)}`);
  }
});

/** The expert's history with one agent message's JSON body changed (its reply kept: the write was accepted). */
function editWrite(h: HistoryItem[], match: (a: { kind: string; url: string }) => boolean, edit: (body: Record<string, unknown>) => void): HistoryItem[] {
  let hit = 0;
  const out = h.map((item) => {
    if (item.role !== 'agent') return item;
    const a = parseAction(item.content, { put: true });
    if ((a.kind !== 'post' && a.kind !== 'put') || !match(a)) return item;
    hit++;
    const body = JSON.parse(a.body) as Record<string, unknown>;
    edit(body);
    return { role: 'agent' as const, content: formatAction({ kind: a.kind, url: a.url, body: JSON.stringify(body) }) };
  });
  assert.equal(hit, 1, 'the mutation hits one write');
  return out;
}

/** The expert's history with one accepted write inserted before FINISH. */
function addWrite(h: HistoryItem[], kind: 'post' | 'put', url: string, body: unknown): HistoryItem[] {
  const out = h.slice(0, -1);
  out.push(
    { role: 'agent', content: formatAction({ kind, url, body: JSON.stringify(body) }) },
    { role: 'user', content: kind === 'put' ? PUT_ACCEPTED : POST_ACCEPTED },
  );
  out.push(h[h.length - 1]!);
  return out;
}

test('mutations: breaking one field of the expert action fails exactly that checkpoint', async () => {
  const sr = (a: { url: string }) => a.url.endsWith('ServiceRequest');
  const mr = (a: { kind: string; url: string }) => a.kind === 'post' && a.url.endsWith('MedicationRequest');
  for (const branch of hypoglycemia.branches as readonly HypoglycemiaBranch[]) {
    const t = tasks.find((x) => x.branch === branch)!;
    const out = await play(expert, t);
    const h = out.history!;
    const g0 = glucoseOf(t).mgdl;
    const dose = (b: Record<string, unknown>) =>
      (b.dosageInstruction as Array<{ doseAndRate: Array<{ doseQuantity: Record<string, unknown> }> }>)[0]!.doseAndRate[0]!.doseQuantity;
    const mutations: Record<string, () => TaskOutput> = {
      answer_glucose: () => ({ ...out, result: JSON.stringify([g0 + 2, label(t)]) }),
      answer_decision: () => ({ ...out, result: JSON.stringify([g0, label(t) === 'treat' ? 'no-treat' : 'treat']) }),
      glucose_ordered: () => ({
        ...out,
        history: editWrite(h, mr, (b) => ((b.medicationCodeableConcept as { coding: Array<{ code: string }> }).coding[0]!.code = '8308')),
      }),
      glucose_dose: () => ({ ...out, history: editWrite(h, mr, (b) => (dose(b).value = 25)) }),
      recheck_ordered: () => ({
        ...out,
        history: editWrite(h, sr, (b) => ((b.code as { coding: Array<{ code: string }> }).coding[0]!.code = SERUM_GLU_LOINC)),
      }),
      recheck_15min: () => ({ ...out, history: editWrite(h, sr, (b) => (b.occurrenceDateTime = '2023-11-13T10:45:00+00:00')) }),
      no_other_writes: () => ({
        ...out,
        history: addWrite(h, 'post', `${API}Observation`, {
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: POC_MGDL_LOINC }] },
          subject: { reference: `Patient/${t.patient}` },
          valueQuantity: { value: 90, unit: 'mg/dL' },
        }),
      }),
      no_writes: () => ({
        ...out,
        history: addWrite(h, 'post', `${API}ServiceRequest`, {
          resourceType: 'ServiceRequest',
          status: 'active',
          intent: 'order',
          code: { coding: [{ system: 'http://loinc.org', code: POC_MGDL_LOINC }] },
          subject: { reference: `Patient/${t.patient}` },
          occurrenceDateTime: RECHECK_AT,
        }),
      }),
    };
    for (const name of HYPOGLYCEMIA_CHECKPOINTS[branch]) {
      if (name === 'finished') {
        // no FINISH: the answer is missing too (it is FINISH's argument)
        const g = await grade(t, { ...out, status: 'task limit reached', result: null, history: h.slice(0, -1) });
        assert.deepEqual(failed(g), ['finished', 'answer_glucose', 'answer_decision'], branch);
        assert.equal(g.failureClass, 'budget');
        continue;
      }
      const mutate = mutations[name];
      assert.ok(mutate, `no mutation for ${name}`);
      const g = await grade(t, mutate());
      assert.deepEqual(failed(g), [name], `${branch}: mutating ${name}`);
      const names = HYPOGLYCEMIA_CHECKPOINTS[branch];
      assert.equal(g.score, (names.indexOf(name) - 1) / (names.length - 1), `${branch}: score after mutating ${name}`);
      assert.equal(g.failureClass, g.checks.find((c) => c.name === name)!.class);
      assert.equal(g.correct, false);
    }
  }
});

test('grader accepts the payload alternatives the context allows', async () => {
  const t = tasks.find((x) => x.branch === 'treat_level2')!;
  const out = await play(expert, t);
  const h = out.history!;
  const mr = (a: { kind: string; url: string }) => a.kind === 'post' && a.url.endsWith('MedicationRequest');
  const sr = (a: { url: string }) => a.url.endsWith('ServiceRequest');
  for (const edit of [
    (b: Record<string, unknown>) => {
      const d = (b.dosageInstruction as Array<Record<string, unknown>>)[0]!;
      (d.doseAndRate as Array<{ doseQuantity: Record<string, unknown> }>)[0]!.doseQuantity = { value: 20, unit: 'g' };
      d.route = 'oral';
    },
    (b: Record<string, unknown>) => {
      delete (b.dosageInstruction as Array<Record<string, unknown>>)[0]!.route;
    },
  ]) {
    const g = await grade(t, { ...out, history: editWrite(h, mr, edit) });
    assert.ok(g.correct, failed(g).join());
  }
  for (const at of ['2023-11-13T10:28:00+00:00', '2023-11-13T05:32:00-05:00', '2023-11-13T10:32:00Z']) {
    const g = await grade(t, { ...out, history: editWrite(h, sr, (b) => (b.occurrenceDateTime = at)) });
    assert.ok(g.correct, `${at}: ${failed(g).join()}`);
  }
  for (const at of ['2023-11-13T10:27:00+00:00', '2023-11-13T10:33:00+00:00', '2023-11-13']) {
    const g = await grade(t, { ...out, history: editWrite(h, sr, (b) => (b.occurrenceDateTime = at)) });
    assert.deepEqual(failed(g), ['recheck_15min'], at);
  }
  // wrong oral route, a dose in mg, 10 g: each fails the dose checkpoint
  for (const edit of [
    (b: Record<string, unknown>) => ((b.dosageInstruction as Array<Record<string, unknown>>)[0]!.route = { text: 'Intravenous' }),
    (b: Record<string, unknown>) => {
      (b.dosageInstruction as Array<{ doseAndRate: Array<{ doseQuantity: Record<string, unknown> }> }>)[0]!.doseAndRate[0]!.doseQuantity = {
        value: 15000,
        unit: 'mg',
      };
    },
    (b: Record<string, unknown>) => {
      (b.dosageInstruction as Array<{ doseAndRate: Array<{ doseQuantity: Record<string, unknown> }> }>)[0]!.doseAndRate[0]!.doseQuantity.value = 10;
    },
  ]) {
    const g = await grade(t, { ...out, history: editWrite(h, mr, edit) });
    assert.deepEqual(failed(g), ['glucose_dose']);
  }
  // answers: 18.016 conversion within 1 mg/dL, label case and spaces; a non-JSON answer is a protocol failure
  const g0 = glucoseOf(t);
  const ok = await grade(t, { ...out, result: JSON.stringify([g0.mgdl + 0.9, ' TREAT ']) });
  assert.ok(ok.correct, failed(ok).join());
  const bad = await grade(t, { ...out, result: 'treat' });
  assert.equal(bad.failureClass, 'protocol');
  assert.ok(GLUCOSE_RXNORM === '4850');
});

/** A trap reader: the expert's decisions and writes on the glucose it reads. */
function trapAgent(name: string, read: GlucoseReader): Agent {
  return new PolicyAgent(name, (task, history) => runScript(task, history, { apiBase: API }, [name], hypoglycemiaScript(read)));
}

test('traps: readers that skip the mmol/L conversion, take entered-in-error results or read serum glucose fail with class lookup', async () => {
  const entries = (io: Parameters<GlucoseReader>[0], q: string) =>
    (plain(io.get(`${io.apiBase}${q}`)) as { entry?: Array<{ resource: Record<string, unknown> }> }).entry ?? [];
  const noConversion: GlucoseReader = (io, mrn) =>
    countingGlucose(entries(io, `Observation?patient=${mrn}&code=${POC_MGDL_LOINC},${POC_MMOL_LOINC}&_count=5000`), 1);
  const anyStatus: GlucoseReader = (io, mrn) =>
    countingGlucose(
      entries(io, `Observation?patient=${mrn}&code=${POC_MGDL_LOINC},${POC_MMOL_LOINC}&_count=5000`).map((e) => ({
        resource: { ...e.resource, status: 'final' },
      })),
    );
  const anyGlucose: GlucoseReader = (io, mrn) => countingGlucose(entries(io, `Observation?patient=${mrn}&code=GLU,${POC_MMOL_LOINC}&_count=5000`));
  for (const [name, read, least] of [
    ['no-conversion', noConversion, 8],
    ['entered-in-error', anyStatus, 4],
    ['serum', anyGlucose, 1],
  ] as const) {
    let caught = 0;
    for (const t of tasks) {
      const out = await play(trapAgent(name, read), t);
      const g = await grade(t, out);
      if (g.correct) {
        // the trap did not change what it read
        assert.equal(JSON.parse(String(out.result))[0], glucoseOf(t).mgdl, `${name} ${t.task.id}`);
        continue;
      }
      caught++;
      assert.equal(g.failureClass, 'lookup', `${name} ${t.task.id}: ${failed(g)}`);
    }
    assert.ok(caught >= least, `${name}: ${caught} tasks trapped`);
  }
});

test('FINISH([]) fails every task (class lookup): no free points', async () => {
  for (const t of tasks) {
    const g = await grade(t, await play(finishEmptyAgent(), t));
    assert.equal(g.correct, false, t.task.id);
    assert.equal(g.failureClass, 'lookup');
    assert.equal(g.score, 0, `${t.task.id}: partial credit for doing nothing`);
  }
});

test('always acting blindly fails every task: the answer is missing, and no-treat tasks get writes', async () => {
  const act = hypoglycemia.audit!.alwaysAct!;
  const agent = new PolicyAgent('always-act', (task, history) => act(task, history, { apiBase: API }));
  for (const t of tasks) {
    const g = await grade(t, await play(agent, t));
    assert.equal(g.correct, false, t.task.id);
    assert.equal(g.failureClass, 'lookup');
  }
});
