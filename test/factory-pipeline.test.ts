/**
 * End-to-end proof of the data factory on a small corpus: determinism, verification by replay, no evaluation patient
 * anywhere, planted leaks through --collect, exports round-trip, parity catches planted mismatches, bad input.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultParams, generateCorpus } from '../src/factory/generate.js';
import { realDeps } from '../src/factory/deps.js';
import { verifyCorpus } from '../src/factory/verify.js';
import { buildExportFiles, checkExport, exportCorpus, readCorpus } from '../src/factory/io.js';
import { EXPORT_FORMATS, ROW_MODES } from '../src/factory/export.js';
import { buildTrainConfig, TRAINERS } from '../src/factory/train-config.js';
import { FactoryFailure, FactoryInputError } from '../src/factory/errors.js';
import { renderPrompt } from '../src/agent/prompt.js';
import { getOkReply, parseAction } from '../src/agent/parser.js';
import { replicaPatients } from '../src/worlds/medagentbench.js';
import { main } from '../src/cli/index.js';
import { loadWorld } from '../src/worlds/index.js';
import { embeddedBackend } from '../src/eval/backend.js';
import { runEpisode } from '../src/agent/loop.js';
import { PolicyAgent } from '../src/agent/backends/scripted.js';
import { OFFICIAL_API_BASE } from '../src/fhir/types.js';
import type { TaskCase } from '../src/tasks/types.js';
import type { GenerateParams } from '../src/factory/corpus.js';

const root = mkdtempSync(join(tmpdir(), 'ehrgym-factory-'));
const corpusDir = join(root, 'sft');
const deps = realDeps();
const evalTasks = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8')) as TaskCase[];
const params = (over: Partial<GenerateParams> = {}) => defaultParams({ perFamily: 2, patients: 60, validFraction: 0.2, out: corpusDir, ...over });
let firstBytes: Map<string, Buffer>;

function readAll(dir: string): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (const f of readdirSync(dir).sort()) m.set(f, readFileSync(join(dir, f)));
  return m;
}

/** Run the CLI in-process; stderr is captured (stdout is left alone: the test reporter writes there). */
async function cli(args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const we = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  const prev = process.exitCode;
  try {
    const code = await main(['node', 'ehrgym', ...args]);
    return { code, err };
  } finally {
    process.stderr.write = we;
    process.exitCode = prev;
  }
}

before(async () => {
  await generateCorpus({ params: params(), deps });
  firstBytes = readAll(corpusDir);
});
after(() => rmSync(root, { recursive: true, force: true }));

test('same seed and flags give byte-identical files (second run over the same folder, one at a time, in a worker thread)', async () => {
  assert.ok(firstBytes.has('train.jsonl') && firstBytes.has('valid.jsonl') && firstBytes.has('manifest.json') && firstBytes.has('README.md'));
  await generateCorpus({ params: params(), deps, concurrency: 1, workers: 1 });
  const second = readAll(corpusDir);
  assert.deepEqual([...second.keys()], [...firstBytes.keys()]);
  for (const [f, b] of firstBytes) assert.ok(b.equals(second.get(f)!), `${f} differs between runs`);
  const m = JSON.parse(firstBytes.get('manifest.json')!.toString());
  assert.equal(m.counts.total, 20);
  assert.equal(Object.keys(m.counts.per_family).length, 10);
  assert.ok(m.counts.splits.valid > 0 && m.counts.splits.train + m.counts.splits.valid === 20);
  assert.match(firstBytes.get('README.md')!.toString(), /ehrgym generate --out .* --seed 1 --per-family 2 --world synthetic --patients 60/);
});

test('every row of the generated corpus re-executes over HTTP and passes the grader', async () => {
  const r = await verifyCorpus(corpusDir, deps);
  assert.equal(r.total, 20);
  assert.equal(r.failed, 0, JSON.stringify(r.failures));
  assert.equal(r.passed, 20);
});

