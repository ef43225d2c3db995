/**
 * `vitals` (bedside vital signs charted in FHIR R4 form with a two-identifier check): generator branch coverage and
 * planted traps, the expert at 100 % (both variants, text and tools), a mutation test per checkpoint (break one field
 * of the expert's action → exactly that checkpoint fails), trap readers (a name-and-DOB patient search landing on the
 * near-duplicate, a first-page-only reader, a reader that counts entered-in-error or other-day sets) failing with class
 * `lookup`, a reader that skips the identity check failing with class `decision`, and `FINISH([])` failing every task.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { ClinicalWorld } from '../src/tasks/suite/splits.js';
import { API, expert, failed, type SuiteHarness, suiteHarness } from './helpers/suite.js';
import {
  codeReader,
  HR_LOINC,
  identityMatches,
  panelsAt,
  patientName,
  previousBp,
  readOut,
  RR_LOINC,
  VITALS_CHECKPOINTS,
  type VitalsBranch,
  type VitalsReader,
  vitals,
  vitalsObservations,
  vitalsScript,
} from '../src/tasks/suite/vitals.js';
import { BP_LOINC } from '../src/worlds/catalog.js';
import { plain, runScript } from '../src/tasks/common.js';
import { PolicyAgent, finishEmptyAgent } from '../src/agent/backends/scripted.js';
import { formatAction, parseAction, POST_ACCEPTED } from '../src/protocol/text.js';
import { rngFor } from '../src/worlds/prng.js';
import type { Agent } from '../src/agent/types.js';
import type { GeneratedTask, GradeResult, HistoryItem, TaskOutput } from '../src/tasks/types.js';

let h: SuiteHarness;
let cw: ClinicalWorld;
let tasks: GeneratedTask[];
const BP_LOINC_CODE = BP_LOINC.code;

before(async () => {
  h = await suiteHarness(vitals);
  ({ cw, tasks } = h);
});

const play = (agent: Agent, t: GeneratedTask, protocol: 'text' | 'tools' = 'text'): Promise<TaskOutput> => h.play(agent, t, protocol);
const grade = (t: GeneratedTask, o: TaskOutput): Promise<GradeResult> => h.grade(t, o);
const getJson = (path: string) => h.read(path);
const entries = (b: Record<string, unknown>) => ((b.entry as Array<{ resource: Record<string, unknown> }> | undefined) ?? []).map((e) => e.resource);

test('generator: every branch, the read-out matches the record as the branch says, duplicates past the first page, decoys on chart', async () => {
  const byBranch = new Map<string, GeneratedTask[]>();
  for (const t of tasks) byBranch.set(t.branch, [...(byBranch.get(t.branch) ?? []), t]);
  assert.deepEqual([...byBranch.keys()].sort(), [...vitals.branches].sort());
  for (const b of vitals.branches) assert.ok(byBranch.get(b)!.length >= 5, `${b}: ${byBranch.get(b)!.length}`);
  const only = await vitals.generate(cw.access, { rng: rngFor('x', 2), patients: cw.world.patientIds, branch: 'identity_mismatch', count: 3 });
  assert.equal(only.length, 3);
  assert.ok(only.every((t) => t.branch === 'identity_mismatch'));
  let offFirstPage = 0;
  let eie = 0;
  let yesterday = 0;
  for (const t of tasks) {
    const r = readOut(t.task);
    assert.equal(r.mrn, t.patient);
    const p = entries(await getJson(`Patient?identifier=${r.mrn}`))[0]!;
    assert.equal(identityMatches(p, r.name, r.dob), t.branch !== 'identity_mismatch', t.task.id);
    if (t.branch === 'identity_mismatch') {
      // the read-out's name and DOB are another patient's: a near-duplicate with another MRN
      const other = entries(await getJson(`Patient?birthdate=${r.dob}`)).find((q) => patientName(q).toLowerCase() === r.name.toLowerCase());
      assert.ok(other && other.id !== p.id, `${t.task.id}: the named patient exists under another MRN`);
      continue;
    }
    const all = await getJson(`Observation?patient=${t.patient}&code=${BP_LOINC_CODE}&_count=5000`);
    assert.ok(entries(all).length > 20, 'more BP panels than one page');
    const { same } = panelsAt(all, r.set);
    assert.equal(same.length, t.branch === 'already_charted' ? 1 : 0, t.task.id);
    // the BP before the set: a standing panel of the record, the one the facts name
    const prev = previousBp(all, r.set);
    assert.ok(prev.length >= 1, t.task.id);
    assert.equal(t.facts.previousBp, prev[0], t.task.id);
    if (t.branch === 'already_charted') {
      const page1 = await getJson(`Observation?patient=${t.patient}&code=${BP_LOINC_CODE}`);
      assert.equal(entries(page1).length, 20);
      if (!entries(page1).some((e) => e.id === same[0]!.id)) offFirstPage++;
    } else {
      const atTime = entries(all).filter((e) => Date.parse(String(e.effectiveDateTime)) === Date.parse(r.set.time));
      if (atTime.some((e) => e.status === 'entered-in-error')) eie++;
      if (entries(all).some((e) => Date.parse(String(e.effectiveDateTime)) === Date.parse(r.set.time) - 86_400_000)) yesterday++;
    }
  }
  assert.ok(offFirstPage >= 5, `duplicates past the first page: ${offFirstPage}`);
  assert.ok(eie >= 2 && yesterday >= 2, `decoys: entered-in-error ${eie}, a day earlier ${yesterday}`);
});

test('expert: 100 % in every variant (text) and in the tools protocol, every checkpoint passed', async () => {
  // a whole-history vitals search returns hundreds of panels: the day-window variant plays every task, the other two
  // and the tools protocol every other one (each branch is still covered by all)
  for (const [i, t] of tasks.entries()) {
    for (const variant of i % 2 === 0 ? vitals.variants : ['window']) {
      const agent = new PolicyAgent(variant, (task, history) => vitals.solve(task, history, { apiBase: API, variant }));
      const g = await grade(t, await play(agent, t));
      assert.ok(g.correct, `${t.task.id} ${variant}: ${failed(g)} ${g.exception ?? ''}`);
      assert.equal(g.score, 1);
      assert.equal(g.branch, t.branch);
      assert.deepEqual(
        g.checks.map((c) => c.name),
        VITALS_CHECKPOINTS[t.branch as VitalsBranch],
      );
    }
    if (i % 2 !== 0) continue;
    const g = await grade(t, await play(expert, t, 'tools'));
    assert.ok(g.correct, `${t.task.id} tools: ${failed(g)}`);
  }
});

/** The expert's history with one written Observation's JSON body changed (its reply kept: the write was accepted). */
function editObs(h: HistoryItem[], code: string, edit: (body: Record<string, unknown>) => void): HistoryItem[] {
  let hit = 0;
  const out = h.map((item) => {
    if (item.role !== 'agent') return item;
    const a = parseAction(item.content, { put: true });
    if (a.kind !== 'post') return item;
    const body = JSON.parse(a.body) as { code: { coding: Array<{ code: string }> } } & Record<string, unknown>;
    if (body.code.coding[0]!.code !== code) return item;
    hit++;
    edit(body);
    return { role: 'agent' as const, content: formatAction({ kind: 'post', url: a.url, body: JSON.stringify(body) }) };
  });
  assert.equal(hit, 1, 'the mutation hits one write');
  return out;
}

