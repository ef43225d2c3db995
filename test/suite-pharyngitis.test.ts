/**
 * The `pharyngitis` family (allergy-aware antibiotic for group A strep pharyngitis): generator branch coverage and
 * planted traps, the expert at 100 % (both variants, text and tools), a mutation test per checkpoint (break one field
 * of the expert's action → exactly that checkpoint fails), trap readers (results of any status, allergy records of any
 * status) failing with class `lookup`, and `FINISH([])` failing every task.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { type ClinicalWorld, openClinicalWorld } from '../src/tasks/suite/splits.js';
import {
  antibioticOrder,
  classifyAllergy,
  countingRadt,
  type Drug,
  EXPERT_READERS,
  PHARYNGITIS_CHECKPOINTS,
  type PharyngitisBranch,
  type PharyngitisReader,
  pharyngitis,
  pharyngitisScript,
  RADT_LOINC,
  type RadtReading,
} from '../src/tasks/suite/pharyngitis.js';
import { plain, runScript } from '../src/tasks/common.js';
import { runEpisode } from '../src/agent/loop.js';
import { runToolsEpisode, directToolEnvironment } from '../src/agent/tools-loop.js';
import { PolicyAgent, finishEmptyAgent } from '../src/agent/backends/scripted.js';
import { expertPolicy } from '../src/agent/create.js';
import { taskDialect } from '../src/protocol/dialect.js';
import { formatAction, parseAction, POST_ACCEPTED } from '../src/protocol/text.js';
import { rngFor } from '../src/worlds/prng.js';
import type { Agent } from '../src/agent/types.js';
import type { GeneratedTask, GradeResult, HistoryItem, TaskOutput } from '../src/tasks/types.js';

let cw: ClinicalWorld;
let tasks: GeneratedTask[];
const API = 'http://localhost:8080/fhir/';

before(async () => {
  cw = await openClinicalWorld({ seed: 3, patients: 40 });
  tasks = await pharyngitis.generate(cw.access, { rng: rngFor('suite-pharyngitis-test', 1), patients: cw.world.patientIds });
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

const grade = (t: GeneratedTask, o: TaskOutput): Promise<GradeResult> => pharyngitis.grade(t.task, o, cw.access);
const failed = (g: GradeResult) => g.checks.filter((c) => !c.pass).map((c) => c.name);
const expert = new PolicyAgent('expert', expertPolicy);
const getJson = async (url: string) =>
  plain(JSON.parse((await cw.access.fhir({ method: 'GET', url: `${API}${url}` })).body)) as { entry?: Array<{ resource: Record<string, unknown> }> };

test('generator: every branch, facts from the record, traps planted (status traps on tests and allergies)', async () => {
  const byBranch = new Map<string, GeneratedTask[]>();
  for (const t of tasks) byBranch.set(t.branch, [...(byBranch.get(t.branch) ?? []), t]);
  assert.deepEqual([...byBranch.keys()].sort(), [...pharyngitis.branches].sort());
  for (const b of pharyngitis.branches) assert.ok(byBranch.get(b)!.length >= 5, `${b}: ${byBranch.get(b)!.length}`);
  const only = await pharyngitis.generate(cw.access, { rng: rngFor('x', 2), patients: cw.world.patientIds, branch: 'clindamycin', count: 3 });
  assert.equal(only.length, 3);
  assert.ok(only.every((t) => t.branch === 'clindamycin'));
  let radtTraps = 0;
  let allergyTraps = 0;
  for (const t of tasks) {
    const radt = t.facts.radt as RadtReading;
    const all = (await getJson(`Observation?patient=${t.patient}&code=${RADT_LOINC}&_count=5000`)).entry ?? [];
    const counted = countingRadt(all.map((e) => e.resource));
    assert.deepEqual(counted, radt);
    assert.equal(radt.positive, t.branch !== 'no_antibiotic');
    // a newer result that does not stand, with the opposite finding
    const newer = all.filter((e) => String(e.resource.effectiveDateTime) > radt.time);
    assert.ok(
      newer.every((e) => e.resource.status !== 'final'),
      `${t.task.id}: only traps are newer`,
    );
    if (newer.length) radtTraps++;
    const allergies = ((await getJson(`AllergyIntolerance?patient=${t.patient}`)).entry ?? []).map((e) => e.resource);
    const careless = classifyAllergy(allergies, () => true);
    if (t.branch !== 'no_antibiotic' && careless !== t.facts.allergy) allergyTraps++;
  }
  assert.ok(radtTraps >= 8, `test-status traps: ${radtTraps}`);
  assert.ok(allergyTraps >= 4, `allergy-status traps: ${allergyTraps}`);
});

test('expert: 100 % in both variants (text) and in the tools protocol, every checkpoint passed', async () => {
  for (const t of tasks) {
    for (const variant of pharyngitis.variants) {
      const agent = new PolicyAgent(variant, (task, history) => pharyngitis.solve(task, history, { apiBase: API, variant }));
      const g = await grade(t, await play(agent, t));
      assert.ok(g.correct, `${t.task.id} ${variant}: ${failed(g)} ${g.exception ?? ''}`);
      assert.equal(g.score, 1);
      assert.equal(g.branch, t.branch);
      assert.deepEqual(
        g.checks.map((c) => c.name),
        PHARYNGITIS_CHECKPOINTS[t.branch as PharyngitisBranch],
      );
    }
    const g = await grade(t, await play(expert, t, 'tools'));
    assert.ok(g.correct, `${t.task.id} tools: ${failed(g)}`);
  }
});

/** The expert's history with its one write's JSON body changed (its reply kept: the write was accepted). */
function editWrite(h: HistoryItem[], edit: (body: Record<string, unknown>) => void): HistoryItem[] {
  let hit = 0;
  const out = h.map((item) => {
    if (item.role !== 'agent') return item;
    const a = parseAction(item.content, { put: true });
    if (a.kind !== 'post') return item;
    hit++;
    const body = JSON.parse(a.body) as Record<string, unknown>;
    edit(body);
    return { role: 'agent' as const, content: formatAction({ kind: a.kind, url: a.url, body: JSON.stringify(body) }) };
  });
  assert.equal(hit, 1, 'the mutation hits one write');
  return out;
}

