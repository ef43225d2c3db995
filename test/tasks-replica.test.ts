/**
 * The task layer against the replica world (loadWorld medagentbench + in-process transport):
 * - parity: the third-party u9401066 run's answers and POSTs, rebuilt as AgentBench outputs, get exactly the official
 *   grader's verdicts (295 correct; task7_24 and task10_13/14/20/24 incorrect);
 * - branch labels and references equal expected_answers_v2.DERIVED.json;
 * - the expert solver passes its own grader on all 300 v2 tasks (every variant).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadWorld } from '../src/worlds/index.js';
import { createFhirApp } from '../src/fhir/server.js';
import { inProcessTransport } from '../src/fhir/client.js';
import type { FhirTransport } from '../src/fhir/types.js';
import type { HistoryItem, TaskOutput } from '../src/tasks/types.js';
import { loadTaskSet } from '../src/tasks/loader.js';
import { getFamily } from '../src/tasks/registry.js';
import { gradeOutput } from '../src/tasks/grade.js';
import { POST_ACCEPTED_REPLY } from '../src/tasks/common.js';
import { pyEquals } from '../src/tasks/pysem.js';
import { BASE, runMini } from './helpers/tasks-fake.js';

const REF = 'test/fixtures/medagentbench';
const v2 = loadTaskSet('medagentbench-v2');
let fhir: FhirTransport;

before(async () => {
  const world = await loadWorld({ world: 'medagentbench' });
  fhir = inProcessTransport(createFhirApp(world.store));
});

interface AgentResult {
  task_id: string;
  answer: string;
  post_history: HistoryItem[];
}

test('parity: u9401066 v2 run regraded against the replica equals the official verdicts', async () => {
  const results = (JSON.parse(readFileSync(`data/third-party/u9401066-medagent-copilot/v2_agent_results.json`, 'utf8')) as { results: AgentResult[] }).results;
  const evaluation = (
    JSON.parse(readFileSync(`data/third-party/u9401066-medagent-copilot/v2_evaluation.json`, 'utf8')) as {
      details: Array<{ task_id: string; correct: boolean }>;
    }
  ).details;
  const official = new Map(evaluation.map((d) => [d.task_id, d.correct]));
  const byId = new Map(results.map((r) => [r.task_id, r]));
  assert.equal(results.length, 300);
  const incorrect: string[] = [];
  const disagreements: string[] = [];
  for (const [index, task] of v2.tasks.entries()) {
    const r = byId.get(task.id)!;
    const history: HistoryItem[] = [{ role: 'user', content: 'PROMPT' }];
    for (const h of r.post_history) {
      if (h.role !== 'agent') continue;
      history.push({ role: 'agent', content: h.content }, { role: 'user', content: POST_ACCEPTED_REPLY });
    }
    history.push({ role: 'agent', content: `FINISH(${r.answer})` });
    const output: TaskOutput = { index, status: 'completed', result: r.answer, history };
    const g = await gradeOutput(task, output, { apiBase: BASE, fhir });
    assert.equal(g.exception, undefined, `${task.id}: ${g.exception}`);
    if (!g.correct) incorrect.push(task.id);
    if (g.correct !== official.get(task.id)) disagreements.push(`${task.id}: ours ${g.correct}, official ${official.get(task.id)}`);
  }
  assert.deepEqual(disagreements, []);
  assert.deepEqual(incorrect, ['task7_24', 'task10_13', 'task10_14', 'task10_20', 'task10_24']);
});

test('graders report the DERIVED branch and reference for every v2 task', async () => {
  const derived = (
    JSON.parse(readFileSync(`${REF}/expected_answers_v2.DERIVED.json`, 'utf8')) as { tasks: Array<{ id: string; branch: string; expected_finish: unknown }> }
  ).tasks;
  const byId = new Map(derived.map((d) => [d.id, d]));
  const bad: string[] = [];
  for (const task of v2.tasks) {
    const d = byId.get(task.id)!;
    const g = await getFamily(task.id).grade(task, { index: 0, status: 'completed', result: 'x', history: [] }, { apiBase: BASE, fhir });
    if (g.branch !== d.branch) bad.push(`${task.id}: branch ${g.branch} vs ${d.branch}`);
    if (d.expected_finish !== null && !['task3', 'task8'].includes(task.id.split('_')[0]) && !pyEquals(g.reference, d.expected_finish)) {
      bad.push(`${task.id}: reference ${JSON.stringify(g.reference)} vs ${JSON.stringify(d.expected_finish)}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('expert solver passes the official grader on all 300 v2 tasks, every variant', async () => {
  const failures: string[] = [];
  let episodes = 0;
  for (const task of v2.tasks) {
    const fam = getFamily(task.id);
    for (const variant of fam.variants) {
      const out = await runMini(task, fam, fhir, { variant });
      const g = await fam.grade(task, out, { apiBase: BASE, fhir });
      episodes++;
      if (!g.correct)
        failures.push(
          `${task.id}/${variant}: ${out.status} ${JSON.stringify(out.result)} ${JSON.stringify(g.checks.filter((c) => !c.pass))} ${g.exception ?? ''}`,
        );
    }
  }
  assert.deepEqual(failures, []);
  assert.ok(episodes >= 300 * 2);
});
