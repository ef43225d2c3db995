/**
 * `ehrgym audit` through the real CLI code path (in-process `main`) on the embedded replica: the degenerate policies'
 * per-family rates on MedAgentBench v2 equal what the official grading rules give them, as derived independently from
 * the reference answers (test/fixtures/medagentbench/expected_answers_v2.DERIVED.json: branch, accepted answers, POSTs
 * allowed or required); the --json shape and key order; what each policy does (its histories); --max-rate; bad flags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { DEGENERATE_POLICIES } from '../src/agent/backends/degenerate.js';
import { expertPolicy } from '../src/agent/create.js';
import { parseAction } from '../src/protocol/text.js';
import { CLINICAL_SUITE, FAMILY_IDS, suiteFamilies } from '../src/tasks/registry.js';
import type { HistoryItem, TaskCase } from '../src/tasks/types.js';

const API = 'http://localhost:8080/fhir/';
const tmp = () => mkdtempSync(join(tmpdir(), 'ehrgym-audit-'));

interface Expected {
  id: string;
  family: string;
  branch: string;
  expected_finish: unknown[];
  accepted_finish: string;
  /** 0: no POST allowed; absent: the branch requires its POSTs (`required_posts`, when listed). */
  posts_allowed?: number;
  required_posts?: Array<{ doseQuantity?: { value?: number; value_approx?: number; tolerance?: number }; rateQuantity?: { value: number } }>;
}
const fixture = JSON.parse(readFileSync('test/fixtures/medagentbench/expected_answers_v2.DERIVED.json', 'utf8')) as { tasks: Expected[] };

/** Whether the official rules accept `answer` (a FINISH list) from an episode that POSTs nothing (`posted` false) or the required POSTs. */
function accepts(t: Expected, answer: unknown[], posted: boolean): boolean {
  if (posted !== (t.posts_allowed !== 0)) return false;
  if (t.accepted_finish.startsWith('anything')) return true;
  if (answer.length === 0) return / or \[\]$/.test(t.accepted_finish);
  return JSON.stringify(answer) === JSON.stringify(t.expected_finish);
}

/** What always-act sends, per family (documented in the family files): the blind dose must be the one required. */
function blindPostsPass(t: Expected): boolean {
  return (t.required_posts ?? []).every((p) => {
    const d = p.doseQuantity;
    if (!d) return true;
    if (t.family === 'task5') return d.value === 1 && p.rateQuantity?.value === 1;
    if (t.family === 'task9') return Math.abs((d.value_approx ?? Number.NaN) - 10) <= (d.tolerance ?? 0);
    return false;
  });
}

const NOTHING_FOUND: Record<string, unknown[] | null> = {
  task1: ['Patient not found'],
  task2: null,
  task3: null,
  task4: [-1],
  task5: [-1],
  task6: [-1],
  task7: [-1],
  task8: null,
  task9: [-1],
  task10: [-1],
};
const ACTS = new Set(['task3', 'task5', 'task8', 'task9', 'task10']);

/** The tasks of v2 each policy passes by the reference answers' rules. */
function expectedPass(policy: string, t: Expected): boolean {
  switch (policy) {
    case 'finish-empty':
    case 'read-then-finish': // reading changes no verdict: the graders never look at GETs
      return accepts(t, [], false);
    case 'finish-nothing-found':
      return accepts(t, NOTHING_FOUND[t.family] ?? [], false);
    case 'give-up':
      return accepts(t, ['unknown'], false);
    case 'always-act':
      return ACTS.has(t.family) ? accepts(t, [], true) && blindPostsPass(t) : accepts(t, [], false);
    case 'modal-answer': {
      const m = modal.get(t.family);
      return m !== undefined && accepts(t, m, false);
    }
    default:
      throw new Error(policy);
  }
}

function expectedRates(policy: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of FAMILY_IDS) {
    const ts = fixture.tasks.filter((t) => t.family === f);
    out[f] = ts.filter((t) => expectedPass(policy, t)).length / ts.length;
  }
  return out;
}

function runs(dir: string, policy: string): Map<string, HistoryItem[]> {
  const tasks: TaskCase[] = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8'));
  const out = new Map<string, HistoryItem[]>();
  for (const line of readFileSync(join(dir, policy, 'runs.jsonl'), 'utf8')
    .trim()
    .split('\n')) {
    const r = JSON.parse(line);
    out.set(tasks[r.index].id, r.output.history);
  }
  return out;
}