test('rows are byte-identical to the episodes `ehrgym eval` runs on the same world and session', async () => {
  const corpus = readCorpus(corpusDir);
  const rows = [...corpus.splits.train!, ...(corpus.splits.valid ?? [])];
  const world = await loadWorld({ world: 'synthetic', seed: 1, patients: 60 });
  assert.equal(world.fingerprint, rows[0]!.meta.world.fingerprint);
  const backend = embeddedBackend(world.store, { name: 'synthetic', seed: 1, fingerprint: world.fingerprint }, OFFICIAL_API_BASE);
  for (const r of rows) {
    const turns = r.messages.filter((m) => m.role === 'assistant').map((m) => m.content);
    const session = await backend.openSession(r.meta.session!);
    const agent = new PolicyAgent('replay', (_t, h) => turns[h.filter((x) => x.role === 'agent').length]!);
    const res = await runEpisode({ index: 0, task: r.meta.task, agent, fhir: session.transport, prompt: renderPrompt(r.meta.task) });
    await session.close();
    assert.deepEqual(
      res.output.history!.map((h) => h.content),
      r.messages.map((m) => m.content),
      r.meta.row_id,
    );
    assert.equal(res.output.status, 'completed');
  }
});

test('no evaluation MRN or evaluation name+DOB appears anywhere in the corpus folder', () => {
  const mrns = [...new Set(evalTasks.map((t) => t.eval_MRN).filter((m): m is string => !!m))];
  assert.equal(mrns.length, 98);
  const evalSet = new Set(mrns);
  const people = replicaPatients().filter((p) => evalSet.has(p.id!));
  for (const [f, b] of firstBytes) {
    const text = b.toString();
    for (const m of mrns) assert.ok(!text.includes(m), `${f} mentions evaluation MRN ${m}`);
    for (const p of people) {
      const n = p.name[0];
      if (text.includes(p.birthDate))
        assert.ok(!(text.includes(n.family) && n.given.every((g: string) => text.includes(`"${g}"`))), `${f} names ${n.given} ${n.family} ${p.birthDate}`);
    }
  }
});

test('a verify run catches a tampered row', async () => {
  const dir = join(root, 'tampered');
  mkdirSync(dir);
  for (const [f, b] of firstBytes) writeFileSync(join(dir, f), b);
  writeFileSync(join(dir, '.ehrgym.json'), readFileSync(join(corpusDir, '.ehrgym.json')));
  const lines = firstBytes.get('train.jsonl')!.toString().split('\n');
  const row = JSON.parse(lines[0]!);
  const last = row.messages.length - 1;
  row.messages[last].content = row.messages[last].content.replace(/FINISH\(.*\)/s, 'FINISH(["tampered"])');
  lines[0] = JSON.stringify(row);
  writeFileSync(join(dir, 'train.jsonl'), lines.join('\n'));
  const r = await verifyCorpus(dir, deps);
  assert.equal(r.failed, 1);
  assert.equal(r.failures[0]!.line, 1);
  const c = await cli(['verify', dir]);
  assert.equal(c.code, 1);
  assert.match(c.err, /^ehrgym: verify: 1 of 20 rows failed\n$/);
});

