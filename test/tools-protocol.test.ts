/**
 * The `tools` protocol: the tool set derived from funcs_v1.json, the call ↔ action mapping, and episodes driven through
 * the real `openai` SDK against the mock OpenAI server (tool calls, malformed arguments, unknown tools, parallel calls,
 * Qwen-style tool text left in the content, replies without tool calls).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { actionToCall, callToAction, functionTools, recoverToolCalls, renderToolsPrompt, TOOL_ERROR_PREFIX, toolSpecs } from '../src/protocol/tools.js';
import { formatAction, GET_OK_PREFIX, POST_ACCEPTED_PREFIX, POST_INVALID } from '../src/protocol/text.js';
import { runToolsEpisode, directToolEnvironment } from '../src/agent/tools-loop.js';
import { OpenAIAgent } from '../src/agent/backends/openai.js';
import { startMockOpenAI, type MockRequest, type MockResponse } from '../src/agent/mock-openai.js';
import { runStatus, MODEL_TOOL_TEXT } from '../src/eval/score.js';
import { loadTaskSet } from '../src/tasks/loader.js';
import { FhirStore } from '../src/fhir/store.js';
import { loadReplica } from '../src/worlds/medagentbench.js';
import { embeddedBackend, type FhirBackend } from '../src/eval/backend.js';

let replica: FhirBackend | undefined;
function openReplicaBackend(): FhirBackend {
  if (!replica) {
    const store = new FhirStore();
    loadReplica(store);
    replica = embeddedBackend(store, { name: 'medagentbench', fingerprint: 'test-replica' }, API);
  }
  return replica;
}

const API = 'http://localhost:8080/fhir/';

test('the tool set: the nine functions of funcs_v1.json unchanged, then finish; names valid for OpenAI', () => {
  const funcs = JSON.parse(readFileSync(new URL('../data/medagentbench/funcs_v1.json', import.meta.url), 'utf8'));
  const specs = toolSpecs();
  assert.deepEqual(
    specs.map((s) => [s.name, s.official]),
    [
      ['condition_search', 'GET {api_base}/Condition'],
      ['observation_search_labs', 'GET {api_base}/Observation'],
      ['observation_search_vitals', 'GET {api_base}/Observation'],
      ['observation_create', 'POST {api_base}/Observation'],
      ['medication_request_search', 'GET {api_base}/MedicationRequest'],
      ['medication_request_create', 'POST {api_base}/MedicationRequest'],
      ['procedure_search', 'GET {api_base}/Procedure'],
      ['service_request_create', 'POST {api_base}/ServiceRequest'],
      ['patient_search', 'GET {api_base}/Patient'],
      ['finish', 'FINISH'],
    ],
  );
  for (let i = 0; i < funcs.length; i++) {
    assert.deepEqual(specs[i].parameters, funcs[i].parameters, specs[i].name);
    assert.equal(specs[i].description, funcs[i].description);
  }
  assert.ok(JSON.stringify(specs[8].parameters).includes('"address-city"'));
  for (const t of functionTools()) assert.match(t.function.name, /^[a-zA-Z0-9_-]{1,64}$/);
  assert.deepEqual(functionTools()[9].function.parameters, {
    type: 'object',
    properties: { answer: { type: 'array', description: 'The answers, in the order the question asks for them.', items: {} } },
    required: ['answer'],
  });
});

test('calls map onto the text protocol actions, and back', () => {
  assert.deepEqual(callToAction('observation_search_labs', '{"patient": "S1", "code": "MG", "date": "ge2023-11-12T10:15:00+00:00"}', API), {
    ok: true,
    action: { kind: 'get', url: `${API}Observation?patient=S1&code=MG&date=ge2023-11-12T10:15:00%2B00:00` },
  });
  // what would break the query is encoded; numbers, lists (repeated keys) and null (omitted)
  assert.deepEqual(callToAction('patient_search', '{"name": ["Mary Ann", "O\'Neil&Co"], "birthdate": "1950-01-01", "_count": 5, "gender": null}', API), {
    ok: true,
    action: { kind: 'get', url: `${API}Patient?name=Mary%20Ann&name=O'Neil%26Co&birthdate=1950-01-01&_count=5` },
  });
  // the create tools send the arguments text as the payload, exactly
  const body = '{"resourceType": "Observation",\n "valueString": "118/77 mmHg"}';
  assert.deepEqual(callToAction('observation_create', body, API), { ok: true, action: { kind: 'post', url: `${API}Observation`, body } });
  assert.deepEqual(callToAction('finish', '{"answer": [2.0, "S1"]}', API), { ok: true, action: { kind: 'finish', answer: '[2.0, "S1"]' } });
  // errors the model can recover from
  for (const [name, args, needle] of [
    ['nope', '{}', 'unknown tool "nope"'],
    ['patient_search', '{"name": ', 'not valid JSON'],
    ['patient_search', '[1]', 'must be a JSON object'],
    ['patient_search', '{"name": {"given": "x"}}', 'argument "name"'],
    ['finish', '{"answers": []}', 'needs the argument "answer"'],
  ] as const) {
    const out = callToAction(name, args, API);
    assert.equal(out.ok, false, `${name} ${args}`);
    if (!out.ok) assert.ok(out.error.includes(needle), out.error);
  }
  // inverse: every action the expert solvers write round-trips
  for (const text of [
    `GET ${API}Observation?patient=S6534835&code=MG&date=ge2023-11-12T10:15:00+00:00&_count=5000`,
    `GET ${API}Observation?patient=S6534835&category=vital-signs&date=ge2023-11-12`,
    `GET ${API}Patient?name=Peter&name=Stafford&birthdate=1932-12-29`,
    `POST ${API}MedicationRequest\n{"resourceType": "MedicationRequest", "status": "active"}`,
    'FINISH([-1])',
  ]) {
    const action = parseTextAction(text);
    const call = actionToCall(action, API);
    const back = callToAction(call.name, call.arguments, API);
    assert.ok(back.ok);
    // a raw `+` (an offset) comes back percent-encoded, the same value for the server
    if (back.ok) assert.equal(formatAction(back.action), text.startsWith('GET') ? text.replace(/\+/g, '%2B') : text);
  }
  assert.equal(actionToCall(parseTextAction(`GET ${API}Observation?patient=S1&category=vital-signs`), API).name, 'observation_search_vitals');
});

function parseTextAction(text: string) {
  const nl = text.indexOf('\n');
  if (text.startsWith('GET ')) return { kind: 'get' as const, url: text.slice(4) };
  if (text.startsWith('POST ')) return { kind: 'post' as const, url: text.slice(5, nl), body: text.slice(nl + 1) };
  return { kind: 'finish' as const, answer: text.slice('FINISH('.length, -1) };
}

test('Qwen/Hermes tool text is read back as tool calls', () => {
  const content = 'Let me look.\n<tool_call>\n{"name": "patient_search", "arguments": {"identifier": "S1"}}\n</tool_call>\n<tool_call>{bad}</tool_call>';
  assert.deepEqual(recoverToolCalls(content), [{ name: 'patient_search', arguments: '{"identifier":"S1"}' }]);
});

/** An episode of task task2_1 (age of a patient) through the SDK, the mock playing `script`. */
async function episode(script: (req: MockRequest) => MockResponse, opts: { recoverToolText?: boolean; toolChoice?: 'required' } = {}) {
  const mock = await startMockOpenAI({ script });
  const backend = openReplicaBackend();
  const session = await backend.openSession(`tools-test-${Math.random()}`);
  try {
    const agent = new OpenAIAgent({ model: 'mock', baseUrls: [mock.url], maxRetries: 0, toolChoice: opts.toolChoice });
    const task = loadTaskSet('medagentbench-v2').tasks.find((t) => t.id === 'task2_1')!;
    const res = await runToolsEpisode({
      index: 0,
      task,
      agent,
      env: directToolEnvironment({ fhir: session.transport }),
      recoverToolText: opts.recoverToolText,
    });
    return { res, bodies: mock.stats.bodies, task };
  } finally {
    await session.close();
    await mock.close();
  }
}

