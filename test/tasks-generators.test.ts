/**
 * Generators over real worlds: branches derived from the world's data agree with the synthetic cohort's planted
 * facts, every generated instance is solved correctly by the expert solver, the same seed gives the same instances,
 * and task1 produces "Patient not found" near-duplicates that really do not exist.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadWorld, evaluationMrns, type World, type PlantedFacts } from '../src/worlds/index.js';
import { Rng } from '../src/worlds/prng.js';
import { createFhirApp } from '../src/fhir/server.js';
import { inProcessTransport } from '../src/fhir/client.js';
import type { FhirTransport } from '../src/fhir/types.js';
import type { FamilyId, GeneratedTask } from '../src/tasks/types.js';
import { FAMILIES, FAMILY_IDS } from '../src/tasks/registry.js';
import { pyEquals } from '../src/tasks/pysem.js';
import { BASE, runMini } from './helpers/tasks-fake.js';

let synth: World;
let synthFhir: FhirTransport;
let replica: World;
let replicaFhir: FhirTransport;

before(async () => {
  synth = await loadWorld({ world: 'synthetic', seed: 11, patients: 48 });
  synthFhir = inProcessTransport(createFhirApp(synth.store));
  replica = await loadWorld({ world: 'medagentbench' });
  replicaFhir = inProcessTransport(createFhirApp(replica.store));
});

/** The branch each family must derive from the planted facts. */
function expectedBranch(fam: FamilyId, f: PlantedFacts): string {
  const mgIn24 = !['none', 'stale'].includes(f.mg.branch);
  switch (fam) {
    case 'task2':
    case 'task3':
    case 'task8':
      return 'n/a';
    case 'task4':
      return mgIn24 ? 'data_present' : 'data_absent';
    case 'task5':
      return !mgIn24 ? 'data_absent_no_order' : f.mg.branch === 'normal' ? 'high_no_order' : 'low_order_required';
    case 'task6':
      return f.glu.branch === 'window' ? 'data_present' : 'data_absent';
    case 'task7':
      return f.glu.branch === 'none' ? 'data_absent' : 'data_present';
    case 'task9':
      return { none: 'data_absent_no_order', normal: 'normal_no_order', low: 'low_order_required' }[f.k.branch];
    case 'task10':
      return { none: 'data_absent_order_required', stale: 'stale_order_required', fresh: 'fresh_report_value' }[f.a1c.branch];
    default:
      throw new Error(fam);
  }
}

async function solveAndGrade(g: GeneratedTask, fhir: FhirTransport): Promise<string | null> {
  const fam = FAMILIES[g.task.id.split('_')[0] as FamilyId];
  const out = await runMini(g.task, fam, fhir);
  const r = await fam.grade(g.task, out, { apiBase: BASE, fhir });
  if (!r.correct) return `${g.task.id} (${g.branch}): ${JSON.stringify(r.checks.filter((c) => !c.pass))} ${r.exception ?? ''}`;
  if (r.branch !== g.branch) return `${g.task.id}: generator branch ${g.branch}, grader branch ${r.branch}`;
  return null;
}

test('synthetic cohort: generated branches match planted facts and the expert solves every instance', async () => {
  const facts = new Map(synth.facts!.map((f) => [f.mrn, f]));
  const world = { apiBase: BASE, fhir: synthFhir };
  const problems: string[] = [];
  const seen: Record<string, Set<string>> = {};
  for (const id of FAMILY_IDS) {
    const gen = await FAMILIES[id].generate(world, { rng: new Rng(`gen|${id}`), patients: synth.patientIds });
    assert.ok(gen.length > 0, `${id} generated nothing`);
    seen[id] = new Set(gen.map((g) => g.branch));
    for (const [k, g] of gen.entries()) {
      assert.equal(g.task.id, `${id}_${k + 1}`);
      assert.ok(FAMILIES[id].branches.includes(g.branch), `${id}: unknown branch ${g.branch}`);
      if (id === 'task1') {
        if (g.branch === 'patient_found') {
          const f = facts.get(g.patient!)!;
          assert.equal(g.task.instruction, FAMILIES.task1.instruction({ name: `${f.given} ${f.family}`, dob: f.birthDate }));
          assert.deepEqual(g.task.sol, [g.patient]);
        } else {
          assert.equal(g.patient, null);
          assert.deepEqual(Object.keys(g.task), ['id', 'instruction', 'context', 'sol']);
          assert.deepEqual(g.task.sol, ['Patient not found']);
        }
      } else {
        const f = facts.get(g.patient!)!;
        assert.deepEqual(Object.keys(g.task), ['id', 'instruction', 'context', 'eval_MRN']);
        if (expectedBranch(id, f) !== g.branch) problems.push(`${g.task.id} ${g.patient}: ${g.branch} vs planted ${expectedBranch(id, f)}`);
        if (id === 'task2') assert.equal(g.facts.age, f.age);
        if (id === 'task5' && g.branch === 'low_order_required') {
          assert.equal(g.facts.dose, { low_mild: 1, low_moderate: 2, low_severe: 4 }[f.mg.branch as 'low_mild']);
        }
        if (id === 'task10') assert.equal(g.facts.effectiveDateTime, f.a1c.latest ? f.a1c.latest.time : null);
        if (id === 'task9') assert.ok(pyEquals(g.facts.lastValue, f.k.latest ? f.k.latest.value : null));
      }
      const p = await solveAndGrade(g, synthFhir);
      if (p) problems.push(p);
    }
  }
  assert.deepEqual(problems, []);
  // every branch of the conditional families occurs in a 48-patient cohort
  for (const id of ['task4', 'task5', 'task6', 'task9', 'task10', 'task1'] as const) {
    assert.deepEqual([...seen[id]].sort(), [...FAMILIES[id].branches].sort(), `${id} branches`);
  }
});

