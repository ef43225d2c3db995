/** The in-process handler transport answers exactly as the Hono app does through fetch Request/Response. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildFixture } from './fhir-fixtures.js';
import { createFhirApp, createFhirHandler, MAX_BODY_BYTES } from '../src/fhir/server.js';
import { handlerTransport, inProcessTransport } from '../src/fhir/client.js';
import type { FhirHttpRequest } from '../src/fhir/types.js';

const B = 'http://localhost:8080/fhir/';
const bp = {
  resourceType: 'Observation',
  status: 'final',
  code: { text: 'BP' },
  subject: { reference: 'Patient/S1' },
  effectiveDateTime: '2023-11-13T10:15:00+00:00',
  valueString: '118/77 mmHg',
};
const REQUESTS: FhirHttpRequest[] = [
  { method: 'GET', url: `${B}metadata` },
  { method: 'GET', url: `${B}Patient?identifier=S1&_format=json` },
  { method: 'GET', url: `${B}Patient/S1` },
  { method: 'GET', url: `${B}Patient/S1?_pretty=false` },
  { method: 'GET', url: `${B}Patient?name=M%C3%BCller` },
  { method: 'GET', url: `${B}Patient?name=Müller&_format=json` },
  { method: 'GET', url: `${B}Observation?patient=S1&_count=1` },
  { method: 'GET', url: `${B}Observation?patient=S1&_count=1&_pretty=false` },
  { method: 'GET', url: `${B}Observation?patient=S1&date=ge2023-01-01&_sort=-date&_format=json` },
  { method: 'GET', url: `${B}Observation?patient=S1&date=2023-13-45` },
  { method: 'GET', url: `${B}Observation?_summary=count&patient=S1` },
  { method: 'GET', url: `${B}Foo?x=1` },
  { method: 'GET', url: `${B}Patient/nope` },
  { method: 'GET', url: `${B}` },
  { method: 'GET', url: `${B}?_getpages=unknown` },
  { method: 'GET', url: `${B}_session/bad%20id/Patient` },
  { method: 'GET', url: `http://localhost:8080/other` },
  { method: 'DELETE', url: `${B}Patient/S1` },
  { method: 'PUT', url: `${B}Patient`, body: '{}' },
  { method: 'POST', url: `${B}Observation`, body: JSON.stringify(bp), headers: { 'X-Ehrgym-Session': 'ep-1' } },
  { method: 'GET', url: `${B}Observation?patient=S1&code=BP`, headers: { 'X-Ehrgym-Session': 'ep-1' } },
  { method: 'POST', url: `${B}_session/ep-2/Observation`, body: JSON.stringify(bp) },
  { method: 'GET', url: `${B}_session/ep-2/Observation?patient=S1&_count=1` },
  { method: 'POST', url: `${B}Observation`, body: '{"resourceType": "Observation", ' },
  { method: 'POST', url: `${B}Observation`, body: '[]' },
  { method: 'POST', url: `${B}Patient`, body: JSON.stringify(bp) },
  { method: 'POST', url: `${B}Observation`, body: JSON.stringify({ ...bp, note: 'x'.repeat(MAX_BODY_BYTES) }) },
  { method: 'POST', url: `${B}Observation`, body: JSON.stringify(bp), headers: { 'X-Ehrgym-Session': 'not valid!' } },
  { method: 'POST', url: `${B}Observation`, body: JSON.stringify({ resourceType: 'Observation', status: 'sort-of', code: {} }) },
  { method: 'DELETE', url: `${B}_session/ep-2` },
];

for (const strict of [false, true]) {
  test(`handlerTransport equals the Hono app through fetch, request by request (${strict ? 'strict' : 'compat'})`, async () => {
    const viaApp = inProcessTransport(createFhirApp(buildFixture().store, { strict }));
    const viaHandler = handlerTransport(createFhirHandler(buildFixture().store, { strict }));
    const statuses = new Set<number>();
    for (const req of REQUESTS) {
      const a = await viaApp(req);
      const b = await viaHandler(req);
      assert.deepEqual(b, a, `${req.method} ${req.url}`);
      assert.equal(JSON.stringify(b.headers), JSON.stringify(a.headers), `header order: ${req.method} ${req.url}`);
      statuses.add(a.status);
    }
    // the requests cover successes, creations, deletions and each kind of error
    for (const s of [200, 201, 204, 400, 404, 405, 413]) assert.ok(statuses.has(s), `status ${s} covered`);
    if (strict) assert.ok(statuses.has(422), 'strict validation failure covered');
    // an invalid URL is rejected by both, not answered
    await assert.rejects(viaApp({ method: 'GET', url: 'not a url' }));
    await assert.rejects(viaHandler({ method: 'GET', url: 'not a url' }));
  });
}
