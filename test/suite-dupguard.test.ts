/**
 * The `dupguard` family (STOPP v3 A3, no duplicate drug class for daily regular use): generator branch coverage and
 * planted traps, the expert at 100 % (both variants, text and tools), a mutation per checkpoint, trap readers (first
 * page only, status-blind, PRN-blind) failing, FINISH([]) at zero, factory parity and the audit's degenerate policies.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  CLASSES,
  type ClassId,
  dupScript,
  dupSubject,
  dupguard,
  inRegularUse,
  type MedReader,
  orderPayload,
  PLANTED_REQUESTER,
  readClass,
} from '../src/tasks/suite/dupguard.js';
import { plain, runScript } from '../src/tasks/common.js';
import { resources } from '../src/tasks/suite/kit.js';
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
  h = await suiteHarness(dupguard, { patients: 80 });
  tasks = h.tasks;
});

const medsOf = async (mrn: string) => resources(await h.read(`MedicationRequest?patient=${mrn}&_count=5000`));

test('generator: both branches, one task per (patient, class), facts from the record, decisive records past the first page, traps planted', async () => {
  const by = byBranch(tasks);
  assert.deepEqual([...by.keys()].sort(), [...dupguard.branches].sort());
  for (const b of dupguard.branches) assert.ok(by.get(b)!.length >= 8, `${b}: ${by.get(b)!.length}`);
  assert.equal(new Set(tasks.map((t) => `${t.patient}|${t.facts.cls}`)).size, tasks.length);
  const only = await dupguard.generate(h.cw.access, { rng: rngFor('x', 2), patients: h.cw.world.patientIds, branch: 'no_duplicate', count: 3 });
  assert.equal(only.length, 3);
  assert.ok(only.every((t) => t.branch === 'no_duplicate'));
  let newerNonCounting = 0;
  let eieOfOrder = 0;
  let prn = 0;
  let thiazide = 0;
  for (const t of tasks) {
    const cls = t.facts.cls as ClassId;
    assert.ok((t.facts.age as number) >= 65);
    assert.deepEqual(dupSubject(t.task), { mrn: t.patient, cls });
    const all = await medsOf(t.patient!);
    assert.ok(all.length > 25, 'more orders than one page');
    const c = readClass(all, cls);
    assert.deepEqual(c.counting, t.facts.counting);
    assert.deepEqual(c.latestOther, t.facts.latestOther);
    const page1 = resources(await h.read(`MedicationRequest?patient=${t.patient}`));
    assert.equal(page1.length, 20);
    const decisive = (t.branch === 'duplicate' ? t.facts.counting : t.facts.latestOther) as string[];
    assert.ok(!page1.some((r) => decisive.includes(String(r.id))), `${t.task.id}: a decisive record is on the first page`);
    const codes = CLASSES[cls].members.map((m) => m.code);
    const same = all.filter((r) => (r.medicationCodeableConcept as { coding: Array<{ code: string }> }).coding.some((x) => codes.includes(x.code)));
    const planted = same.filter((r) => (r.requester as { display?: string } | undefined)?.display === PLANTED_REQUESTER);
    assert.ok(planted.length >= 2, `${t.task.id}: planted history`);
    if (t.branch === 'duplicate') {
      const first = Math.min(...same.filter(inRegularUse).map((r) => Date.parse(String(r.authoredOn))));
      if (same.some((r) => !inRegularUse(r) && Date.parse(String(r.authoredOn)) > first)) newerNonCounting++;
    } else {
      const order = CLASSES[cls].order.code;
      if (same.some((r) => r.status === 'entered-in-error' && (r.medicationCodeableConcept as { coding: Array<{ code: string }> }).coding[0]!.code === order))
        eieOfOrder++;
      if (same.some((r) => r.status === 'active' && (r.dosageInstruction as Array<{ asNeededBoolean?: boolean }>)[0]!.asNeededBoolean === true)) prn++;
      if (
        cls === 'loop' &&
        all.some((r) => r.status === 'active' && (r.medicationCodeableConcept as { coding: Array<{ code: string }> }).coding[0]!.code === '310798')
      )
        thiazide++;
    }
  }
  assert.ok(newerNonCounting >= 3, `newer non-counting records above a counting one: ${newerNonCounting}`);
  assert.ok(eieOfOrder >= 1, `entered-in-error orders of the requested drug: ${eieOfOrder}`);
  assert.ok(prn >= 1, `active PRN loop diuretics: ${prn}`);
  assert.ok(thiazide >= 1, `active thiazides beside a loop-diuretic history: ${thiazide}`);
});

test('a potassium contraindication to the order (ACE inhibitor above 5.0, loop diuretic below 3.5 mmol/L) serves no task', async () => {
  const { readPatientFacts, potassiumExclusion } = await import('../src/tasks/suite/dupguard.js');
  assert.equal(potassiumExclusion('ace', 5.1), 'potassium 5.1 mmol/L above 5');
  assert.equal(potassiumExclusion('ace', 5.0), null);
  assert.equal(potassiumExclusion('loop', 3.4), 'potassium 3.4 mmol/L below 3.5');
  assert.equal(potassiumExclusion('statin', 6.2), null);
  let excluded = 0;
  for (const mrn of h.cw.world.patientIds) {
    for (const f of Object.values(await readPatientFacts(h.cw.access, mrn))) {
      if (!f.excluded) continue;
      excluded++;
      assert.equal(f.branch, null);
      assert.equal(f.counting.length, 0, 'a duplicate is reported whatever the potassium');
      assert.ok(!tasks.some((t) => t.patient === mrn && t.facts.cls === f.cls));
    }
  }
  assert.ok(excluded >= 2, `excluded: ${excluded}`);
});

test('expert: 100 % in both variants (text) and in the tools protocol, every checkpoint passed', async () => {
  await assertExpert(dupguard, h);
});

test('mutations: breaking one field of the expert action fails exactly that checkpoint', async () => {
  const mr = (a: { kind: string; url: string }) => a.kind === 'post' && a.url.endsWith('MedicationRequest');
  await assertMutations(
    dupguard,
    h,
    (t, out) => {
      const hist = out.history!;
      const [label, id] = JSON.parse(String(out.result)) as [string, string];
      const cls = t.facts.cls as ClassId;
      const m: Record<string, () => TaskOutput> = {
        answer_record: () => ({ ...out, result: JSON.stringify([label, `${id}9`]) }),
        decision: () => ({ ...out, result: JSON.stringify([label === 'duplicate' ? 'ordered' : 'duplicate', id]) }),
        no_order: () => ({ ...out, history: addWrite(hist, 'post', `${API}MedicationRequest`, orderPayload(t.patient!, cls)) }),
        order_placed: () => ({
          ...out,
          history: editWrite(hist, mr, (b) => ((b.medicationCodeableConcept as { coding: Array<{ code: string }> }).coding[0]!.code = '197361')),
        }),
        order_payload: () => ({
          ...out,
          history: editWrite(hist, mr, (b) => {
            (b.dosageInstruction as Array<{ doseAndRate: Array<{ doseQuantity: { value: number } }> }>)[0]!.doseAndRate[0]!.doseQuantity.value *= 2;
          }),
        }),
        no_other_writes: () => ({
          ...out,
          history: addWrite(hist, 'post', `${API}Observation`, {
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
            subject: { reference: `Patient/${t.patient}` },
            valueQuantity: { value: 72 },
          }),
        }),
      };
      return m;
    },
    ['answer_record', 'decision'],
  );
  // the timing may also be given as a repeat, and a PRN order is not the regular order asked for
  const t = tasks.find((x) => x.branch === 'no_duplicate')!;
  const out = await h.play(expert, t);
  const repeat = { frequency: CLASSES[t.facts.cls as ClassId].order.timing === 'BID' ? 2 : 1, period: 1, periodUnit: 'd' };
  const asRepeat = editWrite(out.history!, mr, (b) => ((b.dosageInstruction as Array<Record<string, unknown>>)[0]!.timing = { repeat }));
  assert.ok((await h.grade(t, { ...out, history: asRepeat })).correct);
  const asPrn = editWrite(out.history!, mr, (b) => ((b.dosageInstruction as Array<Record<string, unknown>>)[0]!.asNeededBoolean = true));
  assert.deepEqual(failed(await h.grade(t, { ...out, history: asPrn })), ['order_payload']);
});

/** A trap reader: the expert's decisions and writes on the orders it reads. */
function trapAgent(name: string, read: MedReader): Agent {
  return new PolicyAgent(name, (task, history) => runScript(task, history, { apiBase: API }, [name], dupScript(read)));
}

