/**
 * End to end: `ehrgym eval --agent openai:<model>` against the in-repo mock server through the real `openai` SDK, on
 * the embedded replica. Each task gets a scripted behaviour; statuses and verdicts are those the official harness and
 * grader give (reasoning in the comments).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { startMockOpenAI, type MockRequest, type MockResponse } from '../src/agent/mock-openai.js';
import type { TaskCase } from '../src/tasks/types.js';

const all: TaskCase[] = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8'));
const byId = (id: string) => all.find((t) => t.id === id)!;
const BP = (mrn: string) =>
  `POST http://localhost:8080/fhir/Observation\n{"resourceType": "Observation", "status": "final", "category": [{"coding": [{"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs", "display": "Vital Signs"}]}], "code": {"text": "BP"}, "subject": {"reference": "Patient/${mrn}"}, "effectiveDateTime": "2023-11-13T10:15:00+00:00", "valueString": "118/77 mmHg"}`;
const getMg = (mrn: string) => `GET http://localhost:8080/fhir/Observation?patient=${mrn}&code=MG`;

type Case = { replies: MockResponse[]; status: string; correct: boolean; faults?: (req: MockRequest) => MockResponse | undefined };
const cases: Record<string, Case> = {
  // prose → agent invalid action; result None is not graded
  task2_1: { replies: ['The patient is 60 years old.'], status: 'agent invalid action', correct: false },
  // a <think> block before FINISH is not stripped by the harness
  task2_2: { replies: ['<think>DOB 1943-02-11</think>\nFINISH([80])'], status: 'agent invalid action', correct: false },
  // ```json fence leaves "json" in front of FINISH
  task1_1: { replies: ['```json\nFINISH(["S6534835"])\n```'], status: 'agent invalid action', correct: false },
  // lowercase finish
  task1_2: { replies: ['finish(["S6426560"])'], status: 'agent invalid action', correct: false },
  // trailing spaces and a Python-only whitespace char are stripped; answer exact
  task1_3: { replies: ['\x1cFINISH(["S1986380"])  \n'], status: 'completed', correct: true },
  // fenced POST: accepted by the harness, invisible to extract_posts (raw first line is ```), so 0 posts
  task3_1: { replies: ['```\n' + BP('S2380121') + '\n```', 'FINISH([])'], status: 'completed', correct: false },
  // the same POST unfenced passes
  task3_2: { replies: [BP('S1353305'), 'FINISH([])'], status: 'completed', correct: true },
  // invalid POST JSON → "Invalid POST request"; the grader finds no accepted POST
  task8_1: { replies: ['POST http://localhost:8080/fhir/ServiceRequest\n{"resourceType": ServiceRequest}', 'FINISH([])'], status: 'completed', correct: false },
  // 8 GETs → task limit reached (would have passed the no-data branch if graded)
  task5_1: { replies: Array.from({ length: 8 }, () => getMg('S6315806')), status: 'task limit reached', correct: false },
  // context-length 400 on the second call → agent context limit
  task5_2: { replies: [getMg('S6541353'), { fault: 'context-limit' }], status: 'agent context limit', correct: false },
  // 429 twice, then a correct answer (Mg 2.0 > 1.9: no order, [2.0] accepted)
  task5_3: {
    replies: [getMg('S0636132'), 'FINISH([2.0])'],
    status: 'completed',
    correct: true,
    faults: (r) => (r.turn === 1 && r.attempt <= 2 ? { fault: 'rate-limit', retryAfterMs: 5 } : undefined),
  },
  // no-data branch: FINISH content is never read, even unparseable
  task5_4: { replies: ['FINISH(oops)'], status: 'completed', correct: true },
  // a 500 then success
  task7_1: { replies: ['FINISH([123.0])'], status: 'completed', correct: true, faults: (r) => (r.attempt === 1 ? { fault: 'server-error' } : undefined) },
  // connection reset then success; mean 97.0 within 0.1
  task6_1: { replies: ['FINISH([97.05])'], status: 'completed', correct: true, faults: (r) => (r.attempt === 1 ? { fault: 'reset' } : undefined) },
  // "POST" anywhere in an agent message trips check_has_post (K 3.9: no POST allowed)
  task9_1: { replies: ['FINISH(["POST"])'], status: 'completed', correct: false },
  // -1 when no Mg within 24 h
  task4_1: { replies: [getMg('S3032536'), 'FINISH([-1])'], status: 'completed', correct: true },
};

test('mock model through the SDK: official statuses and verdicts', async () => {
  const tasks = Object.keys(cases).map(byId);
  const byInstruction = new Map(tasks.map((t) => [t.instruction, t.id]));
  const mock = await startMockOpenAI({
    model: 'mock-e2e',
    script: (req) => {
      const q = req.prompt.slice(req.prompt.indexOf('\nQuestion: ') + '\nQuestion: '.length);
      const c = cases[byInstruction.get(q)!];
      return c.faults?.(req) ?? c.replies[req.turn];
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'ehrgym-mock-'));
  const taskFile = join(dir, 'mock-e2e.json');
  writeFileSync(taskFile, JSON.stringify(tasks));
  const secret = 'sk-e2e-DO-NOT-LOG-777';
  process.env.EHRGYM_E2E_KEY = secret;
  const runDir = join(dir, 'run');
  let res: { code: number; out: string; err: string };
  try {
    res = await cli(
      'eval',
      '--tasks',
      taskFile,
      '--agent',
      'openai:mock-e2e',
      '--base-url',
      mock.url,
      '--api-key-env',
      'EHRGYM_E2E_KEY',
      '--extra',
      '{"chat_template_kwargs":{"enable_thinking":false}}',
      '--out',
      runDir,
      '--concurrency',
      '4',
      '--json',
    );
  } finally {
    delete process.env.EHRGYM_E2E_KEY;
    await mock.close();
  }
  const { code, out, err } = res;
  assert.equal(code, 0, err);
  const summary = JSON.parse(out);
  const grades = readFileSync(join(runDir, 'grades.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  for (const g of grades) {
    assert.equal(g.status, cases[g.id].status, `${g.id} status`);
    assert.equal(g.correct, cases[g.id].correct, `${g.id} verdict`);
  }
  const nCorrect = Object.values(cases).filter((c) => c.correct).length;
  assert.equal(summary.correct, nCorrect);
  assert.equal(summary.statusCounts['agent invalid action'], 4);
  assert.equal(summary.statusCounts['task limit reached'], 1);
  assert.equal(summary.statusCounts['agent context limit'], 1);
  assert.ok(summary.tokens.prompt > 0 && summary.tokens.completion > 0);
  assert.equal(summary.manifest.agent.config.baseUrls[0], mock.url);
  assert.deepEqual(summary.manifest.agent.config.extra, { chat_template_kwargs: { enable_thinking: false } });
  // faults really happened and were absorbed by retries
  assert.equal(mock.stats.faults['rate-limit'], 2);
  assert.equal(mock.stats.faults['server-error'], 1);
  assert.equal(mock.stats.faults['reset'], 1);
  assert.ok(mock.stats.bodies.every((b: any) => b.temperature === 0 && b.max_tokens === 2048 && b.messages[0].role === 'user'));
  assert.ok(mock.stats.authorizations.has(`Bearer ${secret}`));
  // overall.json statuses carry the Correct/Incorrect suffix
  const overall = JSON.parse(readFileSync(join(runDir, 'overall.json'), 'utf8'));
  assert.ok(overall.custom.raw_results.some((r: any) => r.status === 'agent invalid actionIncorrect'));
  assert.equal(overall.validation['agent context limit'], 1 / 16);
  // the key appears in no run file
  for (const f of readdirSync(runDir)) assert.ok(!readFileSync(join(runDir, f), 'utf8').includes(secret), f);
});