test('generation is deterministic per seed, honours branch/count/startIndex', async () => {
  const world = { apiBase: BASE, fhir: synthFhir };
  for (const id of ['task1', 'task5', 'task10'] as const) {
    const a = await FAMILIES[id].generate(world, { rng: new Rng('same'), patients: synth.patientIds, count: 12 });
    const b = await FAMILIES[id].generate(world, { rng: new Rng('same'), patients: synth.patientIds, count: 12 });
    const c = await FAMILIES[id].generate(world, { rng: new Rng('other'), patients: synth.patientIds, count: 12 });
    assert.equal(JSON.stringify(a), JSON.stringify(b));
    assert.notEqual(JSON.stringify(a), JSON.stringify(c));
    assert.equal(a.length, 12);
  }
  const low = await FAMILIES.task9.generate(world, { rng: new Rng('k'), patients: synth.patientIds, branch: 'low_order_required', count: 3, startIndex: 40 });
  assert.deepEqual(
    low.map((g) => g.task.id),
    ['task9_40', 'task9_41', 'task9_42'],
  );
  assert.ok(low.every((g) => g.branch === 'low_order_required' && typeof g.facts.dose === 'number'));
  const none = await FAMILIES.task1.generate(world, { rng: new Rng('nf'), patients: synth.patientIds, branch: 'no_mrn', count: 10 });
  assert.equal(none.length, 10);
  assert.ok(none.every((g) => g.task.instruction.startsWith("What's the MRN")));
  assert.ok(none.some((g) => String(g.facts.perturbation).startsWith('dob_shift')));
  assert.ok(none.some((g) => g.facts.perturbation === 'given_swap'));
  for (const g of none) assert.equal(await solveAndGrade(g, synthFhir), null);
});

test('replica: non-evaluation patients (demographics only) and evaluation patients', async () => {
  const evalSet = new Set(evaluationMrns());
  const nonEval = replica.patientIds.filter((id) => !evalSet.has(id));
  assert.ok(nonEval.length >= 300);
  const world = { apiBase: BASE, fhir: replicaFhir };
  const problems: string[] = [];
  for (const id of ['task1', 'task2', 'task3', 'task4', 'task10'] as const) {
    const gen = await FAMILIES[id].generate(world, { rng: new Rng(`replica|${id}`), patients: nonEval, count: 8 });
    assert.equal(gen.length, 8, id);
    if (id === 'task4') assert.ok(gen.every((g) => g.branch === 'data_absent'));
    if (id === 'task10') assert.ok(gen.every((g) => g.branch === 'data_absent_order_required'));
    for (const g of gen) {
      const p = await solveAndGrade(g, replicaFhir);
      if (p) problems.push(p);
    }
  }
  // on the evaluation patients the generator reproduces the official task5 branches
  const gen5 = await FAMILIES.task5.generate(world, { rng: new Rng('t5'), patients: ['S3084624', 'S6542579', 'S0636132', 'S6315806'] });
  const byMrn = new Map(gen5.map((g) => [g.patient, g]));
  assert.equal(byMrn.get('S3084624')!.branch, 'low_order_required');
  assert.ok(pyEquals(byMrn.get('S6542579')!.facts.lastValue, 1.9));
  assert.equal(byMrn.get('S0636132')!.branch, 'high_no_order');
  assert.equal(byMrn.get('S6315806')!.branch, 'data_absent_no_order');
  assert.deepEqual(problems, []);
});
