/**
 * The clinical suite in the three protocols (`--tasks ehrgym-clinical`, its shipped test split on its clinical world,
 * writes live): the oracle scores 100 % in text (every task), tools and MCP (one task of every family and branch) with
 * the same actions in each (PUT updates included),
 * `FINISH([])` scores 0 with every failure in class `lookup`, and the report shows the checkpoints: mean score and
 * failure classes per family, score and failure class per task.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEval } from '../src/eval/run.js';
import { openBackend, officialGrader, openTaskSet, worldOfTaskSet } from '../src/eval/setup.js';
import type { EpisodeSession, FhirBackend } from '../src/eval/backend.js';
import { type McpToolHost, startMcpToolHost } from '../src/agent/mcp-env.js';
import { createAgent } from '../src/agent/create.js';
import { taskDialect } from '../src/protocol/dialect.js';
import type { Protocol } from '../src/protocol/action.js';
import type { HistoryItem, TaskCase } from '../src/tasks/types.js';
import { suiteFamilies } from '../src/tasks/registry.js';
import { TEST_PER_FAMILY } from '../src/tasks/suite/splits.js';
import { buildReport, renderReport } from '../src/report/index.js';
import { regradeRuns } from '../src/eval/grade.js';

/** The shipped test split: TEST_PER_FAMILY tasks per suite family. */
const FAMS = suiteFamilies();
const N = TEST_PER_FAMILY * FAMS.length;

const API = 'http://localhost:8080/fhir/';
let backend: FhirBackend;
let mcp: McpToolHost;
let tmp: string;

before(async () => {
  const set = openTaskSet('ehrgym-clinical');
  backend = await openBackend({ apiBase: API, ...worldOfTaskSet(set, {}), live: true });
  mcp = await startMcpToolHost({ apiBase: API, postMode: 'live' });
  tmp = mkdtempSync(join(tmpdir(), 'ehrgym-suite-'));
});
after(async () => {
  await mcp.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function run(agent: string, protocol: Protocol, only?: ReadonlySet<number>) {
  const out = join(tmp, `${agent}-${protocol}`);
  const full = openTaskSet('ehrgym-clinical');
  // a subset keeps the full set's order; its indices are mapped back below
  const keep = only ? full.tasks.map((_, i) => i).filter((i) => only.has(i)) : full.tasks.map((_, i) => i);
  await runEval({
    out,
    taskSet: only ? { ...full, tasks: keep.map((i) => full.tasks[i]!) } : full,
    agent: createAgent(agent),
    backend,
    grade: officialGrader,
    apiBase: API,
    protocol,
    postMode: 'live',
    ...(protocol === 'mcp'
      ? {
          toolEnvironment: (e: { sessionId: string; session: EpisodeSession; task: TaskCase }) =>
            mcp.environment({ sessionId: e.sessionId, fhir: e.session.transport, dialect: taskDialect(e.task) }),
        }
      : {}),
    concurrency: 4,
    progress: false,
    emptyReplyStreak: 0,
  });
  const grades = readFileSync(join(out, 'grades.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .map((g) => ({ ...g, index: keep[g.index]! }));
  const actions = new Map<number, string[]>();
  for (const line of readFileSync(join(out, 'runs.jsonl'), 'utf8').trim().split('\n')) {
    const r = JSON.parse(line);
    actions.set(
      keep[r.index]!,
      (r.output.history as HistoryItem[]).filter((h) => h.role === 'agent').map((h) => h.content),
    );
  }
  return { out, grades, actions };
}

test('oracle 100 % in text (every task), tools and MCP (a task of every family and branch) with identical actions; FINISH([]) 0 %, failures of class lookup', async () => {
  const text = await run('oracle', 'text');
  assert.equal(text.grades.length, N);
  // tools and MCP: the first task of each family × branch (every branch's checkpoints and writes, in a seventh of the time)
  const seen = new Set<string>();
  const sample = new Set<number>();
  for (const g of [...text.grades].sort((a, b) => a.index - b.index)) {
    const k = `${g.family}|${g.grade.branch}`;
    if (!seen.has(k)) sample.add(g.index);
    seen.add(k);
  }
  assert.equal(
    sample.size,
    FAMS.reduce((n, f) => n + f.branches.length, 0),
    'every family and branch is in the split',
  );
  const oracle = [text, await run('oracle', 'tools', sample), await run('oracle', 'mcp', sample)];
  for (const [k, r] of oracle.entries()) {
    assert.equal(r.grades.length, k === 0 ? N : sample.size);
    assert.ok(
      r.grades.every((g) => g.correct && g.grade.score === 1),
      `${['text', 'tools', 'mcp'][k]}: ${r.grades.filter((g) => !g.correct).map((g) => g.id)}`,
    );
  }
  const sorted = (m: Map<number, string[]>) => [...m].sort((a, b) => a[0] - b[0]);
  const textOnSample = new Map([...text.actions].filter(([i]) => sample.has(i)));
  assert.deepEqual(sorted(oracle[1]!.actions), sorted(textOnSample));
  assert.deepEqual(sorted(oracle[2]!.actions), sorted(textOnSample));
  assert.ok(
    [...oracle[0]!.actions.values()].some((a) => a.some((x) => x.startsWith('PUT '))),
    'the oracle updates orders',
  );
  // `ehrgym grade`: the log alone regrades the same (writes replayed into fresh scratch sessions)
  const again = await regradeRuns({
    taskSet: openTaskSet('ehrgym-clinical'),
    runsPath: join(oracle[0]!.out, 'runs.jsonl'),
    grade: officialGrader,
    ctx: { apiBase: API, fhir: backend.base, openSession: (name) => backend.openSession(name) },
  });
  assert.equal(again.graded.filter((g) => g.correct).length, N);
  assert.deepEqual(
    again.graded.map((g) => g.grade.checks.map((c) => c.name)),
    oracle[0]!.grades.sort((a, b) => a.index - b.index).map((g) => g.grade.checks.map((c: { name: string }) => c.name)),
  );
  const fe = await run('finish-empty', 'text');
  assert.ok(fe.grades.every((g) => !g.correct && g.grade.failureClass === 'lookup'));

  const data = buildReport([fe.out, oracle[0]!.out]);
  const cp = data.runs[0]!.checkpoints!;
  assert.deepEqual(
    cp.perFamily.map((f) => [f.family, f.tasks, f.correct, f.classes]),
    FAMS.map((f) => [f.id, TEST_PER_FAMILY, 0, { lookup: TEST_PER_FAMILY }]),
  );
  assert.equal(cp.tasks.length, N);
  // the first failure is the family's lookup of the decisive value (its first checkpoint after `finished`)
  const lookupOf = (id: string, branch: string) => FAMS.find((f) => id.startsWith(`${f.id}_`))!.checkpoints[branch]![1];
  assert.ok(cp.tasks.every((t) => t.failureClass === 'lookup' && t.firstFailed === lookupOf(t.id, t.branch)));
  assert.ok(data.runs[1]!.checkpoints!.perFamily.every((f) => f.meanScore === 1));
  assert.ok(
    cp.perFamily.every((f) => f.meanScore === 0),
    'no partial credit for FINISH([])',
  );
  const { markdown, html } = await renderReport(data);
  assert.match(markdown, /### Checkpoints: finish-empty-text/);
  assert.match(markdown, /\| warfarin — INR-guided warfarin management \| 0\/28 \| 0\.000 \| 28 \| 0 \| 0 \| 0 \| 0 \|/);
  assert.match(html, /<h3>Checkpoints: finish-empty-text<\/h3>/);
});