test('--collect: a planted evaluation task is caught by the pollution filter; clean passing episodes are merged', async () => {
  // a run folder on the official task set: task4_1 answered correctly (grades.jsonl says so)
  const runA = join(root, 'runA');
  mkdirSync(runA);
  const t = evalTasks.find((x) => x.id === 'task4_1')!;
  const idx = evalTasks.indexOf(t);
  const hist = [
    { role: 'user', content: renderPrompt(t) },
    { role: 'agent', content: `GET http://localhost:8080/fhir/Observation?patient=${t.eval_MRN}&code=MG&_count=5000` },
    { role: 'user', content: getOkReply('{\n  "resourceType": "Bundle",\n  "total": 0\n}') },
    { role: 'agent', content: 'FINISH([-1])' },
  ];
  const line = (index: number, status: string, history: { role: string; content: string }[]) => {
    const act = parseAction(history[history.length - 1]!.content);
    const result = status === 'completed' && act.kind === 'finish' ? act.result : null;
    return JSON.stringify({ index, error: null, info: null, output: { index, status, result, history }, time: { timestamp: 0, str: '' } });
  };
  writeFileSync(join(runA, 'runs.jsonl'), [line(idx, 'completed', hist), line(idx + 1, 'task limit reached', hist)].join('\n') + '\n');
  writeFileSync(
    join(runA, 'grades.jsonl'),
    JSON.stringify({
      index: idx,
      id: t.id,
      family: 'task4',
      status: 'completed',
      correct: true,
      grade: { correct: true, branch: 'data_absent', checks: [] },
      rounds: 2,
    }) + '\n',
  );
  // a run folder on a custom task set of synthetic patients: one passing, one failing episode
  const runB = join(root, 'runB');
  mkdirSync(runB);
  const corpus = readCorpus(corpusDir);
  const src = [...corpus.splits.train!, ...(corpus.splits.valid ?? [])].find((r) => r.meta.task_family === 'task2')!;
  const custom: TaskCase[] = [
    { ...src.meta.task, id: 'task2_1' },
    { ...src.meta.task, id: 'task2_2' },
  ];
  writeFileSync(join(runB, 'tasks.json'), JSON.stringify(custom));
  writeFileSync(
    join(runB, 'summary.json'),
    JSON.stringify({
      manifest: { taskSet: { name: join(runB, 'tasks.json') }, world: { name: 'synthetic', seed: 1, fingerprint: src.meta.world.fingerprint } },
    }),
  );
  const h2 = src.messages.map((m) => ({ role: m.role === 'assistant' ? 'agent' : 'user', content: m.content }));
  // a different final answer so the collected row is not a duplicate of the expert row
  const h2b = h2.map((m, i) => (i === h2.length - 1 ? { ...m, content: m.content.replace(/FINISH\(\[(\d+)\]\)/, 'FINISH([$1.0])') } : m));
  writeFileSync(
    join(runB, 'runs.jsonl'),
    [line(0, 'completed', h2b), line(1, 'completed', h2.slice(0, -1).concat([{ role: 'agent', content: 'FINISH([1])' }]))].join('\n') + '\n',
  );
  // no grades.jsonl in runB: both episodes are re-graded against the world (same fingerprint as this run's)
  const out = join(root, 'collected');
  const r = await generateCorpus({ params: params({ out, collect: [join(runA, 'runs.jsonl'), join(runB, 'runs.jsonl')], validFraction: 0 }), deps });
  const m = r.manifest;
  assert.equal(m.pipeline.collected_read, 4);
  assert.equal(m.pollution.reasons['eval-mrn'], 1);
  assert.equal(m.pollution.reasons['eval-pair'], 1);
  assert.equal(m.counts.origin.collected, 1, JSON.stringify(m.drops));
  assert.equal(m.drops.collect?.['status'], 1);
  assert.equal(m.drops.collect?.['grader'], 1, 'the wrong age is re-graded as incorrect');
  const text = readFileSync(join(out, 'train.jsonl'), 'utf8');
  assert.ok(!text.includes(t.eval_MRN!), 'the planted evaluation episode is not in the corpus');
  const drops = readFileSync(join(out, 'drops.jsonl'), 'utf8');
  assert.match(drops, /"reason":"eval-mrn,eval-pair".*"task_id":"task4_1"/);
});

