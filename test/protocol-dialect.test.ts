/**
 * Protocol dialects (src/protocol/dialect.ts): MedAgentBench's stays the official protocol (a PUT is an invalid
 * action, the prompt and tools unchanged); the `ehrgym` dialect adds PUT updates in the text protocol, `_update`
 * tools in the tools protocol, and executes them in the episode's session.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FhirStore } from '../src/fhir/store.js';
import { createFhirHandler } from '../src/fhir/server.js';
import { handlerTransport } from '../src/fhir/client.js';
import { EHRGYM_DIALECT, MEDAGENTBENCH_DIALECT } from '../src/protocol/dialect.js';
import { PUT_ACCEPTED, PUT_ERROR_PREFIX, PUT_INVALID, formatAction, parseAction } from '../src/protocol/text.js';
import { actionToCall, callToAction, functionTools, toolNames, toolSpecs } from '../src/protocol/tools.js';
import { executeAction, defaultJsonLoads } from '../src/agent/loop.js';
import { renderPrompt, PROMPT_TEMPLATE } from '../src/agent/prompt.js';
import { parseAction as reportParse } from '../src/report/history.js';

const BASE = 'http://localhost:8080/fhir/';
const PUT_TEXT = `PUT ${BASE}MedicationRequest/7\n{"resourceType": "MedicationRequest", "id": "7", "status": "stopped"}`;

test('MedAgentBench dialect: a PUT reply is an invalid action; tools and prompt as before', () => {
  assert.deepEqual(parseAction(PUT_TEXT), { kind: 'invalid' });
  assert.equal(reportParse(PUT_TEXT).kind, 'invalid');
  assert.equal(toolSpecs().length, 10);
  assert.deepEqual(toolNames(), toolNames(MEDAGENTBENCH_DIALECT));
  assert.ok(!toolNames().some((n) => n.endsWith('_update')));
  const task = { context: 'ctx', instruction: 'q?' };
  assert.equal(renderPrompt(task), renderPrompt(task, { dialect: MEDAGENTBENCH_DIALECT }));
  assert.ok(renderPrompt(task).startsWith(PROMPT_TEMPLATE.slice(0, 200)));
  assert.ok(!renderPrompt(task).includes('PUT'));
});

test('ehrgym dialect: PUT parses, formats back, and reads as PUT in the report', () => {
  const a = parseAction(`\`\`\`tool_code\n${PUT_TEXT}\n\`\`\``, { put: true });
  assert.deepEqual(a, { kind: 'put', url: `${BASE}MedicationRequest/7`, body: '{"resourceType": "MedicationRequest", "id": "7", "status": "stopped"}' });
  assert.equal(formatAction(a as Exclude<typeof a, { kind: 'invalid' }>), PUT_TEXT);
  const r = reportParse(PUT_TEXT, { put: true });
  assert.equal(r.kind, 'PUT');
  assert.equal(r.url, `${BASE}MedicationRequest/7`);
  // GET, POST and FINISH parse as in the official protocol
  assert.deepEqual(parseAction(`GET ${BASE}Slot?schedule=4`, { put: true }), { kind: 'get', url: `${BASE}Slot?schedule=4` });
  assert.deepEqual(parseAction('FINISH([1])', { put: true }), { kind: 'finish', answer: '[1]' });
});

test('ehrgym dialect: the prompt has the PUT case and the dialect functions', () => {
  const p = renderPrompt({ context: 'It is 2023-11-13T10:15:00+00:00.', instruction: 'Stop the ibuprofen.' }, { dialect: EHRGYM_DIALECT });
  assert.match(p, /3\. If you decide to invoke a PUT function/);
  assert.match(p, /one of the four cases/);
  assert.ok(p.includes('"name": "PUT {api_base}/MedicationRequest/{id}"'));
  assert.ok(p.includes(`you should use ${BASE} as the api_base`));
  assert.ok(p.endsWith('Question: Stop the ibuprofen.'));
});

test('ehrgym dialect tools: searches of every suite type, creates, updates; names valid and unique', () => {
  const names = toolNames(EHRGYM_DIALECT);
  for (const n of [
    'patient_search',
    'observation_search_labs',
    'observation_search_vitals',
    'allergy_intolerance_search',
    'immunization_search',
    'slot_search',
    'appointment_search',
    'appointment_create',
    'medication_request_create',
    'medication_request_update',
    'slot_update',
    'finish',
  ])
    assert.ok(names.includes(n), n);
  assert.equal(new Set(names).size, names.length);
  for (const t of functionTools(EHRGYM_DIALECT)) {
    assert.match(t.function.name, /^[a-zA-Z0-9_-]{1,64}$/);
    assert.equal((t.function.parameters as { type: string }).type, 'object');
  }
});

test('ehrgym dialect tools: an update call is a PUT to its id; without an id it is a tool error; round trip', () => {
  const args = '{"resourceType": "MedicationRequest", "id": "7", "status": "stopped"}';
  const out = callToAction('medication_request_update', args, BASE, EHRGYM_DIALECT);
  assert.deepEqual(out, { ok: true, action: { kind: 'put', url: `${BASE}MedicationRequest/7`, body: args } });
  const noId = callToAction('medication_request_update', '{"resourceType": "MedicationRequest", "status": "stopped"}', BASE, EHRGYM_DIALECT);
  assert.equal(noId.ok, false);
  assert.match((noId as { error: string }).error, /needs the resource's "id"/);
  // MedAgentBench has no update tool
  assert.equal(callToAction('medication_request_update', args, BASE).ok, false);
  assert.deepEqual(actionToCall({ kind: 'put', url: `${BASE}MedicationRequest/7`, body: args }, BASE, EHRGYM_DIALECT), {
    name: 'medication_request_update',
    arguments: args,
  });
  assert.throws(() => actionToCall({ kind: 'put', url: `${BASE}MedicationRequest/8`, body: args }, BASE, EHRGYM_DIALECT), /does not round-trip/);
  const get = actionToCall({ kind: 'get', url: `${BASE}AllergyIntolerance?patient=S1&clinical-status=active` }, BASE, EHRGYM_DIALECT);
  assert.deepEqual(get, { name: 'allergy_intolerance_search', arguments: '{"patient":"S1","clinical-status":"active"}' });
});

test('a PUT action is executed in the session (live), refused as the server refuses it, and never sent in official mode', async () => {
  const store = new FhirStore();
  store.add({ resourceType: 'Patient', id: 'S1' });
  store.add({
    resourceType: 'MedicationRequest',
    id: '7',
    status: 'active',
    intent: 'order',
    subject: { reference: 'Patient/S1' },
    medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '5640' }] },
  });
  store.freeze();
  const fhir = handlerTransport(createFhirHandler(store), { session: 'dialect-put' });
  const live = { fhir, postMode: 'live' as const, jsonLoads: defaultJsonLoads };
  const body =
    '{"resourceType": "MedicationRequest", "id": "7", "status": "stopped", "intent": "order", "subject": {"reference": "Patient/S1"}, "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "5640"}]}}';
  const reply = await executeAction({ kind: 'put', url: `${BASE}MedicationRequest/7`, body }, live);
  assert.match(reply, /^PUT request accepted and executed successfully\. Location: http:\/\/localhost:8080\/fhir\/MedicationRequest\/7\/_history\/2\. /);
  assert.equal(store.read('MedicationRequest', '7', 'dialect-put')?.status, 'stopped');
  assert.equal(store.read('MedicationRequest', '7')?.status, 'active');
  assert.equal(await executeAction({ kind: 'put', url: `${BASE}MedicationRequest/7`, body: '{not json' }, live), PUT_INVALID);
  const missing = await executeAction({ kind: 'put', url: `${BASE}MedicationRequest/999`, body: body.replace('"7"', '"999"') }, live);
  assert.ok(missing.startsWith(`${PUT_ERROR_PREFIX}404 Client Error`), missing);
  const official = await executeAction(
    { kind: 'put', url: `${BASE}MedicationRequest/7`, body: body.replace('stopped', 'on-hold') },
    { ...live, postMode: 'official' },
  );
  assert.equal(official, PUT_ACCEPTED);
  assert.equal(store.read('MedicationRequest', '7', 'dialect-put')?.status, 'stopped');
});
