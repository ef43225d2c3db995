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
const S = { 'X-Ehrgym-Session': 'ep-9' };
const REQUESTS: FhirHttpRequest[] = [
  { method: 'GET', url: `${B}metadata` },
  { method: 'GET', url: `${B}metadata?_pretty=false` },
  { method: 'GET', url: `${B}Patient?identifier=S1&_format=json` },
  { method: 'GET', url: `${B}Patient/S1` },
  { method: 'GET', url: `${B}Patient/S1?_pretty=false` },
  { method: 'GET', url: `${B}Patient/S1/` },
  { method: 'GET', url: `${B}/Patient//S1` },
  { method: 'GET', url: `${B}Patient?name=M%C3%BCller` },
  { method: 'GET', url: `${B}Patient?name=Müller&_format=json` },
  { method: 'GET', url: `${B}Observation?patient=S1&_count=1` },
  { method: 'GET', url: `${B}Observation?patient=S1&_count=1&_pretty=false` },
  { method: 'GET', url: `${B}Observation?patient=S1&_count=99999999999999999999` },
  { method: 'GET', url: `${B}Observation?patient=S1&_count=-1` },
  { method: 'GET', url: `${B}Observation?patient=S1&date=ge2023-01-01&_sort=-date&_format=json` },
  { method: 'GET', url: `${B}Observation?patient=S1&date=ge2023-01-01T00:00:00+00:00` },
  { method: 'GET', url: `${B}Observation?patient=S1&date=2023-13-45` },
  { method: 'GET', url: `${B}Observation?_summary=count&patient=S1` },
  { method: 'GET', url: `${B}Foo?x=1` },
  { method: 'GET', url: `${B}Patient/nope` },
  { method: 'GET', url: `${B}Patient/%E0%A4%A` },
  { method: 'GET', url: `${B}` },
  { method: 'GET', url: `${B}?_getpages=unknown` },
  { method: 'GET', url: `${B}_session/bad%20id/Patient` },
  { method: 'GET', url: `${B}_session` },
  { method: 'GET', url: `http://localhost:8080/other` },
  { method: 'GET', url: `${B}Patient/S1/_history/1/x` },
  { method: 'DELETE', url: `${B}Patient/S1` },
  { method: 'DELETE', url: `${B}Patient/S1`, headers: S },
  { method: 'PUT', url: `${B}Patient`, body: '{}' },
  { method: 'PUT', url: `${B}Patient`, body: '{}', headers: S },
  { method: 'POST', url: `${B}metadata`, body: '{}', headers: S },
  { method: 'POST', url: `${B}Observation`, body: JSON.stringify(bp) },
  { method: 'POST', url: `${B}_session/default/Observation`, body: JSON.stringify(bp) },
  { method: 'POST', url: `${B}Observation`, body: JSON.stringify(bp), headers: { 'X-Ehrgym-Session': 'ep-1' } },
  { method: 'GET', url: `${B}Observation?patient=S1&code=BP`, headers: { 'X-Ehrgym-Session': 'ep-1' } },
  { method: 'POST', url: `${B}_session/ep-2/Observation`, body: JSON.stringify(bp) },
  { method: 'GET', url: `${B}_session/ep-2/Observation?patient=S1&_count=1` },
  { method: 'POST', url: `${B}Observation`, body: '{"resourceType": "Observation", ', headers: S },
  { method: 'POST', url: `${B}Observation`, body: '[]', headers: S },
  { method: 'POST', url: `${B}Observation`, body: `${'['.repeat(5000)}${']'.repeat(5000)}`, headers: S },
  { method: 'POST', url: `${B}Observation`, body: `{"resourceType": "Observation", "x": ${'{"a":'.repeat(200)}1${'}'.repeat(200)}}`, headers: S },
  { method: 'POST', url: `${B}Patient`, body: JSON.stringify(bp), headers: S },
  { method: 'POST', url: `${B}Observation`, body: JSON.stringify({ ...bp, note: 'x'.repeat(MAX_BODY_BYTES) }) },
  { method: 'POST', url: `${B}Observation`, body: JSON.stringify({ ...bp, note: 'x'.repeat(MAX_BODY_BYTES) }), headers: S },
  { method: 'POST', url: `${B}Observation`, body: JSON.stringify(bp), headers: { 'X-Ehrgym-Session': 'not valid!' } },
  { method: 'POST', url: `${B}Observation`, body: JSON.stringify({ resourceType: 'Observation', status: 'sort-of', code: {} }), headers: S },
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
    for (const s of [200, 201, 204, 400, 403, 404, 405, 413]) assert.ok(statuses.has(s), `status ${s} covered`);
    if (strict) assert.ok(statuses.has(422), 'strict validation failure covered');
    // an invalid URL is rejected by both, not answered
    await assert.rejects(viaApp({ method: 'GET', url: 'not a url' }));
    await assert.rejects(viaHandler({ method: 'GET', url: 'not a url' }));
  });
}