test('every export format and row mode round-trips to the canonical rows; parity catches a planted mismatch', async () => {
  const corpus = readCorpus(corpusDir);
  for (const format of EXPORT_FORMATS) {
    for (const rows of ROW_MODES) {
      const out = join(root, `export-${format}-${rows}`);
      const s = await exportCorpus({ dir: corpusDir, format, rows, out });
      assert.equal(s.parity.failed, 0);
      assert.ok(existsSync(join(out, 'train.jsonl')) && existsSync(join(out, 'export.json')));
      if (format === 'llamafactory') assert.ok(existsSync(join(out, 'dataset_info.json')));
      const files = Object.fromEntries(
        readdirSync(out)
          .filter((f) => f.endsWith('.jsonl'))
          .map((f) => [f, readFileSync(join(out, f), 'utf8')]),
      );
      assert.deepEqual((await checkExport(corpus, files, format, rows)).issues, [], `${format}/${rows}`);
    }
  }
  // planted mismatches: a changed user turn byte, and an assistant turn that parses to another action
  const { files } = buildExportFiles(corpus, 'trl', 'trajectory');
  const lines = files['train.jsonl']!.split('\n');
  const row = JSON.parse(lines[0]!);
  row.messages[0].content = row.messages[0].content.replace('Context: ', 'Context:  ');
  lines[0] = JSON.stringify(row);
  const bad = { ...files, 'train.jsonl': lines.join('\n') };
  assert.ok((await checkExport(corpus, bad, 'trl', 'trajectory')).issues.length > 0);
  const { files: f2 } = buildExportFiles(corpus, 'openai', 'trajectory');
  const l2 = f2['train.jsonl']!.split('\n');
  const r2 = JSON.parse(l2[0]!);
  r2.messages[1].content = '```\n' + r2.messages[1].content + '\n```';
  l2[0] = JSON.stringify(r2);
  const issues = (await checkExport(corpus, { ...f2, 'train.jsonl': l2.join('\n') }, 'openai', 'trajectory')).issues;
  assert.ok(issues.some((i) => /differs from the canonical row/.test(i)));
});

test('train-config writes QLoRA configs, launch and vLLM serve commands for each trainer', async () => {
  for (const trainer of TRAINERS) {
    const data = join(root, `export-${trainer === 'axolotl' ? 'axolotl' : trainer}-trajectory`);
    const r = buildTrainConfig({ trainer, model: 'Qwen/Qwen3-32B', data, out: join(root, `cfg-${trainer}`) });
    const cfg = Object.entries(r.files).find(([f]) => /\.(ya?ml)$/.test(f))![1];
    assert.match(cfg, /Qwen\/Qwen3-32B/);
    assert.match(cfg, /(lora_r|lora_rank): 32/);
    assert.match(cfg, /lora_alpha: 64/);
    assert.match(cfg, /(learning_rate: 0\.0001)/);
    assert.match(cfg, trainer === 'trl' ? /assistant_only_loss: true/ : trainer === 'axolotl' ? /roles_to_train: \[assistant\]/ : /enable_thinking: false/);
    assert.match(cfg, trainer === 'llamafactory' ? /quantization_bit: 4/ : /load_in_4bit: true/);
    assert.match(r.commands.serve, /--enable-lora/);
    assert.match(r.commands.serve, /--max-lora-rank 32/);
    assert.match(r.commands.serve, /enable_thinking": false/);
    assert.ok(r.sequenceLen >= 8192);
  }
  assert.throws(
    () => buildTrainConfig({ trainer: 'trl', model: 'Qwen/Qwen3-32B', data: join(root, 'export-openai-trajectory'), out: join(root, 'x') }),
    FactoryInputError,
  );
});

test('bad input: one line, non-zero exit, nothing overwritten', async () => {
  const before = readAll(corpusDir);
  let r = await cli(['generate', '--out', corpusDir, '--per-family', '3', '--patients', '60']);
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: --out .* holds a different sft-corpus \(use --force to replace it\)\n$/);
  const afterRun = readAll(corpusDir);
  for (const [f, b] of before) assert.ok(b.equals(afterRun.get(f)!), `${f} was touched`);
  r = await cli(['generate', '--out', join(root, 'n1'), '--families', 'task1,task42']);
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: --families: unknown family task42/);
  r = await cli(['generate', '--out', join(root, 'n2'), '--collect', join(root, 'missing', 'runs.jsonl')]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: --collect .*missing.*runs\.jsonl is unreadable/);
  r = await cli(['generate', '--out', join(root, 'n3'), '--per-family', '40', '--patients', '12', '--families', 'task5']);
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: --size \(--per-family 40\) cannot be filled: task5 yields \d+ of 40/);
  assert.ok(!existsSync(join(root, 'n3')));
  r = await cli(['export', corpusDir, '--format', 'csv', '--out', join(root, 'n4')]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: --format csv is not one of openai, trl, axolotl, llamafactory\n$/);
  r = await cli(['export', join(root, 'nothing'), '--format', 'trl', '--out', join(root, 'n5')]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^ehrgym: DIR .*nothing does not exist\n$/);
  assert.ok(FactoryFailure);
});