/** modal-answer's answer per family, as the run shows it (set by the first test from its audit folder). */
const modal = new Map<string, unknown[]>();

const agentTurns = (h: HistoryItem[]) => h.filter((x) => x.role === 'agent').map((x) => x.content);

test('v2: every policy scores per family what the reference answers say; finish-empty 70/300; --json shape and order; histories', async () => {
  const dir = join(tmp(), 'audit');
  const t0 = performance.now();
  const r = await cli('audit', '--json', '--out', dir, '--concurrency', '16');
  const ms = performance.now() - t0;
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, '', 'no progress or timing on stderr with --json');
  const json = JSON.parse(r.out);
  // modal-answer: one FINISH per task, the same answer across a family, the oracle's most frequent answer there (ties:
  // the earliest task's)
  const oracle = runs(dir, 'oracle');
  const tasksV2: TaskCase[] = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8'));
  for (const f of FAMILY_IDS) {
    const counts = new Map<string, number>();
    for (const t of tasksV2.filter((x) => x.id.split('_')[0] === f)) {
      const fin = agentTurns(oracle.get(t.id)!).at(-1)!;
      counts.set(fin, (counts.get(fin) ?? 0) + 1);
    }
    const top = [...counts].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
    for (const [id, h] of runs(dir, 'modal-answer')) if (id.split('_')[0] === f) assert.deepEqual(agentTurns(h), [top], id);
    modal.set(f, JSON.parse(top.slice('FINISH('.length, -1)));
  }
  assert.deepEqual(Object.keys(json), ['policies']);
  assert.deepEqual(Object.keys(json.policies), [...DEGENERATE_POLICIES]);
  for (const p of DEGENERATE_POLICIES) {
    assert.deepEqual(Object.keys(json.policies[p]), [...FAMILY_IDS], p);
    for (const v of Object.values(json.policies[p])) assert.ok(typeof v === 'number' && v >= 0 && v <= 1);
    assert.deepEqual(json.policies[p], expectedRates(p), p);
  }
  // the known floor: FINISH([]) passes 70 of 300 (task5 28, task9 29, task10 13)
  const fe = json.policies['finish-empty'];
  assert.equal(Math.round(FAMILY_IDS.reduce((s, f) => s + fe[f] * 30, 0)), 70);
  assert.deepEqual([fe.task5 * 30, fe.task9 * 30, fe.task10 * 30].map(Math.round), [28, 29, 13]);
  // a policy that changes nothing on a family of v2 is no check at all: each one passes something finish-empty fails
  assert.ok(json.policies['finish-nothing-found'].task4 > 0.5);
  assert.equal(json.policies['always-act'].task3, 1);
  assert.ok(json.policies['always-act'].task10 > fe.task10);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'audit.json'), 'utf8')), json);
  assert.ok(ms < 60_000, `audit took ${ms} ms`);

  // what each policy did: one FINISH; the nothing-found answers; the expert's GETs then FINISH([]); blind POSTs
  for (const [id, h] of runs(dir, 'finish-empty')) assert.deepEqual(agentTurns(h), ['FINISH([])'], id);
  for (const [id, h] of runs(dir, 'give-up')) assert.deepEqual(agentTurns(h), ['FINISH(["unknown"])'], id);
  for (const [id, h] of runs(dir, 'finish-nothing-found')) {
    const nf = NOTHING_FOUND[id.split('_')[0]];
    assert.deepEqual(agentTurns(h), [`FINISH(${JSON.stringify(nf ?? []).replace(/,/g, ', ')})`], id);
  }
  const tasks: TaskCase[] = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8'));
  const byId = new Map(tasks.map((t) => [t.id, t]));
  for (const [id, h] of runs(dir, 'read-then-finish')) {
    const turns = agentTurns(h);
    assert.equal(turns.at(-1), 'FINISH([])', id);
    // the expert reads before it answers or acts, except in task3 and task8 (it posts at once)
    assert.equal(turns.length >= 2, !['task3', 'task8'].includes(id.split('_')[0]), `${id}: reads`);
    // every message before the last is the GET the expert sends at that point, and the expert's next is no GET
    for (let k = 0; k < turns.length; k++) {
      const next = await expertPolicy(byId.get(id)!, h.slice(0, 1 + 2 * k), { index: 0, task: byId.get(id)!, apiBase: API });
      if (k < turns.length - 1) assert.equal(turns[k], next, `${id} turn ${k + 1}`);
      else assert.notEqual(parseAction(next).kind, 'get', id);
    }
  }
  for (const [id, h] of runs(dir, 'always-act')) {
    const turns = agentTurns(h);
    const fam = id.split('_')[0];
    assert.equal(turns.at(-1), 'FINISH([])', id);
    assert.ok(!turns.some((t) => t.startsWith('GET')), `${id}: reads nothing`);
    const posts = turns.slice(0, -1).map((t) => t.split('\n')[0]);
    const want: Record<string, string[]> = {
      task3: ['Observation'],
      task5: ['MedicationRequest'],
      task8: ['ServiceRequest'],
      task9: ['MedicationRequest', 'ServiceRequest'],
      task10: ['ServiceRequest'],
    };
    assert.deepEqual(
      posts,
      (want[fam] ?? []).map((r) => `POST ${API}${r}`),
      id,
    );
    const mrn = byId.get(id)!.eval_MRN;
    for (const t of turns.slice(0, -1)) assert.equal(JSON.parse(t.slice(t.indexOf('\n') + 1)).subject.reference, `Patient/${mrn}`, id);
    if (fam === 'task5') assert.deepEqual(JSON.parse(turns[0].split('\n')[1]).dosageInstruction[0].doseAndRate[0].doseQuantity, { value: 1, unit: 'g' });
    if (fam === 'task9') assert.equal(JSON.parse(turns[0].split('\n')[1]).dosageInstruction[0].doseAndRate[0].doseQuantity.value, 10);
  }
  rmSync(dir, { recursive: true, force: true });
});

