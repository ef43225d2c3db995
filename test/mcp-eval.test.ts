/**
 * `eval --protocol mcp`: every episode discovers and calls its tools through the official SDK client over loopback HTTP
 * (src/agent/mcp-env.ts), in the eval's own episode session. The oracle scores 300/300; oracle, finish-empty and
 * give-up get the same per-task verdicts and transcripts as `--protocol tools`; a call whose arguments cannot travel
 * over MCP is answered exactly as the tools protocol answers it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { openBackend, officialGrader } from '../src/eval/setup.js';
import type { FhirBackend } from '../src/eval/backend.js';
import { runEval, type TaskSet } from '../src/eval/run.js';
import { createAgent } from '../src/agent/create.js';
import { type McpToolHost, startMcpToolHost } from '../src/agent/mcp-env.js';
import { directToolEnvironment } from '../src/agent/tools-loop.js';
import type { Action } from '../src/protocol/action.js';
import { callToAction, functionTools } from '../src/protocol/tools.js';
import { OFFICIAL_API_BASE } from '../src/fhir/types.js';
import { POST_INVALID } from '../src/protocol/text.js';
import type { TaskCase } from '../src/tasks/types.js';
import { cli } from './helpers/cli.js';

const file = 'data/medagentbench/test_data_v2.json';
const bytes = readFileSync(file);
const taskSet: TaskSet = {
  name: 'medagentbench-v2',
  tasks: JSON.parse(bytes.toString('utf8')) as TaskCase[],
  sha256: createHash('sha256').update(bytes).digest('hex'),
};

let backend: FhirBackend;
let host: McpToolHost;

before(async () => {
  backend = await openBackend({ apiBase: OFFICIAL_API_BASE, live: true });
  host = await startMcpToolHost({ apiBase: OFFICIAL_API_BASE, postMode: 'live' });
});

after(async () => {
  await host.close();
  await backend.close();
});

/** A run of `agent` in `protocol`; for `mcp` every episode goes through the MCP host. */
async function run(agent: string, protocol: 'tools' | 'mcp') {
  const out = mkdtempSync(join(tmpdir(), `ehrgym-${protocol}-`));
  const r = await runEval({
    out,
    taskSet,
    agent: createAgent(agent),
    backend,
    grade: officialGrader,
    protocol,
    postMode: 'live',
    concurrency: 8,
    progress: false,
    ...(protocol === 'mcp' ? { toolEnvironment: (e) => host.environment({ sessionId: e.sessionId, fhir: e.session.transport }) } : {}),
  });
  const lines = readFileSync(join(out, 'runs.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { index: number; output: unknown });
  const grades = readFileSync(join(out, 'grades.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { index: number; correct: boolean; status: string; grade: unknown });
  return { r, lines, grades };
}

// Search bundle ids are derived from the session id, and the run id (part of the session id) names the protocol.
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
function transcripts(lines: Array<{ index: number; output: unknown }>): string[] {
  return [...lines].sort((a, b) => a.index - b.index).map((l) => JSON.stringify(l.output).replace(UUID, '<bundle id>'));
}
function verdicts(grades: Array<{ index: number; correct: boolean; status: string; grade: unknown }>): string[] {
  return [...grades].sort((a, b) => a.index - b.index).map((g) => JSON.stringify([g.index, g.correct, g.status, g.grade]));
}

test('oracle over MCP: 300/300, and the same verdicts and transcripts as the tools protocol', async () => {
  const mcp = await run('oracle', 'mcp');
  assert.equal(mcp.r.summary?.correct, 300);
  assert.equal(mcp.r.summary?.total, 300);
  assert.equal(host.sessionCount, 0, 'every episode ended its MCP session');
  const tools = await run('oracle', 'tools');
  assert.deepEqual(verdicts(mcp.grades), verdicts(tools.grades));
  assert.deepEqual(transcripts(mcp.lines), transcripts(tools.lines));
});

for (const agent of ['finish-empty', 'give-up']) {
  test(`${agent} over MCP: the same per-task verdicts as the tools protocol`, async () => {
    const mcp = await run(agent, 'mcp');
    const tools = await run(agent, 'tools');
    assert.equal(mcp.r.summary?.correct, tools.r.summary?.correct);
    assert.deepEqual(verdicts(mcp.grades), verdicts(tools.grades));
    assert.deepEqual(transcripts(mcp.lines), transcripts(tools.lines));
  });
}

test('an episode environment: tools equal functionTools(); every call is answered as the tools protocol answers it', async () => {
  // [tool, arguments text as a model wrote it]: floats kept as written, keys in the model's order, a list repeating its
  // key, a create call whose body is not JSON, a list, Python's NaN (cannot travel as an MCP object: run directly)
  const calls: Array<[string, string]> = [
    ['patient_search', '{"identifier": "S6534835"}'],
    ['observation_search_labs', '{"code": "MG", "patient": "S0636132", "_count": 1.0, "_sort": "-date"}'],
    ['observation_search_vitals', '{"patient": "S6534835", "category": "vital-signs", "date": ["ge2023-11-12", "le2023-11-13"]}'],
    ['condition_search', '{"patient": "S6534835", "category": "problem list & more"}'],
    [
      'observation_create',
      '{"resourceType": "Observation", "status": "final", "code": {"text": "BP"}, "subject": {"reference": "Patient/S6534835"}, "effectiveDateTime": "2023-11-13T10:15:00+00:00", "valueString": "118/77 mmHg"}',
    ],
    ['observation_search_vitals', '{"patient": "S6534835", "date": "ge2023-11-13T10:00:00+00:00"}'],
    ['observation_create', '{"resourceType": "Observation", "status": '],
    ['medication_request_create', '[{"resourceType": "MedicationRequest"}]'],
    ['service_request_create', '{"resourceType": "ServiceRequest", "priority": NaN}'],
    ['service_request_create', ''],
    ['patient_search', '{"identifier": NaN}'],
    [
      'medication_request_create',
      '{"resourceType": "MedicationRequest", "status": "active", "intent": "order", "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 1.50, "unit": "g"}}]}], "subject": {"reference": "Patient/S6534835"}}',
    ],
  ];
  const answers = async (env: Awaited<ReturnType<McpToolHost['environment']>>) => {
    const out: string[] = [];
    for (const [name, args] of calls) {
      const outcome = callToAction(name, args, OFFICIAL_API_BASE);
      assert.ok(outcome.ok && outcome.action.kind !== 'finish', `${name} ${args}`);
      out.push(await env.execute(outcome.action as Extract<Action, { kind: 'get' | 'post' }>, { name, arguments: args }));
    }
    await env.close?.();
    return out;
  };
  const s1 = await backend.openSession('mcp-env-parity');
  const viaMcp = await host.environment({ sessionId: 'mcp-env-parity', fhir: s1.transport });
  assert.equal(JSON.stringify(viaMcp.tools), JSON.stringify(functionTools()));
  assert.equal(host.sessionCount, 1);
  const mcpAnswers = await answers(viaMcp);
  assert.equal(host.sessionCount, 0);
  await s1.close();
  const s2 = await backend.openSession('mcp-env-parity');
  const directAnswers = await answers(directToolEnvironment({ fhir: s2.transport, postMode: 'live' }));
  await s2.close();
  assert.deepEqual(mcpAnswers, directAnswers);
  // what they are: `_count=1.0` as written (JSON.stringify of the object would have sent `_count=1`, a valid count),
  // GETs, a write seen by the later search, the two bodies Python cannot load
  assert.equal(
    mcpAnswers[1],
    'Error in sending the GET request: 400 Client Error: Bad Request for url: http://localhost:8080/fhir/Observation?code=MG&patient=S0636132&_count=1.0&_sort=-date&_format=json',
  );
  assert.match(mcpAnswers[0]!, /^Here is the response from the GET request:\n/);
  assert.match(mcpAnswers[4]!, /^POST request accepted and executed successfully\. Location: http:\/\/localhost:8080\/fhir\/Observation\/\d+\/_history\/1\./);
  assert.ok(mcpAnswers[5]!.includes('118/77 mmHg'));
  assert.equal(mcpAnswers[6], POST_INVALID);
  assert.equal(mcpAnswers[9], POST_INVALID);
});

test('the eval host refuses an initialize that names no registered episode session', async () => {
  const res = await fetch(host.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-ehrgym-session': 'not-an-episode' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 7,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    }),
  });
  assert.equal(res.status, 400);
  const body = (await res.json()) as { id: number; error: { message: string } };
  assert.equal(body.id, 7);
  assert.match(body.error.message, /no episode session "not-an-episode"/);
  assert.equal(host.sessionCount, 0);
});

test('ehrgym eval --protocol mcp: the CLI starts the loopback MCP host, scores the oracle and records protocol mcp', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'ehrgym-mcp-cli-')), 'run');
  const r = await cli('eval', '--agent', 'oracle', '--protocol', 'mcp', '--tasks-filter', 'task3,task8', '--out', out, '--json', '--no-progress');
  assert.equal(r.code, 0, r.err);
  const summary = JSON.parse(r.out) as { correct: number; total: number };
  assert.deepEqual([summary.correct, summary.total], [60, 60]);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { protocol: string; postMode: string };
  assert.deepEqual([manifest.protocol, manifest.postMode], ['mcp', 'live']);
});
