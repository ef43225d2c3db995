/**
 * Corpora of the clinical suite (`ehrgym generate --tasks ehrgym-clinical`): the real pipeline draws the suite's
 * families on its clinical world's train patients only (never a patient of the frozen test split), with paraphrased
 * instructions (never the test template), solves them in the `ehrgym` dialect (PUT updates; the dialect's tools in a
 * tools corpus), grades them on their end state, and the corpus is deterministic, re-executes and re-grades correct
 * row by row, and exports to the trainers and reads back. Bad flag combinations exit 2 naming the flag.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultParams, generateCorpus } from '../src/factory/generate.js';
import { type LoadedWorld, realDeps } from '../src/factory/deps.js';
import { verifyCorpus } from '../src/factory/verify.js';
import { exportCorpus, readAnyCorpus } from '../src/factory/io.js';
import type { GenerateParams } from '../src/factory/corpus.js';
import { CLINICAL_SUITE, suiteFamilies } from '../src/tasks/registry.js';
import { splitOfPatient } from '../src/tasks/suite/splits.js';
import { loadTaskSet } from '../src/tasks/index.js';
import { main } from '../src/cli/index.js';

const root = mkdtempSync(join(tmpdir(), 'ehrgym-suite-corpus-'));
const real = realDeps();
// the clinical world loads once for every corpus of this file (sessions are dropped after each episode)
let world: Promise<LoadedWorld> | undefined;
const deps = { ...real, loadWorld: (...a: Parameters<typeof real.loadWorld>) => (world ??= real.loadWorld(...a)) };
const FAMILIES = suiteFamilies(CLINICAL_SUITE).map((f) => f.id);
const params = (out: string, over: Partial<GenerateParams> = {}): GenerateParams =>
  defaultParams({ perFamily: 2, families: FAMILIES, tasks: CLINICAL_SUITE, evalSet: CLINICAL_SUITE, tokenizer: 'estimate', out, ...over });

function readAll(dir: string): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (const f of readdirSync(dir).sort()) m.set(f, readFileSync(join(dir, f)));
  return m;
}

async function cli(args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const we = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  const prev = process.exitCode;
  try {
    return { code: await main(['node', 'ehrgym', ...args]), err };
  } finally {
    process.stderr.write = we;
    process.exitCode = prev;
  }
}

let text: Awaited<ReturnType<typeof generateCorpus>>;
before(async () => {
  text = await generateCorpus({ params: params(join(root, 'text')), deps });
});
after(() => rmSync(root, { recursive: true, force: true }));

test('a suite corpus: every family and branch from train patients only, paraphrased instructions, graded on the end state', async () => {
  const m = text.manifest;
  assert.equal(m.world.suite, CLINICAL_SUITE);
  assert.equal(m.world.seed, 11);
  assert.equal(m.eval_set.name, CLINICAL_SUITE);
  assert.match(m.command, /--tasks ehrgym-clinical/);
  const { corpus } = readAnyCorpus(join(root, 'text'));
  const rows = Object.values(corpus.splits).flat();
  assert.equal(rows.length, 2 * FAMILIES.length, JSON.stringify(text.drops.slice(0, 3)));
  assert.deepEqual([...new Set(rows.map((r) => r.meta.task_family))].sort(), [...FAMILIES].sort());
  const cw = await world!;
  const test = loadTaskSet(CLINICAL_SUITE).tasks;
  const testPatients = new Set(test.map((t) => t.eval_MRN));
  const testInstructions = new Set(test.map((t) => t.instruction));
  for (const r of rows) {
    assert.ok(!testPatients.has(r.meta.patient), `${r.meta.row_id}: a test patient`);
    assert.ok(cw.mrns.includes(r.meta.patient!), `${r.meta.row_id}: not a train patient`);
    const family = suiteFamilies().find((f) => f.id === r.meta.task_family)!;
    // never the test template: the instruction is one of the family's paraphrases
    assert.ok(!testInstructions.has(r.meta.task.instruction));
    assert.ok(
      family.instructionTemplates.every((tpl) => r.meta.task.instruction !== tpl.replace('{MRN}', String(r.meta.patient))),
      `${r.meta.row_id}: the test template`,
    );
    assert.equal(r.meta.world.suite, CLINICAL_SUITE);
  }
  // the train patients are the clinical world's train split (cohort index ≥ 2 mod 5)
  assert.ok(cw.mrns.length > 0 && cw.mrns.length < 200);
  assert.equal(splitOfPatient(2), 'train');
  // PUT updates are in the corpus (warfarin holds, pharyngitis … as the branches need)
  assert.ok(
    rows.some((r) =>
      (r.messages as Array<{ role: string; content?: unknown }>).some(
        (x) => x.role === 'assistant' && typeof x.content === 'string' && x.content.startsWith('PUT '),
      ),
    ),
    'no PUT update in the corpus',
  );
});

test('deterministic, re-executes and re-grades correct, exports to a trainer and reads back', async () => {
  const again = join(root, 'again');
  await generateCorpus({ params: params(again), deps });
  const a = readAll(join(root, 'text'));
  const b = readAll(again);
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [f, bytes] of a) if (f !== 'README.md' && f !== 'manifest.json') assert.ok(bytes.equals(b.get(f)!), f);
  const v = await verifyCorpus(join(root, 'text'), deps);
  assert.equal(v.failed, 0, JSON.stringify(v.failures.slice(0, 2)));
  assert.equal(v.passed, v.total);
  const ex = await exportCorpus({ dir: join(root, 'text'), format: 'openai', rows: 'trajectory', out: join(root, 'export'), tokenizer: 'estimate' });
  assert.ok(ex.out);
});

test('a tools corpus of the suite lists the ehrgym dialect tools and its update calls re-execute', async () => {
  const dir = join(root, 'tools');
  await generateCorpus({ params: params(dir, { perFamily: 1, protocol: 'tools' }), deps });
  const { corpus } = readAnyCorpus(dir);
  const tools = (corpus as { tools: Array<{ function: { name: string } }> }).tools.map((t) => t.function.name);
  assert.ok(tools.includes('medication_request_update'));
  const v = await verifyCorpus(dir, deps);
  assert.equal(v.failed, 0, JSON.stringify(v.failures.slice(0, 2)));
  await exportCorpus({ dir, format: 'trl', rows: 'trajectory', out: join(root, 'tools-trl'), tokenizer: 'estimate' });
});

test('bad flag combinations exit 2 naming the flag', async () => {
  for (const [args, flag] of [
    [['--tasks', 'nosuch'], /--tasks nosuch/],
    [['--tasks', CLINICAL_SUITE, '--patients', '50'], /--patients 50/],
    [['--tasks', CLINICAL_SUITE, '--world', 'medagentbench'], /--world medagentbench/],
    [['--tasks', CLINICAL_SUITE, '--families', 'task1'], /--families: unknown family task1/],
  ] as const) {
    const r = await cli(['generate', '--out', join(root, 'bad'), '--tokenizer', 'estimate', ...args]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, flag);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
  }
});
