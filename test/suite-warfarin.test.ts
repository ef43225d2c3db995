/**
 * The worked example of the clinical suite, `warfarin` (INR-guided warfarin management): generator branch coverage
 * and planted traps, the expert at 100 % (both variants, text and tools), a mutation test per checkpoint (break one
 * field of the expert's action → exactly that checkpoint fails), trap readers (first page only, entered-in-error
 * results) failing with class `lookup`, and `FINISH([])` failing every task.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { type ClinicalWorld, openClinicalWorld } from '../src/tasks/suite/splits.js';
import {
  countingInr,
  INR_LOINC,
  type InrReader,
  REPEAT_INR_AT,
  VITAMIN_K_RXNORM,
  WARFARIN_CHECKPOINTS,
  type WarfarinBranch,
  warfarin,
  warfarinScript,
} from '../src/tasks/suite/warfarin.js';
import { runScript } from '../src/tasks/common.js';
import { plain } from '../src/tasks/common.js';
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

before(async () => {
  cw = await openClinicalWorld({ seed: 3, patients: 40 });
  tasks = await warfarin.generate(cw.access, { rng: rngFor('suite-warfarin-test', 1), patients: cw.world.patientIds });
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

const grade = (t: GeneratedTask, o: TaskOutput): Promise<GradeResult> => warfarin.grade(t.task, o, cw.access);
const failed = (g: GradeResult) => g.checks.filter((c) => !c.pass).map((c) => c.name);
const expert = new PolicyAgent('expert', expertPolicy);

test('generator: every branch, facts from the record, the decisive INR past the first page, traps newer than it', async () => {
  const byBranch = new Map<string, GeneratedTask[]>();
  for (const t of tasks) byBranch.set(t.branch, [...(byBranch.get(t.branch) ?? []), t]);
  assert.deepEqual([...byBranch.keys()].sort(), [...warfarin.branches].sort());
  for (const b of warfarin.branches) assert.ok(byBranch.get(b)!.length >= 3, `${b}: ${byBranch.get(b)!.length}`);
  // a branch filter gives only that branch
  const only = await warfarin.generate(cw.access, { rng: rngFor('x', 2), patients: cw.world.patientIds, branch: 'high_hold', count: 3 });
  assert.equal(only.length, 3);
  assert.ok(only.every((t) => t.branch === 'high_hold'));
  let eie = 0;
  for (const t of tasks) {
    const inr = t.facts.inr as { value: number; id: string } | null;
    const all = plain(
      JSON.parse((await cw.access.fhir({ method: 'GET', url: `${API}Observation?patient=${t.patient}&code=${INR_LOINC}&_count=5000` })).body),
    ) as {
      entry: Array<{ resource: Record<string, unknown> }>;
    };
    assert.ok(all.entry.length > 20, 'more results than one page');
    const page1 = JSON.parse((await cw.access.fhir({ method: 'GET', url: `${API}Observation?patient=${t.patient}&code=${INR_LOINC}` })).body) as {
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
  for (const t of tasks) {
    for (const variant of warfarin.variants) {
      const agent = new PolicyAgent(variant, (task, history) => warfarin.solve(task, history, { apiBase: API, variant }));
      const g = await grade(t, await play(agent, t));
      assert.ok(g.correct, `${t.task.id} ${variant}: ${failed(g)} ${g.exception ?? ''}`);
      assert.equal(g.score, 1);
      assert.equal(g.branch, t.branch);
      assert.deepEqual(
        g.checks.map((c) => c.name),
        WARFARIN_CHECKPOINTS[t.branch as WarfarinBranch],
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
  const put = (a: { kind: string }) => a.kind === 'put';
  for (const branch of warfarin.branches as readonly WarfarinBranch[]) {
    const t = tasks.find((x) => x.branch === branch)!;
    const out = await play(expert, t);
    const h = out.history!;
    const orderId = String(t.facts.orderId);
    const order = JSON.parse((await cw.access.fhir({ method: 'GET', url: `${API}MedicationRequest/${orderId}` })).body) as Record<string, unknown>;
    const mutations: Record<string, () => TaskOutput> = {
      answer_inr: () => ({ ...out, result: `[${(t.facts.inr ? (t.facts.inr as { value: number }).value : -1) + 0.5}]` }),
      warfarin_on_hold: () => ({ ...out, history: editWrite(h, put, (b) => (b.status = 'stopped')) }),
      hold_only_status: () => ({
        ...out,
        history: editWrite(h, put, (b) => {
          b.dosageInstruction = [{ text: '2.5 mg oral DAILY' }];
        }),
      }),
      repeat_inr_ordered: () => ({ ...out, history: editWrite(h, sr, (b) => ((b.code as { coding: Array<{ code: string }> }).coding[0]!.code = '5902-2')) }),
      repeat_inr_payload: () => ({ ...out, history: editWrite(h, sr, (b) => (b.occurrenceDateTime = '2023-11-15T08:00:00+00:00')) }),
      no_vitamin_k: () => ({
        ...out,
        history: addWrite(h, 'post', `${API}MedicationRequest`, {
          resourceType: 'MedicationRequest',
          status: 'active',
          intent: 'order',
          medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: VITAMIN_K_RXNORM }] },
          subject: { reference: `Patient/${t.patient}` },
        }),
      }),
      vitamin_k_ordered: () => ({
        ...out,
        history: editWrite(h, mr, (b) => ((b.medicationCodeableConcept as { coding: Array<{ code: string }> }).coding[0]!.code = '11289')),
      }),
      vitamin_k_payload: () => ({
        ...out,
        history: editWrite(h, mr, (b) => {
          (b.dosageInstruction as Array<{ doseAndRate: Array<{ doseQuantity: { value: number } }> }>)[0]!.doseAndRate[0]!.doseQuantity.value = 5;
        }),
      }),
      no_other_writes: () => ({
        ...out,
        history: addWrite(h, 'post', `${API}Observation`, {
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: INR_LOINC }] },
          subject: { reference: `Patient/${t.patient}` },
          valueQuantity: { value: 2.5 },
        }),
      }),
      warfarin_unchanged: () => ({ ...out, history: addWrite(h, 'put', `${API}MedicationRequest/${orderId}`, { ...order, status: 'on-hold' }) }),
      no_writes: () => ({
        ...out,
        history: addWrite(h, 'post', `${API}ServiceRequest`, {
          resourceType: 'ServiceRequest',
          status: 'active',
          intent: 'order',
          code: { coding: [{ system: 'http://loinc.org', code: INR_LOINC }] },
          subject: { reference: `Patient/${t.patient}` },
          occurrenceDateTime: REPEAT_INR_AT,
        }),
      }),
      inr_ordered: () => ({ ...out, history: editWrite(h, sr, (b) => ((b.code as { coding: Array<{ code: string }> }).coding[0]!.code = '5902-2')) }),
      inr_order_payload: () => ({ ...out, history: editWrite(h, sr, (b) => (b.priority = 'routine')) }),
    };
    for (const name of WARFARIN_CHECKPOINTS[branch]) {
      if (name === 'finished') {
        // no FINISH: the answer is missing too (it is FINISH's argument)
        const g = await grade(t, { ...out, status: 'task limit reached', result: null, history: h.slice(0, -1) });
        assert.deepEqual(failed(g), ['finished', 'answer_inr'], branch);
        assert.equal(g.failureClass, 'budget');
        continue;
      }
      const mutate = mutations[name];
      assert.ok(mutate, `no mutation for ${name}`);
      const g = await grade(t, mutate());
      assert.deepEqual(failed(g), [name], `${branch}: mutating ${name}`);
      // partial credit: the checkpoints passed in expert order before the broken one (after the `finished` gate)
      const names = WARFARIN_CHECKPOINTS[branch];
      assert.equal(g.score, (names.indexOf(name) - 1) / (names.length - 1), `${branch}: score after mutating ${name}`);
      assert.equal(g.failureClass, g.checks.find((c) => c.name === name)!.class);
      assert.equal(g.correct, false);
    }
  }
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
      const out = await play(trapAgent(name, read), t);
      const g = await grade(t, out);
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
  for (const t of tasks) {
    const g = await grade(t, await play(finishEmptyAgent(), t));
    assert.equal(g.correct, false, t.task.id);
    assert.equal(g.failureClass, 'lookup');
    assert.equal(g.score, 0, `${t.task.id}: partial credit for doing nothing`);
  }
});

test('factory parity: a suite expert conversation passes the harness checks in its dialect (prompt, PUT, live writes)', async () => {
  const { checkParity } = await import('../src/factory/parity.js');
  const { corpusTools } = await import('../src/factory/tools-rows.js');
  for (const branch of warfarin.branches) {
    const t = tasks.find((x) => x.branch === branch)!;
    const out = await play(expert, t);
    const messages = out.history!.map((h) => ({ role: h.role === 'agent' ? ('assistant' as const) : ('user' as const), content: h.content }));
    assert.deepEqual(await checkParity(messages, t.task), [], branch);
  }
  assert.ok(corpusTools(taskDialect('warfarin_1')).some((x) => x.function.name === 'medication_request_update'));
  assert.ok(!corpusTools().some((x) => x.function.name.endsWith('_update')));
});