test('the table: rates, marks, ceilings, overall; byte-identical on a rerun; --protocol tools gives the same rates', async () => {
  const args = ['audit', '--families', 'task2,task3,task5', '--no-progress'];
  const a = await cli(...args);
  assert.equal(a.code, 0, a.err);
  assert.match(a.err, /^audit: 6 policies × 90 tasks in \d+\.\d s\n$/);
  const lines = a.out.split('\n');
  assert.equal(lines[0], 'degenerate policies on medagentbench-v2 (90 tasks, protocol text): success rate per family, %');
  const rows = Object.fromEntries(
    lines
      .slice(3, 10)
      .map((l) => l.trim().split(/\s+/))
      .map((c) => [c[0], c.slice(1)]),
  );
  assert.deepEqual(Object.keys(rows), [...DEGENERATE_POLICIES, 'ceiling']);
  assert.deepEqual(rows['finish-empty'], ['0.0', '0.0', '93.3*', '28/90', '31.1%']);
  assert.deepEqual(rows['finish-nothing-found'], ['0.0~', '0.0~', '53.3', '16/90', '17.8%']);
  assert.deepEqual(rows['always-act'], ['0.0~', '100.0*', '6.7', '32/90', '35.6%']);
  // two task2 patients share an age: a fixed answer gets 2 of 30
  assert.deepEqual(rows['modal-answer'], ['6.7*', '0.0', '53.3', '18/90', '20.0%']);
  assert.deepEqual(rows.ceiling, ['6.7', '100.0', '93.3', '60/90', '66.7%']);
  assert.match(a.out, /\nhighest: 100\.0% \(task3 always-act\)\n$/);
  const again = await cli(...args);
  assert.equal(again.out, a.out);

  const text = await cli('audit', '--families', 'task9,task10', '--json');
  const tools = await cli('audit', '--families', 'task9,task10', '--json', '--protocol', 'tools');
  assert.equal(tools.code, 0, tools.err);
  assert.deepEqual(JSON.parse(tools.out), JSON.parse(text.out));
});

