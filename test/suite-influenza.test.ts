/**
 * The clinical suite's `influenza` family (ACIP 2023–24 seasonal influenza vaccine): generator branch coverage and
 * planted traps, the expert at 100 % (both variants, text and tools), a mutation per checkpoint, trap readers (first
 * page only, entered-in-error / not-done records taken as doses, last season's June dose taken for this season's, an
 * egg allergy taken as a reason to skip) failing with their class, FINISH([]) at zero, factory parity and the audit's
 * degenerate policies.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { ACCEPTED, countingFluDoses, CVX, type ImmunizationReader, influenza, influenzaScript, scanImmunizations } from '../src/tasks/suite/influenza.js';
import { runScript } from '../src/tasks/common.js';
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
  h = await suiteHarness(influenza);
  tasks = h.tasks;
});

type Imm = Record<string, unknown> & { id: string; status: string; occurrenceDateTime: string };
const immunizations = async (mrn: string, query = '&_count=5000') => resources(await h.read(`Immunization?patient=${mrn}${query}`)) as Imm[];

test('generator: every branch, facts from the record, the decisive dose past the first page, traps planted', async () => {
  const bb = byBranch(tasks);
  assert.deepEqual([...bb.keys()].sort(), [...influenza.branches].sort());
  for (const b of influenza.branches) assert.ok(bb.get(b)!.length >= 3, `${b}: ${bb.get(b)!.length}`);
  const only = await influenza.generate(h.cw.access, { rng: rngFor('x', 2), patients: h.cw.world.patientIds, branch: 'up_to_date', count: 2 });
  assert.equal(only.length, 2);
  assert.ok(only.every((t) => t.branch === 'up_to_date'));
  const traps = { eie: 0, declined: 0, june: 0, egg: 0, pharmacy: 0 };
  for (const t of tasks) {
    const all = await immunizations(t.patient!);
    assert.ok(all.length >= 25, `${t.task.id}: ${all.length} Immunizations`);
    const page1 = await h.read(`Immunization?patient=${t.patient}`);
    const ids = resources(page1).map((r) => r.id);
    assert.equal(ids.length, 20);
    const decisive = (t.facts.season ?? t.facts.last) as { id: string; date: string };
    assert.ok(!ids.includes(decisive.id), `${t.task.id}: the decisive dose is on the first page`);
    const times = all.map((r) => r.occurrenceDateTime);
    assert.notDeepEqual(times, [...times].sort(), 'server order is not date order');
    const d = countingFluDoses(all);
    assert.equal(t.facts.date, t.branch === 'up_to_date' ? d.season!.date : d.last!.date);
    const season = all.filter((r) => r.occurrenceDateTime >= '2023-07-01');
    if (season.some((r) => r.status === 'entered-in-error')) traps.eie++;
    if (season.some((r) => r.status === 'not-done')) traps.declined++;
    if (t.branch !== 'up_to_date' && d.last!.date.startsWith('2023-06')) traps.june++;
    if (t.branch === 'up_to_date' && all.find((r) => r.id === d.season!.id)!.primarySource === false) traps.pharmacy++;
    const allergies = resources(await h.read(`AllergyIntolerance?patient=${t.patient}&code=91930004`));
    if (allergies.length && t.branch !== 'up_to_date') traps.egg++;
    // ages decide the product
    const age = t.facts.age as number;
    if (t.branch === 'give_65_plus') assert.ok(age >= 65);
    if (t.branch === 'give_18_to_64') assert.ok(age >= 18 && age < 65);
  }
  for (const [k, n] of Object.entries(traps)) assert.ok(n >= 2, `${k} traps: ${n}`);
});

test('expert: 100 % in both variants (text) and in the tools protocol, every checkpoint passed', async () => {
  await assertExpert(influenza, h);
});

test('mutations: breaking one field of the expert action fails exactly that checkpoint', async () => {
  const imm = (a: { kind: string; url: string }) => a.kind === 'post' && a.url.endsWith('Immunization');
  const setCode = (b: Record<string, unknown>, code: string) => ((b.vaccineCode as { coding: Array<{ code: string }> }).coding[0]!.code = code);
  const dose = (b: Record<string, unknown>) => b.doseQuantity as { value: number };
  await assertMutations(
    influenza,
    h,
    (t, out) => {
      const hist = out.history!;
      const answer = JSON.parse(String(out.result)) as [string, string];
      const tdap = {
        resourceType: 'Immunization',
        status: 'completed',
        vaccineCode: { coding: [{ system: CVX, code: '115', display: 'Tdap' }] },
        patient: { reference: `Patient/${t.patient}` },
        occurrenceDateTime: '2023-11-13T10:15:00+00:00',
      };
      const m: Record<string, () => TaskOutput> = {
        answer_date: () => ({ ...out, result: JSON.stringify([answer[0], '2019-01-01']) }),
        answer_outcome: () => ({ ...out, result: JSON.stringify([answer[0] === 'vaccinated' ? 'up-to-date' : 'vaccinated', answer[1]]) }),
        vaccine_given: () => ({ ...out, history: editWrite(hist, imm, (b) => (b.status = 'not-done')) }),
        product_for_age: () => ({
          ...out,
          history: editWrite(hist, imm, (b) => {
            // a wrong product for the age with its own volume: ≥ 65 standard dose, 18–64 the adjuvanted (≥ 65 only)
            setCode(b, t.branch === 'give_65_plus' ? '150' : '205');
            dose(b).value = 0.5;
          }),
        }),
        dose_volume: () => ({ ...out, history: editWrite(hist, imm, (b) => (dose(b).value = t.branch === 'give_65_plus' ? 0.5 : 0.25)) }),
        immunization_payload: () => ({ ...out, history: editWrite(hist, imm, (b) => (b.occurrenceDateTime = '2023-11-10T10:15:00+00:00')) }),
        no_other_writes: () => ({ ...out, history: addWrite(hist, 'post', `${API}Immunization`, tdap) }),
        no_second_dose: () => ({
          ...out,
          history: addWrite(hist, 'post', `${API}Immunization`, { ...tdap, vaccineCode: { coding: [{ system: CVX, code: '197' }] } }),
        }),
      };
      return m;
    },
    ['answer_date', 'answer_outcome'],
  );
});

/** A trap agent: the expert's decisions and write on what `read` returns (and `seasonStart`). */
function trapAgent(name: string, read: ImmunizationReader, seasonStart?: number): Agent {
  return new PolicyAgent(name, (task, history) => runScript(task, history, { apiBase: API }, [name], influenzaScript(read, seasonStart)));
}