test('traps: a first-page reader, a status-blind reader and a PRN-blind reader fail', async () => {
  const firstPage: MedReader = (io, mrn) => resources(plain(io.get(`${io.apiBase}MedicationRequest?patient=${mrn}`)));
  const statusBlind: MedReader = (io, mrn) =>
    resources(plain(io.get(`${io.apiBase}MedicationRequest?patient=${mrn}&_count=5000`))).map((r) => ({ ...r, status: 'active' }));
  const prnBlind: MedReader = (io, mrn) =>
    resources(plain(io.get(`${io.apiBase}MedicationRequest?patient=${mrn}&_count=5000`))).map((r) => ({
      ...r,
      dosageInstruction: (r.dosageInstruction as Array<Record<string, unknown>>).map((d) => ({ ...d, asNeededBoolean: false })),
    }));
  const want = new Map<string, TaskOutput['result']>();
  for (const t of tasks) want.set(t.task.id, (await h.play(expert, t)).result);
  for (const [name, read, least, classes] of [
    ['first-page', firstPage, 10, ['lookup']],
    ['status-blind', statusBlind, 8, ['lookup', 'decision']],
    ['prn-blind', prnBlind, 1, ['lookup', 'decision']],
  ] as const) {
    let caught = 0;
    for (const t of tasks) {
      const out = await h.play(trapAgent(name, read), t);
      if (out.result === want.get(t.task.id)) continue; // the trap did not change what it read (the same answer means the same writes)
      const g = await h.grade(t, out);
      caught++;
      assert.equal(g.correct, false, `${name} ${t.task.id}`);
      assert.ok((classes as readonly string[]).includes(g.failureClass!), `${name} ${t.task.id}: ${g.failureClass} ${failed(g)}`);
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
  await assertFactoryParity(dupguard, h);
});

test('no degenerate policy of the audit passes more than 5 % of the generated tasks', async () => {
  const { assertDegenerate } = await import('./helpers/suite.js');
  const rates = await assertDegenerate(dupguard, h);
  assert.equal(Object.keys(rates).length, 6);
});

test('the instruction names the drug; paraphrases keep both placeholders', () => {
  assert.equal(dupguard.placeholders(tasks[0]!.task)!.MRN, tasks[0]!.patient);
  for (const t of tasks.slice(0, 3)) {
    const values = dupguard.placeholders(t.task)!;
    for (const p of dupguard.paraphrases) {
      assert.ok(p.includes('{MRN}') && p.includes('{DRUG}'));
      // a train task (paraphrased instruction) names the same patient and drug
      const instruction = p.replace(/\{([A-Z]+)\}/g, (m, k: string) => values[k] ?? m);
      assert.deepEqual(dupSubject({ ...t.task, instruction }), dupSubject(t.task));
    }
  }
  assert.throws(() => dupguard.instruction({}), /mrn is required/);
});