test('--max-rate: exit 1 naming each family over it, worst first; exit 0 when none is', async () => {
  const over = await cli('audit', '--families', 'task10,task3', '--max-rate', '0.05', '--json');
  assert.equal(over.code, 1);
  assert.deepEqual(JSON.parse(over.out).policies['always-act'], { task3: 1, task10: 17 / 30 });
  assert.equal(
    over.err,
    'audit: task3: always-act 30/30 (100.0%) > 5.0%\n' +
      'audit: task10: always-act 17/30 (56.7%), finish-empty 13/30 (43.3%), read-then-finish 13/30 (43.3%) > 5.0%\n' +
      'ehrgym: 2 of 2 families exceed --max-rate 0.05\n',
  );
  // v2's task2 and task7 give nothing to an answer without reading; a fixed answer gets a few (shared ages, values)
  const fixed = await cli('audit', '--families', 'task2,task7', '--max-rate', '0', '--json');
  assert.equal(fixed.code, 1);
  assert.deepEqual(JSON.parse(fixed.out).policies['finish-nothing-found'], { task2: 0, task7: 0 });
  assert.equal(
    fixed.err,
    'audit: task7: modal-answer 3/30 (10.0%) > 0.0%\naudit: task2: modal-answer 2/30 (6.7%) > 0.0%\nehrgym: 2 of 2 families exceed --max-rate 0\n',
  );
  const clean = await cli('audit', '--families', 'task2,task7', '--max-rate', '0.1', '--json');
  assert.equal(clean.code, 0, clean.err);
});

test('the clinical suite: each family has its column; no degenerate policy passes more than 5 % (--max-rate 0.05 holds)', async () => {
  const r = await cli('audit', '--tasks', 'ehrgym-clinical', '--max-rate', '0.05', '--json');
  assert.equal(r.code, 0, r.err);
  const policies = JSON.parse(r.out).policies as Record<string, Record<string, number>>;
  assert.deepEqual(Object.keys(policies), [...DEGENERATE_POLICIES]);
  for (const [policy, rates] of Object.entries(policies)) {
    assert.deepEqual(
      Object.keys(rates),
      suiteFamilies(CLINICAL_SUITE).map((f) => f.id),
      policy,
    );
    // a fixed answer is one task's right answer: at most that task (1 of 28) where it needs no write; nothing else passes
    for (const [family, rate] of Object.entries(rates)) assert.ok(policy === 'modal-answer' ? rate <= 1 / 28 : rate === 0, `${policy} on ${family}: ${rate}`);
  }
});

test('the policies are agents: ehrgym eval --agent <policy> runs one', async () => {
  const dir = tmp();
  const want: Record<string, number> = { 'always-act': 17, 'finish-nothing-found': 0, 'read-then-finish': 13 };
  for (const [agent, correct] of Object.entries(want)) {
    const r = await cli('eval', '--agent', agent, '--tasks-filter', 'task10', '--out', join(dir, agent), '--json', '--no-progress');
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.equal(s.manifest.agent.name, agent);
    assert.equal(s.correct, correct, agent);
  }
  rmSync(dir, { recursive: true, force: true });
});

test('bad input: exit 2 naming the flag', async () => {
  const dir = tmp();
  writeFileSync(join(dir, 'x.txt'), 'x');
  const cases: Array<[string[], RegExp]> = [
    [['--max-rate', '1.5'], /^ehrgym: --max-rate must be a number between 0 and 1, got "1\.5"\n$/],
    [['--max-rate', 'five'], /^ehrgym: --max-rate must be a number between 0 and 1, got "five"\n$/],
    [['--families', 'task99'], /^ehrgym: --families: no family "task99" in medagentbench-v2 \(has task1, .*task10\)\n$/],
    [['--families', ','], /^ehrgym: --families: expected a comma-separated list/],
    [['--tasks', join(dir, 'missing.json')], /^ehrgym: --tasks: /],
    [['--protocol', 'smoke'], /^ehrgym: option '--protocol <protocol>' argument 'smoke' is invalid/],
    [['--concurrency', '0'], /^ehrgym: --concurrency must be between 1 and 256, got 0\n$/],
    [['--out', dir], /^ehrgym: --out .*: not empty/],
    [['--out', join(dir, 'x.txt')], /^ehrgym: --out .*x\.txt: is a file, not a folder\n$/],
    [['--agent', 'oracle'], /^ehrgym: unknown option '--agent'/],
  ];
  for (const [args, want] of cases) {
    const r = await cli('audit', ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, want, args.join(' '));
    assert.equal(r.out, '');
  }
  rmSync(dir, { recursive: true, force: true });
});