/** The expert's history with one accepted POST inserted before FINISH. */
function addPost(h: HistoryItem[], url: string, body: unknown): HistoryItem[] {
  const out = h.slice(0, -1);
  out.push({ role: 'agent', content: formatAction({ kind: 'post', url, body: JSON.stringify(body) }) }, { role: 'user', content: POST_ACCEPTED });
  out.push(h[h.length - 1]!);
  return out;
}

/** Replace the drug of a MedicationRequest body (code, display, text). */
const setDrug = (b: Record<string, unknown>, drug: Drug) => {
  b.medicationCodeableConcept = (antibioticOrder('x', drug) as { medicationCodeableConcept: unknown }).medicationCodeableConcept;
};

test('mutations: breaking one field of the expert action fails exactly that checkpoint', async () => {
  for (const branch of pharyngitis.branches as readonly PharyngitisBranch[]) {
    const t = tasks.find((x) => x.branch === branch)!;
    const out = await play(expert, t);
    const h = out.history!;
    const radt = t.facts.radt as RadtReading;
    const drug = branch === 'no_antibiotic' ? 'none' : branch;
    const otherTime = new Date(Date.parse(radt.time) - 3600_000).toISOString();
    // a swap to another drug on the same regimen (amoxicillin ↔ cephalexin) or, for clindamycin, a beta-lactam
    const swap: Record<string, Drug> = { amoxicillin: 'cephalexin', cephalexin: 'clindamycin', clindamycin: 'amoxicillin' };
    const mutations: Record<string, () => TaskOutput> = {
      answer_test: () => ({ ...out, result: JSON.stringify([drug, otherTime]) }),
      answer_drug: () => ({ ...out, result: JSON.stringify([branch === 'no_antibiotic' ? 'amoxicillin' : 'none', radt.time]) }),
      antibiotic_ordered: () => ({ ...out, history: editWrite(h, (b) => (b.intent = 'proposal')) }),
      drug_for_allergy: () => ({
        ...out,
        history: editWrite(h, (b) => {
          setDrug(b, swap[branch]!);
          // the expert's dose for the branch's drug stays: only the drug is wrong
        }),
      }),
      drug_code: () => ({
        ...out,
        history: editWrite(h, (b) => ((b.medicationCodeableConcept as { coding: Array<{ code: string }> }).coding[0]!.code = '999999')),
      }),
      dose_schedule: () => ({
        ...out,
        history: editWrite(h, (b) => {
          (b.dosageInstruction as Array<{ doseAndRate: Array<{ doseQuantity: { value: number } }> }>)[0]!.doseAndRate[0]!.doseQuantity.value = 250;
        }),
      }),
      no_penicillin: () => ({ ...out, history: addPost(h, `${API}MedicationRequest`, antibioticOrder(t.patient!, 'amoxicillin')) }),
      no_beta_lactam: () => ({ ...out, history: addPost(h, `${API}MedicationRequest`, antibioticOrder(t.patient!, 'cephalexin')) }),
      no_antibiotic: () => ({ ...out, history: addPost(h, `${API}MedicationRequest`, antibioticOrder(t.patient!, 'amoxicillin')) }),
      no_other_writes: () => ({
        ...out,
        history: addPost(h, `${API}ServiceRequest`, {
          resourceType: 'ServiceRequest',
          status: 'active',
          intent: 'order',
          code: { text: 'Throat culture' },
          subject: { reference: `Patient/${t.patient}` },
        }),
      }),
      no_writes: () => ({
        ...out,
        history: addPost(h, `${API}ServiceRequest`, {
          resourceType: 'ServiceRequest',
          status: 'active',
          intent: 'order',
          code: { text: 'Throat culture' },
          subject: { reference: `Patient/${t.patient}` },
        }),
      }),
    };
    const names = PHARYNGITIS_CHECKPOINTS[branch];
    for (const name of names) {
      if (name === 'finished') {
        const g = await grade(t, { ...out, status: 'task limit reached', result: null, history: h.slice(0, -1) });
        assert.deepEqual(failed(g), ['finished', 'answer_test', 'answer_drug'], branch);
        assert.equal(g.failureClass, 'budget');
        continue;
      }
      const mutate = mutations[name];
      assert.ok(mutate, `no mutation for ${name}`);
      const g = await grade(t, mutate());
      // the safety checkpoint repeats a beta-lactam chosen for an immediate-type allergy (listed on its own for reports)
      const want = branch === 'clindamycin' && name === 'drug_for_allergy' ? ['drug_for_allergy', 'no_beta_lactam'] : [name];
      assert.deepEqual(failed(g), want, `${branch}: mutating ${name}`);
      assert.equal(g.score, (names.indexOf(name) - 1) / (names.length - 1), `${branch}: score after mutating ${name}`);
      assert.equal(g.failureClass, g.checks.find((c) => c.name === name)!.class);
      assert.equal(g.correct, false);
    }
  }
});