/** The expert's history with one accepted write inserted before FINISH. */
function addWrite(h: HistoryItem[], body: unknown): HistoryItem[] {
  const out = h.slice(0, -1);
  out.push(
    { role: 'agent', content: formatAction({ kind: 'post', url: `${API}Observation`, body: JSON.stringify(body) }) },
    { role: 'user', content: POST_ACCEPTED },
  );
  out.push(h[h.length - 1]!);
  return out;
}

test('mutations: breaking one field of the expert action fails exactly that checkpoint', async () => {
  const other = cw.world.patientIds[0]!;
  for (const branch of vitals.branches as readonly VitalsBranch[]) {
    const t = tasks.find((x) => x.branch === branch)!;
    const out = await play(expert, t);
    const h = out.history!;
    const pid = String(t.facts.patientId);
    const r = readOut(t.task);
    const prev = branch === 'identity_mismatch' ? null : String(t.facts.previousBp);
    const answer = (label: string, id: unknown = pid, bp: unknown = prev) => ({ ...out, result: JSON.stringify([label, id, bp]) });
    const hrObs = {
      resourceType: 'Observation',
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
      code: { coding: [{ system: 'http://loinc.org', code: HR_LOINC }] },
      subject: { reference: `Patient/${pid}` },
      effectiveDateTime: r.set.time,
      valueQuantity: { value: r.set.hr, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
    };
    const mutations: Record<string, () => TaskOutput> = {
      answer: () => answer(branch === 'chart' ? 'charted' : branch === 'identity_mismatch' ? 'identity-mismatch' : 'already-charted', other),
      identity_check: () => answer(branch === 'identity_mismatch' ? 'charted' : 'identity-mismatch'),
      duplicate_check: () => answer(branch === 'chart' ? 'already-charted' : 'charted'),
      previous_bp: () => answer(branch === 'chart' ? 'charted' : 'already-charted', pid, `${r.set.sys}/${r.set.dia}`),
      no_writes: () => ({ ...out, history: addWrite(h, hrObs) }),
      vitals_charted: () => ({ ...out, history: editObs(h, HR_LOINC, (b) => ((b.code as { coding: Array<{ code: string }> }).coding[0]!.code = '8889-8')) }),
      status_final: () => ({ ...out, history: editObs(h, RR_LOINC, (b) => (b.status = 'preliminary')) }),
      category_vital_signs: () => ({
        ...out,
        history: editObs(h, HR_LOINC, (b) => ((b.category as Array<{ coding: Array<{ code: string }> }>)[0]!.coding[0]!.code = 'laboratory')),
      }),
      loinc_codes: () => ({
        ...out,
        history: editObs(h, RR_LOINC, (b) => ((b.code as { coding: Array<{ system: string }> }).coding[0]!.system = 'http://example.org/local')),
      }),
      subject: () => ({ ...out, history: editObs(h, '8310-5', (b) => (b.subject = { reference: `Patient/${other}` })) }),
      effective_time: () => ({ ...out, history: editObs(h, '2708-6', (b) => (b.effectiveDateTime = '2023-11-13T10:15:00+00:00')) }),
      bp_panel_structure: () => ({ ...out, history: editObs(h, BP_LOINC_CODE, (b) => (b.valueString = `${r.set.sys}/${r.set.dia} mmHg`)) }),
      ucum_units: () => ({ ...out, history: editObs(h, HR_LOINC, (b) => ((b.valueQuantity as { code: string }).code = 'beats/min')) }),
      values: () => ({ ...out, history: editObs(h, '8310-5', (b) => ((b.valueQuantity as { value: number }).value = r.set.tempF + 1)) }),
      no_other_writes: () => ({ ...out, history: addWrite(h, hrObs) }),
    };
    for (const name of VITALS_CHECKPOINTS[branch]) {
      if (name === 'finished') {
        // no FINISH: the answer is missing too (it is FINISH's argument); the outcome checks judge an empty label
        const g = await grade(t, { ...out, status: 'task limit reached', result: null, history: h.slice(0, -1) });
        assert.equal(failed(g)[0], 'finished', branch);
        assert.ok(failed(g).includes('answer'), branch);
        assert.equal(g.failureClass, 'budget');
        assert.equal(g.score, 0);
        continue;
      }
      const mutate = mutations[name];
      assert.ok(mutate, `no mutation for ${name}`);
      const g = await grade(t, mutate());
      assert.deepEqual(failed(g), [name], `${branch}: mutating ${name}`);
      const names = VITALS_CHECKPOINTS[branch];
      assert.equal(g.score, (names.indexOf(name) - 1) / (names.length - 1), `${branch}: score after mutating ${name}`);
      assert.equal(g.failureClass, g.checks.find((c) => c.name === name)!.class);
      assert.equal(g.correct, false);
    }
  }
  // the temperature in Cel, converted and rounded to one decimal, is as good as °F
  const t = tasks.find((x) => x.branch === 'chart')!;
  const out = await play(expert, t);
  const r = readOut(t.task);
  const cel = editObs(
    out.history!,
    '8310-5',
    (b) => (b.valueQuantity = { value: Math.round((((r.set.tempF - 32) * 5) / 9) * 10) / 10, unit: 'C', system: 'http://unitsofmeasure.org', code: 'Cel' }),
  );
  assert.ok((await grade(t, { ...out, history: cel })).correct);
  // two separate systolic and diastolic Observations instead of the panel fail the panel structure (payload)
  const split = editObs(out.history!, BP_LOINC_CODE, (b) => {
    (b.code as { coding: Array<{ code: string }> }).coding[0]!.code = '8480-6';
    delete b.component;
    b.valueQuantity = { value: r.set.sys, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' };
  });
  const g = await grade(t, { ...out, history: split });
  assert.equal(g.correct, false);
  assert.equal(g.failureClass, 'payload', `${failed(g)}`);
  assert.ok(failed(g).includes('bp_panel_structure'), `${failed(g)}`);
});

/** A trap reader: the expert's checks and writes with another way of finding the patient or the charted set. */
function trapAgent(name: string, reader: VitalsReader): Agent {
  return new PolicyAgent(name, (task, history) => runScript(task, history, { apiBase: API }, [name], vitalsScript(reader)));
}

test('traps: a name-and-DOB patient search, a first-page reader, entered-in-error and other-day readers fail with class lookup', async () => {
  const sameSet = (e: Record<string, unknown>, r: ReturnType<typeof readOut>) => {
    const comp = (code: string) =>
      ((e.component as Array<{ code: { coding: Array<{ code: string }> }; valueQuantity: { value: number } }> | undefined) ?? []).find(
        (c) => c.code.coding[0]!.code === code,
      )?.valueQuantity.value;
    return comp('8480-6') === r.set.sys && comp('8462-4') === r.set.dia;
  };
  const readers: Array<[string, VitalsReader, number]> = [
    [
      // finds the patient by the read-out's name and birth date (lands on the near-duplicate when the MRN is another's)
      'name-search',
      {
        patient: (io, r) =>
          ((plain(io.get(`${io.apiBase}Patient?birthdate=${r.dob}`)) as { entry?: Array<{ resource: Record<string, unknown> }> }).entry ?? [])
            .map((e) => e.resource)
            .find((p) => patientName(p).toLowerCase() === r.name.toLowerCase()) ?? null,
        panels: codeReader.panels,
      },
      5,
    ],
    [
      'first-page',
      {
        patient: codeReader.patient,
        panels: (io, id) => io.json(`${io.apiBase}Observation?patient=${id}&code=${BP_LOINC_CODE}`),
      },
      5,
    ],
    [
      'any-status',
      {
        patient: codeReader.patient,
        panels: (io, id) => {
          const b = plain(io.get(`${io.apiBase}Observation?patient=${id}&code=${BP_LOINC_CODE}&_count=5000`)) as {
            entry?: Array<{ resource: Record<string, unknown> }>;
          };
          return { entry: (b.entry ?? []).map((e) => ({ resource: { ...e.resource, status: 'final' } })) };
        },
      },
      2,
    ],
    [
      'any-day',
      {
        patient: codeReader.patient,
        // the same values on any day count as the set: such panels read as if taken at the set's minute
        panels: (io, id, r) => {
          const b = plain(io.get(`${io.apiBase}Observation?patient=${id}&code=${BP_LOINC_CODE}&_count=5000`)) as {
            entry?: Array<{ resource: Record<string, unknown> }>;
          };
          return {
            entry: (b.entry ?? []).map((e) => ({ resource: sameSet(e.resource, r) ? { ...e.resource, effectiveDateTime: r.set.time } : e.resource })),
          };
        },
      },
      2,
    ],
  ];
  for (const [name, reader, least] of readers) {
    let caught = 0;
    for (const t of tasks) {
      const out = await play(trapAgent(name, reader), t);
      const g = await grade(t, out);
      if (g.correct) continue; // the trap did not change what it found
      caught++;
      assert.equal(g.failureClass, 'lookup', `${name} ${t.task.id}: ${failed(g)}`);
    }
    assert.ok(caught >= least, `${name}: ${caught} tasks trapped`);
  }
  // skipping the two-identifier check charts (or reports) for the MRN's patient: a wrong decision
  const noCheck: VitalsReader = { ...codeReader, matches: () => true };
  let mismatches = 0;
  for (const t of tasks.filter((x) => x.branch === 'identity_mismatch')) {
    const g = await grade(t, await play(trapAgent('no-identity-check', noCheck), t));
    assert.equal(g.correct, false, t.task.id);
    assert.equal(g.failureClass, 'decision', `${t.task.id}: ${failed(g)}`);
    mismatches++;
  }
  assert.ok(mismatches >= 5);
});

test('charting blind passes nothing: the read-out written for the MRN as given, answered "charted" with a guessed previous BP', async () => {
  // without reading the record, the only BP values at hand are the read-out's own; null is the other guess
  for (const guess of ['own', 'null'] as const) {
    const blind = new PolicyAgent(`blind-${guess}`, (task, history) =>
      runScript(task, history, { apiBase: API }, ['blind'], (io, tk) => {
        const r = readOut(tk);
        for (const o of vitalsObservations(r.mrn, r.set)) io.post(`${io.apiBase}Observation`, o);
        io.finish(['charted', r.mrn, guess === 'own' ? `${r.set.sys}/${r.set.dia}` : null]);
      }),
    );
    for (const t of tasks) {
      const g = await grade(t, await play(blind, t));
      assert.equal(g.correct, false, `${guess} ${t.task.id}`);
      if (t.branch === 'chart') assert.deepEqual(failed(g), ['previous_bp'], `${guess} ${t.task.id}`);
    }
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

test('paraphrases read back: placeholders round-trip through every paraphrase', () => {
  const t = tasks[0]!;
  const values = vitals.placeholders(t.task)!;
  for (const p of vitals.paraphrases) {
    const instruction = p.replace(/\{([A-Z]+)\}/g, (m, k: string) => values[k] ?? m);
    assert.deepEqual(readOut({ ...t.task, instruction }), readOut(t.task));
  }
});