test('an episode through the openai SDK: tools sent, errors recoverable, parallel calls executed in order', async () => {
  const { res, bodies, task } = await episode(
    (req) => {
      if (req.turn === 0) return { content: null, toolCalls: [{ name: 'patient_search', arguments: '{"identifier": ' }] };
      if (req.turn === 1) return { content: 'checking', toolCalls: [{ name: 'lookup_patient', arguments: '{}' }] };
      if (req.turn === 2) {
        return {
          content: null,
          toolCalls: [
            { id: 'a', name: 'patient_search', arguments: '{"identifier": "S2874099"}' },
            { id: 'b', name: 'observation_create', arguments: '{"resourceType": "Observation", ' },
          ],
        };
      }
      return { content: null, toolCalls: [{ name: 'finish', arguments: '{"answer": [60]}' }] };
    },
    { toolChoice: 'required' },
  );
  const out = res.output;
  assert.equal(out.status, 'completed');
  assert.equal(out.result, '[60]');
  assert.equal(res.rounds, 4);
  // the request carries the ten tools and the tool_choice; later requests the transcript with tool_call_ids
  assert.equal((bodies[0].tools as unknown[]).length, 10);
  assert.equal(bodies[0].tool_choice, 'required');
  assert.deepEqual(bodies[0].messages, [{ role: 'user', content: renderToolsPrompt(task) }]);
  const last = bodies[3].messages as Array<Record<string, unknown>>;
  assert.deepEqual(
    last.map((m) => [m.role, m.tool_call_id ?? null]),
    [
      ['user', null],
      ['assistant', null],
      ['tool', 'call_mock_0_0'],
      ['assistant', null],
      ['tool', 'call_mock_1_0'],
      ['assistant', null],
      ['tool', 'a'],
      ['tool', 'b'],
    ],
  );
  const tools = out.messages!.filter((m) => m.role === 'tool').map((m) => m.content);
  assert.ok(tools[0].startsWith(`${TOOL_ERROR_PREFIX}the arguments of patient_search are not valid JSON`), tools[0]);
  assert.ok(tools[1].startsWith(`${TOOL_ERROR_PREFIX}unknown tool "lookup_patient"`), tools[1]);
  assert.ok(tools[2].startsWith(GET_OK_PREFIX), tools[2]);
  assert.equal(tools[3], POST_INVALID);
  // the text history the graders read: one pair per call, the finish last
  assert.deepEqual(
    out.history!.slice(1).map((h) => `${h.role}: ${h.content.split('\n')[0]}`.slice(0, 70)),
    [
      'agent: TOOL_CALL patient_search {"identifier": ',
      `user: ${TOOL_ERROR_PREFIX}the arguments of patient_search are not valid JSON (`.slice(0, 70),
      'agent: TOOL_CALL lookup_patient {}',
      `user: ${TOOL_ERROR_PREFIX}unknown tool "lookup_patient" (the tools are: `.slice(0, 70),
      `agent: GET ${API}Patient?identifier=S2874099`,
      'user: Here is the response from the GET request:',
      `agent: POST ${API}Observation`,
      `user: ${POST_INVALID}`,
      'agent: FINISH([60])',
    ],
  );
});