test('azithromycin is accepted for an immediate-type allergy (500 mg daily for 5 days), not for the others', async () => {
  for (const branch of ['clindamycin', 'cephalexin'] as const) {
    const t = tasks.find((x) => x.branch === branch)!;
    const out = await play(expert, t);
    const radt = t.facts.radt as RadtReading;
    const h = editWrite(out.history!, (b) => Object.assign(b, antibioticOrder(t.patient!, 'azithromycin')));
    const g = await grade(t, { ...out, history: h, result: JSON.stringify(['azithromycin', radt.time]) });
    if (branch === 'clindamycin') assert.ok(g.correct, `${failed(g)}`);
    // judged against cephalexin's regimen: the drug, its 5-day schedule and the answer are wrong
    else assert.deepEqual(failed(g), ['drug_for_allergy', 'dose_schedule', 'answer_drug']);
  }
});

/** A trap agent: the expert's decisions and writes on what its reader reads. */
function trapAgent(name: string, read: PharyngitisReader): Agent {
  return new PolicyAgent(name, (task, history) => runScript(task, history, { apiBase: API }, [name], pharyngitisScript(read)));
}

test('traps: a reader of tests of any status and a reader of allergy records of any status fail with class lookup', async () => {
  const anyRadtStatus: PharyngitisReader = {
    ...EXPERT_READERS.scan!,
    radt: (io, mrn) => {
      const b = plain(io.get(`${io.apiBase}Observation?patient=${mrn}&code=${RADT_LOINC}&_count=5000`)) as {
        entry?: Array<{ resource: Record<string, unknown> }>;
      };
      return countingRadt((b.entry ?? []).map((e) => ({ ...e.resource, status: 'final' })));
    },
  };
  const anyAllergyStatus: PharyngitisReader = {
    ...EXPERT_READERS.scan!,
    allergy: (io, mrn) => {
      const b = plain(io.get(`${io.apiBase}AllergyIntolerance?patient=${mrn}`)) as { entry?: Array<{ resource: Record<string, unknown> }> };
      return classifyAllergy(
        (b.entry ?? []).map((e) => e.resource),
        () => true,
      );
    },
  };
  for (const [name, read, least] of [
    ['test-any-status', anyRadtStatus, 8],
    ['allergy-any-status', anyAllergyStatus, 4],
  ] as const) {
    let caught = 0;
    for (const t of tasks) {
      const out = await play(trapAgent(name, read), t);
      const g = await grade(t, out);
      if (g.correct) continue; // the trap did not change what it read
      caught++;
      assert.equal(g.failureClass, 'lookup', `${name} ${t.task.id}: ${failed(g)}`);
    }
    assert.ok(caught >= least, `${name}: ${caught} tasks trapped`);
  }
});

test('FINISH([]) fails every task (class lookup): no free points; the audit hooks earn nothing either', async () => {
  const always = new PolicyAgent('always-act', (task, history) => pharyngitis.audit!.alwaysAct!(task, history, { apiBase: API }));
  const nothing = new PolicyAgent('nothing-found', () => `FINISH(${JSON.stringify(pharyngitis.audit!.nothingFound)})`);
  for (const t of tasks) {
    for (const agent of [finishEmptyAgent(), always, nothing]) {
      const g = await grade(t, await play(agent, t));
      assert.equal(g.correct, false, `${agent.name} ${t.task.id}`);
      assert.equal(g.failureClass, 'lookup', `${agent.name} ${t.task.id}`);
      assert.equal(g.score, 0, `${agent.name} ${t.task.id}: partial credit`);
    }
  }
});

test('factory parity: an expert conversation passes the harness checks in its dialect (prompt, live writes)', async () => {
  const { checkParity } = await import('../src/factory/parity.js');
  for (const branch of pharyngitis.branches) {
    const t = tasks.find((x) => x.branch === branch)!;
    const out = await play(expert, t);
    const messages = out.history!.map((h) => ({ role: h.role === 'agent' ? ('assistant' as const) : ('user' as const), content: h.content }));
    assert.deepEqual(await checkParity(messages, t.task), [], branch);
  }
});