test('traps: first page only and not-done / entered-in-error taken as doses fail with class lookup; the June dose taken for this season fails the decision', async () => {
  const firstPage: ImmunizationReader = (io, mrn) => resources(io.get(`${io.apiBase}Immunization?patient=${mrn}`));
  const anyStatus: ImmunizationReader = (io, mrn) => scanImmunizations(io, mrn).map((r) => ({ ...r, status: 'completed' }));
  for (const [name, agent, cls, least] of [
    ['first-page', trapAgent('first-page', firstPage), 'lookup', 8],
    ['any-status', trapAgent('any-status', anyStatus), 'lookup', 4],
    ['calendar-year', trapAgent('calendar-year', scanImmunizations, Date.parse('2023-01-01T00:00:00Z')), 'decision', 2],
  ] as const) {
    let caught = 0;
    for (const t of tasks) {
      const out = await h.play(agent, t);
      const g = await h.grade(t, out);
      if (g.correct) continue; // the trap did not change what it read
      caught++;
      assert.equal(g.failureClass, cls, `${name} ${t.task.id}: ${failed(g)}`);
    }
    assert.ok(caught >= least, `${name}: ${caught} tasks trapped`);
  }
});

test('traps: skipping the vaccine for an egg allergy fails the decision', async () => {
  const eggSkipper = new PolicyAgent('egg-skipper', (task, history) =>
    runScript(task, history, { apiBase: API }, ['egg-skipper'], (io, tk) => {
      const mrn = tk.eval_MRN!;
      const egg = resources(io.get(`${io.apiBase}AllergyIntolerance?patient=${mrn}&code=91930004`)).length > 0;
      if (!egg) return influenzaScript(scanImmunizations)(io, tk);
      const d = countingFluDoses(scanImmunizations(io, mrn));
      io.finish(d.season ? ['up-to-date', d.season.date] : ['deferred', d.last?.date ?? 'none']);
    }),
  );
  let caught = 0;
  for (const t of tasks) {
    const g = await h.grade(t, await h.play(eggSkipper, t));
    if (t.branch === 'up_to_date') continue;
    const egg = resources(await h.read(`AllergyIntolerance?patient=${t.patient}&code=91930004`)).length > 0;
    assert.equal(g.correct, !egg, t.task.id);
    if (egg) {
      caught++;
      assert.deepEqual(failed(g), ['vaccine_given', 'product_for_age', 'dose_volume', 'immunization_payload', 'answer_outcome']);
      assert.equal(g.failureClass, 'decision');
    }
  }
  assert.ok(caught >= 2, `egg allergy: ${caught} tasks trapped`);
});

test('products: each branch accepts its own and refuses the other age group’s licensed-for-65 products', () => {
  assert.ok(ACCEPTED.give_65_plus.includes('197') && !ACCEPTED.give_65_plus.includes('150'));
  assert.ok(!ACCEPTED.give_18_to_64.includes('197') && !ACCEPTED.give_18_to_64.includes('205'));
});

test('FINISH([]) fails every task (class lookup): no free points', async () => {
  await assertFinishEmptyFails(h);
  const g = await h.grade(tasks[0]!, { ...(await h.play(expert, tasks[0]!)), result: '[]' });
  assert.equal(g.checks.find((c) => !c.pass)!.class, 'lookup');
});

test('factory parity: a suite expert conversation passes the harness checks in its dialect', async () => {
  await assertFactoryParity(influenza, h);
});

test('no degenerate policy of the audit passes more than 5 % of the generated tasks', async () => {
  const rates = await assertDegenerate(influenza, h);
  assert.equal(Object.keys(rates).length, 6);
});