test('POSTs are executed in the session by default and later reads see them', async () => {
  const payload = JSON.stringify({
    resourceType: 'Observation',
    category: [{ coding: [{ system: 'http://hl7.org/fhir/observation-category', code: 'vital-signs', display: 'Vital Signs' }] }],
    status: 'final',
    code: { text: 'BP' },
    valueString: '118/77 mmHg',
    subject: { reference: 'Patient/S2874099' },
    effectiveDateTime: '2023-11-13T10:15:00+00:00',
  });
  const { res } = await episode((req) => {
    if (req.turn === 0) return { content: null, toolCalls: [{ name: 'observation_create', arguments: payload }] };
    if (req.turn === 1)
      return {
        content: null,
        toolCalls: [{ name: 'observation_search_vitals', arguments: '{"patient": "S2874099", "category": "vital-signs", "_count": 5000}' }],
      };
    return { content: null, toolCalls: [{ name: 'finish', arguments: '{"answer": []}' }] };
  });
  const tools = res.output.messages!.filter((m) => m.role === 'tool').map((m) => m.content);
  assert.ok(tools[0].startsWith(POST_ACCEPTED_PREFIX) && tools[0].includes('Location: '), tools[0].slice(0, 300));
  assert.ok(tools[1].includes('118/77 mmHg'));
});

test('a reply without tool calls ends the episode; tool text in content is its own status or recovered on request', async () => {
  const qwen = '<tool_call>\n{"name": "finish", "arguments": {"answer": [60]}}\n</tool_call>';
  const plain = await episode(() => 'The patient is 60.');
  assert.equal(plain.res.output.status, 'agent invalid action');
  assert.equal(runStatus(plain.res.output), 'agent invalid action');
  const text = await episode(() => qwen);
  assert.equal(text.res.output.status, 'agent invalid action');
  assert.equal(runStatus(text.res.output), MODEL_TOOL_TEXT);
  const recovered = await episode(() => qwen, { recoverToolText: true });
  assert.equal(recovered.res.output.status, 'completed');
  assert.equal(recovered.res.output.result, '[60]');
  assert.equal(recovered.res.output.recoveredToolCalls, 1);
  const empty = await episode(() => ({ content: '', reasoning: 'thinking…' }));
  assert.equal(empty.res.emptyReply, 'reasoning_content');
  const limit = await episode(() => ({ content: null, toolCalls: [{ name: 'patient_search', arguments: '{"identifier": "S1"}' }] }));
  assert.equal(limit.res.output.status, 'task limit reached');
  assert.equal(limit.res.rounds, 8);
});
