/**
 * The family contract: every registered family carries every part its consumers read, a family missing a part is
 * refused at registration, and a family registered through `registerFamily` (here a small but real one, the latest
 * potassium value) flows into every consumer: loader, grader dispatch, expert episode, eval scheduler prior, factory
 * hints, paraphrases and remainder order, report detectors, and the synthetic world's plant request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ACTION_FAMILIES,
  FAMILIES,
  FAMILY_IDS,
  QUERY_FAMILIES,
  familyKind,
  familyList,
  familyProblems,
  getFamily,
  isFamilyId,
  plantRequest,
  registerFamily,
} from '../src/tasks/registry.js';
import { generateOver, latestLab, latestReading, makeTask, mrnDetector, mrnInstruction, mrnPlaceholders, runScript, taskMrn } from '../src/tasks/common.js';
import { getLabHistory, latestReference, runGrader, scanLatest } from '../src/tasks/refsol.js';
import { pyEquals } from '../src/tasks/pysem.js';
import { TaskSetError, validateTasks } from '../src/tasks/loader.js';
import { gradeOutput } from '../src/tasks/grade.js';
import type { GradeResult, HistoryItem, TaskCase, TaskFamily, TaskOutput } from '../src/tasks/types.js';
import { boundaryTags, branchHints, remainderOrder } from '../src/factory/hints.js';
import { paraphraseTask } from '../src/factory/paraphrase.js';
import { defaultParams, familyQuotas, generateCorpus } from '../src/factory/generate.js';
import { realDeps } from '../src/factory/deps.js';
import { DETECTORS } from '../src/report/behaviours.js';
import { familyDetector, familyLabel } from '../src/report/families.js';
import { taskInfoFrom } from '../src/report/load.js';
import { GET_OK_PREFIX, GET_OK_SUFFIX } from '../src/report/history.js';
import type { TaskInfo } from '../src/report/types.js';
import { priorRounds } from '../src/eval/schedule.js';
import { createAgent } from '../src/agent/create.js';
import { runEpisode } from '../src/agent/loop.js';
import { renderPrompt } from '../src/agent/prompt.js';
import { createFhirHandler } from '../src/fhir/server.js';
import { handlerTransport } from '../src/fhir/client.js';
import { OFFICIAL_API_BASE } from '../src/fhir/types.js';
import { PLANTABLE, loadWorld } from '../src/worlds/index.js';
import { buildSynthetic } from '../src/worlds/synthetic.js';
import { TASK_LAB_CODES } from '../src/worlds/catalog.js';

const BUILT_INS = [...FAMILY_IDS];

// ---- a new family: one definition (what a file src/tasks/task11.ts would export) ------------------------------------

const TEMPLATE = 'What is the most recent potassium level of the patient {MRN}?';
const CONTEXT = 'It\'s 2023-11-13T10:15:00+00:00 now. The code for potassium is "K". The answer should be -1 if none is recorded.';
const VARIANTS = ['scan', 'sorted'] as const;

const task11: TaskFamily<'task11'> = {
  id: 'task11',
  name: 'latest potassium',
  kind: 'query',
  instructionTemplates: [TEMPLATE],
  context: CONTEXT,
  branches: ['data_present', 'data_absent'],
  variants: VARIANTS,
  turns: { min: 2, max: 4 },
  recordKey: 'eval_MRN',
  paraphrases: ['Latest serum potassium of {MRN}?'],
  placeholders: mrnPlaceholders,
  planted: { labs: ['K'] },
  detector: mrnDetector({ retrievedValue: true, latestValue: true }),
  factory: {
    remainderRank: 2.5,
    reusePatients: false,
    branchOf: (f) => (f.k.latest ? 'data_present' : 'data_absent'),
    boundaryTags: (f) => (f.k.latest ? [`K11=${f.k.latest.value}`] : []),
  },
  instruction: mrnInstruction('task11', TEMPLATE),
  generate(world, opts) {
    return generateOver('task11', opts, async (mrn) => {
      const r = latestReference(await latestLab(world, mrn, 'K'));
      return { branch: r.branch, patient: mrn, facts: { reference: r.ref }, build: (id) => makeTask(id, task11.instruction({ mrn }), CONTEXT, mrn) };
    });
  },
  solve(task, history, opts) {
    return runScript(task, history, opts, VARIANTS, (io) => {
      const r = latestReading(io, taskMrn(task, [TEMPLATE]), 'K');
      io.finish([r ? r.value : -1]);
    });
  },
  grade(task, output, ctx) {
    return runGrader(async (g) => {
      if (!g.noPost(output.history)) return false;
      const r = latestReference(scanLatest(await getLabHistory(ctx, task, 'K')));
      g.branch = r.branch;
      g.reference = r.ref;
      return g.answer(output.result, (l) => pyEquals(r.ref, l), r.ref);
    });
  },
};

// ---- every part is required ------------------------------------------------------------------------------------------

test('every built-in family satisfies the contract', () => {
  assert.deepEqual(BUILT_INS, ['task1', 'task2', 'task3', 'task4', 'task5', 'task6', 'task7', 'task8', 'task9', 'task10']);
  for (const f of familyList()) assert.deepEqual(familyProblems(f), [], f.id);
  assert.deepEqual(familyProblems(task11), []);
});

test('a family missing any part is refused, naming the part', () => {
  const required = [
    'id',
    'name',
    'kind',
    'instructionTemplates',
    'context',
    'branches',
    'variants',
    'turns',
    'recordKey',
    'paraphrases',
    'placeholders',
    'planted',
    'detector',
    'factory',
    'instruction',
    'generate',
    'solve',
    'grade',
  ] as const;
  for (const key of required) {
    const broken = { ...task11, id: 'task90' } as Record<string, unknown>;
    delete broken[key];
    const problems = familyProblems(broken as unknown as TaskFamily);
    assert.ok(
      problems.some((p) => p.startsWith(key)),
      `${key}: ${problems.join('; ')}`,
    );
    assert.throws(() => registerFamily(broken as unknown as TaskFamily), new RegExp(`${key}`));
  }
  // empty lists, a planted declaration that names nothing, half-filled hints
  const cases: Array<[Partial<TaskFamily>, string]> = [
    [{ instructionTemplates: [] }, 'instructionTemplates'],
    [{ branches: [] }, 'branches'],
    [{ variants: [] }, 'variants'],
    [{ paraphrases: [] }, 'paraphrases'],
    [{ paraphrases: [''] }, 'paraphrases'],
    [{ planted: {} }, 'planted'],
    [{ planted: { labs: [] } }, 'planted.labs'],
    [{ turns: { min: 3, max: 2 } }, 'turns'],
    [{ detector: { ...task11.detector, latestValue: undefined as unknown as boolean } }, 'detector.latestValue'],
    [{ factory: { ...task11.factory, branchOf: undefined as unknown as TaskFamily['factory']['branchOf'] } }, 'factory.branchOf'],
    [{ factory: { ...task11.factory, remainderRank: Number.NaN } }, 'factory.remainderRank'],
    [{ id: 'potassium' as 'task11' }, 'id'],
  ];
  for (const [over, part] of cases) {
    const problems = familyProblems({ ...task11, ...over });
    assert.ok(
      problems.some((p) => p.startsWith(part)),
      `${part}: ${problems.join('; ')}`,
    );
  }
  // 'none' is an explicit declaration, not a missing one
  assert.deepEqual(familyProblems({ ...task11, planted: 'none' }), []);
  assert.throws(() => registerFamily(FAMILIES.task5), /already registered/);
  assert.deepEqual(FAMILY_IDS, BUILT_INS, 'refused families are not registered');
});

// ---- a registered family flows into every consumer --------------------------------------------------------------------

test('registration: ids, kinds, lookups and names', () => {
  registerFamily(task11);
  assert.deepEqual(FAMILY_IDS, [...BUILT_INS, 'task11']);
  assert.equal(QUERY_FAMILIES.at(-1), 'task11');
  assert.ok(!(ACTION_FAMILIES as string[]).includes('task11'));
  assert.ok(isFamilyId('task11'));
  assert.equal(familyKind('task11'), 'query');
  assert.equal(getFamily('task11_7'), task11);
  assert.equal(familyLabel('task11'), 'task11 — latest potassium');
  assert.equal(priorRounds('task11'), 3);
});

test('loader: records of the family are accepted and need its record key', () => {
  const rec = { id: 'task11_1', instruction: task11.instruction({ mrn: 'S9000001' }), context: CONTEXT, eval_MRN: 'S9000001' };
  assert.equal(validateTasks([rec], 'set.json').length, 1);
  const { eval_MRN: _drop, ...noMrn } = rec;
  assert.throws(
    () => validateTasks([noMrn], 'set.json'),
    (e: unknown) => e instanceof TaskSetError && /task11 records need "eval_MRN"/.test(e.message),
  );
  assert.throws(() => validateTasks([{ ...rec, id: 'task12_1' }], 'set.json'), /unknown task family "task12" \(known: .*task10, task11\)/);
});

test('world: the plant request is the union of the declarations, and the world refuses what it cannot plant', async () => {
  const builtIn = plantRequest(familyList().filter((f) => BUILT_INS.includes(f.id)));
  assert.deepEqual(builtIn, { labs: [...TASK_LAB_CODES], nearDuplicates: true });
  assert.deepEqual(builtIn, { ...PLANTABLE, labs: [...PLANTABLE.labs] });
  assert.deepEqual(plantRequest([task11]), { labs: ['K'], nearDuplicates: false });
  assert.deepEqual(plantRequest([FAMILIES.task10, FAMILIES.task1, task11, FAMILIES.task3]), { labs: ['K', 'A1C'], nearDuplicates: true });
  // the world plants the same bytes whatever the request
  const a = buildSynthetic({ seed: 5, patients: 9 });
  const b = buildSynthetic({ seed: 5, patients: 9, plant: plantRequest() });
  assert.deepEqual(JSON.stringify([b.patients, b.facts]), JSON.stringify([a.patients, a.facts]));
  const hgb = { ...task11, id: 'task95', planted: { labs: ['HGB' as 'K'] } } as TaskFamily;
  assert.throws(() => buildSynthetic({ seed: 5, patients: 9, plant: plantRequest([hgb]) }), /cannot plant lab "HGB" \(plantable: MG, K, GLU, A1C\)/);
  await assert.rejects(loadWorld({ world: 'synthetic', seed: 5, patients: 9, plant: plantRequest([...familyList(), hgb]) }), /cannot plant lab "HGB"/);
});

test('episode and grading: the expert solves generated tasks and gradeOutput dispatches to the family grader', async () => {
  const world = await loadWorld({ world: 'synthetic', seed: 2, patients: 12, plant: plantRequest() });
  const fhir = handlerTransport(createFhirHandler(world.store));
  const access = { apiBase: OFFICIAL_API_BASE, fhir };
  let seed = 1;
  const rng = { next: () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646 };
  const gen = await getFamily('task11').generate(access, { rng, patients: world.patientIds, count: 12 });
  assert.ok(gen.length >= 6);
  const byBranch = new Set(gen.map((g) => g.branch));
  assert.deepEqual([...byBranch].sort(), ['data_absent', 'data_present']);
  const facts = new Map(world.facts!.map((f) => [f.mrn, f]));
  for (const g of gen) assert.equal(g.branch, task11.factory.branchOf(facts.get(g.patient!)!), g.task.id);
  const agent = createAgent('oracle');
  for (const [index, g] of gen.entries()) {
    const { output } = await runEpisode({ index, task: g.task, agent, fhir, apiBase: OFFICIAL_API_BASE });
    const r = await gradeOutput(g.task, output, access);
    assert.equal(r.correct, true, `${g.task.id}: ${JSON.stringify(r.checks)}`);
    assert.equal(r.branch, g.branch);
    assert.deepEqual(r.reference, g.facts.reference);
  }
});

test('factory: hints, boundary tags, paraphrases, remainder order and default families come from the registry', () => {
  const f = buildSynthetic({ seed: 3, patients: 20 }).facts;
  const hints = branchHints('task11', f)!;
  assert.deepEqual([...hints.keys()].sort(), ['data_absent', 'data_present']);
  assert.deepEqual(
    hints.get('data_absent'),
    f.filter((x) => x.k.latest === null).map((x) => x.mrn),
  );
  const low = f.find((x) => x.k.latest !== null)!;
  assert.deepEqual(boundaryTags('task11', low), [`K11=${low.k.latest!.value}`]);
  assert.equal(branchHints('task12', f), null);

  const t: TaskCase = { id: 'task11_3', instruction: task11.instruction({ mrn: 'S9123456' }), context: CONTEXT, eval_MRN: 'S9123456' };
  assert.deepEqual(paraphraseTask(t, 4), { ...t, instruction: 'Latest serum potassium of S9123456?' });
  assert.equal(paraphraseTask({ ...t, eval_MRN: undefined }, 0), null);

  assert.deepEqual(remainderOrder(), ['task5', 'task9', 'task10', 'task11', 'task3', 'task8', 'task1', 'task2', 'task4', 'task6', 'task7']);
  const q = familyQuotas([...FAMILY_IDS], 11 * 10 + 4, null);
  assert.deepEqual(
    FAMILY_IDS.filter((id) => q.get(id) === 11),
    ['task5', 'task9', 'task10', 'task11'],
  );
  assert.deepEqual(defaultParams().families, [...BUILT_INS, 'task11']);
});

test('factory: a corpus of the registered family is synthesized, solved, graded and paraphrased', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ehrgym-family-'));
  try {
    const out = join(dir, 'sft');
    // runtime-registered families live in this process: keep episodes on the main thread (workers: 0)
    const params = defaultParams({ families: ['task11'], perFamily: 4, patients: 40, out, tokenizer: 'estimate', augment: ['paraphrase'] });
    await generateCorpus({ params, deps: realDeps(), workers: 0, concurrency: 2 });
    const rows = readFileSync(join(out, 'train.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { meta: { task_family: string; branch: string; augmentation: string[]; task: TaskCase } });
    assert.ok(rows.length >= 4);
    assert.ok(rows.every((r) => r.meta.task_family === 'task11'));
    assert.deepEqual([...new Set(rows.map((r) => r.meta.branch))].sort(), ['data_absent', 'data_present']);
    const para = rows.filter((r) => r.meta.augmentation.includes('paraphrase'));
    assert.ok(para.length > 0 && para.every((r) => r.meta.task.instruction === `Latest serum potassium of ${r.meta.task.eval_MRN}?`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- report detectors -------------------------------------------------------------------------------------------------

const MRN = 'S1234567';
const BASE = 'http://localhost:8080/fhir/';
const kObs = (value: number, time: string) => ({
  resource: { resourceType: 'Observation', code: { coding: [{ code: 'K' }] }, effectiveDateTime: time, valueQuantity: { value, unit: 'mmol/L' } },
});
function episode(items: Array<[HistoryItem['role'], string]>, result: string): TaskOutput {
  return { index: 0, status: 'completed', result, history: [{ role: 'user', content: 'prompt' }, ...items.map(([role, content]) => ({ role, content }))] };
}

test('report: detectors read the family detector hints', () => {
  assert.deepEqual(familyDetector('task11'), { mrnInInstruction: true, answerIsMrn: false, retrievedValue: true, latestValue: true });
  const info = (family: string): TaskInfo => ({ id: `${family}_1`, family, kind: 'query', mrn: MRN, apiBase: BASE });
  const o = episode(
    [
      ['agent', `GET ${BASE}Observation?patient=${MRN}&code=K`],
      [
        'user',
        `${GET_OK_PREFIX}${JSON.stringify({ resourceType: 'Bundle', entry: [kObs(3.9, '2020-01-01T00:00:00+00:00'), kObs(4.4, '2023-11-12T00:00:00+00:00')] })}${GET_OK_SUFFIX}`,
      ],
      ['agent', 'FINISH([3.9])'],
    ],
    '[3.9]',
  );
  const wrong: GradeResult = { correct: false, reference: [4.4], checks: [] };
  assert.deepEqual(
    DETECTORS['stale-value'](info('task11'), o, wrong).map((x) => x.behaviour),
    ['stale-value'],
  );
  assert.deepEqual(DETECTORS['stale-value'](info('task6'), o, wrong), [], 'a family without latestValue');
  assert.deepEqual(DETECTORS['stale-value'](info('task99'), o, wrong), [], 'an unknown family');

  // the MRN of the question is read for families whose instruction names it
  const graded = { index: 0, id: 'task11_1', family: 'task11', status: 'completed', correct: false, grade: wrong, rounds: 2 };
  const prompt: TaskOutput = { ...o, history: [{ role: 'user', content: renderPrompt({ instruction: task11.instruction({ mrn: MRN }), context: CONTEXT }) }] };
  assert.equal(taskInfoFrom(graded, prompt, BASE).mrn, MRN);
  assert.equal(taskInfoFrom({ ...graded, id: 'task1_1', family: 'task1' }, prompt, BASE).mrn, undefined);
});
