/**
 * FHIR update (PUT) in sessions: a new version hides the old one from this session's reads and searches only;
 * versionId counts up; If-Match guards against lost updates; the base and other sessions never change; bad input gets
 * an OperationOutcome; a third-party client (fhir-kit-client) updates over a real port in compat and strict mode.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from 'fhir-kit-client';
import type { FhirError } from '../src/fhir/errors.js';
import { startFhirServer, type StartedFhirServer } from '../src/fhir/server.js';
import { bp, buildFixture } from './fhir-fixtures.js';

const ids = (rs: Array<{ id?: string; status?: unknown; valueString?: unknown }>) => rs.map((r) => `${r.id}:${r.status}`);

describe('FHIR update in sessions (store)', () => {
  it('updates a base resource in one session only; versions count up; searches see only the current version', () => {
    const { store } = buildFixture();
    const before = store.fingerprint();
    const base = store.read('Observation', '1004')!;
    const amended = { ...base, status: 'entered-in-error' };
    const v2 = store.update(amended, '1004', 'a');
    assert.equal(v2.meta?.versionId, '2');
    assert.equal(v2.meta?.lastUpdated, store.clock);
    assert.equal(store.read('Observation', '1004', 'a')?.status, 'entered-in-error');
    assert.equal(store.read('Observation', '1004', 'b')?.status, 'final');
    assert.equal(store.read('Observation', '1004')?.status, 'final');
    // the search of the session finds the new version once, not the base row
    const q = 'patient=S1&code=MG';
    const plain = ids(store.searchResources('Observation', q));
    assert.ok(plain.includes('1004:final'));
    const inA = ids(store.searchResources('Observation', q, 'a'));
    assert.deepEqual(inA, [...plain.filter((x) => x !== '1004:final'), '1004:entered-in-error']);
    assert.ok(!ids(store.searchResources('Observation', `${q}&status=final`, 'a')).some((x) => x.startsWith('1004:')));
    assert.deepEqual(ids(store.searchResources('Observation', q, 'b')), plain);
    // a second update replaces the session's version; _sort still sees one row per resource
    const v3 = store.update({ ...amended, status: 'amended' }, '1004', 'a', '2');
    assert.equal(v3.meta?.versionId, '3');
    const sorted = ids(store.searchResources('Observation', `${q}&_sort=-date`, 'a'));
    assert.equal(sorted.length, plain.length);
    assert.equal(sorted[0], '1004:amended');
    assert.equal(store.sessionInfo('a')?.updates, 2);
    assert.equal(store.fingerprint(), before);
    // a session's own resource: created at version 1, updated to 2
    const created = store.create(bp('S1', '118/77 mmHg'), 'a');
    const updated = store.update({ ...bp('S1', '120/80 mmHg'), id: created.id }, created.id!, 'a', '1');
    assert.equal(updated.meta?.versionId, '2');
    assert.deepEqual(
      store.searchResources('Observation', 'patient=S1&category=vital-signs', 'a').map((r) => r.valueString ?? r.id),
      ['1006', '120/80 mmHg'],
    );
    // dropping the session drops its versions
    store.dropSession('a');
    assert.equal(store.read('Observation', '1004', 'a')?.status, 'final');
  });

  it('refuses a stale If-Match (412), an unknown resource (404) and a write over the session budget (429), storing nothing', () => {
    const { store } = buildFixture();
    const base = store.read('Observation', '1001')!;
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e as FhirError;
      }
      assert.fail('expected a FhirError');
    };
    assert.equal(err(() => store.update({ ...base }, '1001', 'a', '7')).status, 412);
    assert.equal(err(() => store.update({ ...base, id: '999999' }, '999999', 'a')).status, 404);
    assert.equal(store.hasSession('a'), false);
    store.maxSessionBytes = 10;
    assert.equal(err(() => store.update({ ...base }, '1001', 'a')).status, 429);
    assert.equal(store.read('Observation', '1001', 'a')?.meta?.versionId, '1');
  });
});

describe('FHIR update over HTTP', () => {
  let server: StartedFhirServer;
  let strict: StartedFhirServer;
  before(async () => {
    server = await startFhirServer(buildFixture().store);
    strict = await startFhirServer(buildFixture().store, { strict: true });
  });
  after(async () => {
    await server.close();
    await strict.close();
  });

  it('fhir-kit-client reads, updates and re-reads in a session; ETag and Location name the version', async () => {
    const client = new Client({ baseUrl: `${server.url}_session/upd` });
    const obs = (await client.read({ resourceType: 'Observation', id: '1003' })) as Record<string, unknown>;
    const put = (await client.update({
      resourceType: 'Observation',
      id: '1003',
      body: { ...obs, resourceType: 'Observation', status: 'entered-in-error' },
    })) as Record<string, unknown>;
    assert.equal((put.meta as { versionId: string }).versionId, '2');
    const again = (await client.read({ resourceType: 'Observation', id: '1003' })) as Record<string, unknown>;
    assert.equal(again.status, 'entered-in-error');
    const other = await fetch(`${server.url}_session/other/Observation/1003`);
    assert.equal(((await other.json()) as { status: string }).status, 'final');
    const res = await fetch(`${server.url}_session/upd/Observation/1003`, {
      method: 'PUT',
      headers: { 'content-type': 'application/fhir+json', 'if-match': 'W/"2"' },
      body: JSON.stringify({ ...obs, status: 'amended' }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('etag'), 'W/"3"');
    assert.equal(res.headers.get('location'), `${server.url}_session/upd/Observation/1003/_history/3`);
  });

  it('bad updates: OperationOutcome with 400 / 403 / 404 / 412 / 422 (strict)', async () => {
    const obs = (await (await fetch(`${server.url}Observation/1003`)).json()) as Record<string, unknown>;
    const put = async (url: string, body: unknown, headers: Record<string, string> = {}) => {
      const r = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/fhir+json', ...headers }, body: JSON.stringify(body) });
      const j = (await r.json()) as { resourceType: string; issue: Array<{ diagnostics: string }> };
      return { status: r.status, type: j.resourceType, text: j.issue?.[0]?.diagnostics ?? '' };
    };
    const s = `${server.url}_session/bad/`;
    const cases: Array<[Promise<{ status: number; type: string; text: string }>, number, RegExp]> = [
      [put(`${s}Observation/1003`, { ...obs, id: '1004' }), 400, /matches the request URL/],
      [put(`${s}Observation/1003`, { ...obs, resourceType: 'Patient' }), 400, /does not match the URL/],
      [put(`${s}Observation/424242`, { ...obs, id: '424242' }), 404, /not known/],
      [put(`${s}Observation/1003`, obs, { 'if-match': 'W/"9"' }), 412, /current version is 1/],
      [put(`${server.url}Observation/1003`, obs), 403, /Writes need a session/],
      [put(`${strict.url}_session/x/Observation/1003`, { ...obs, status: 'finished' }), 422, /not in the required value set/],
    ];
    for (const [p, status, text] of cases) {
      const r = await p;
      assert.equal(r.status, status, r.text);
      assert.equal(r.type, 'OperationOutcome');
      assert.match(r.text, text);
    }
    // the strict server accepts a valid update
    const ok = await put(`${strict.url}_session/x/Observation/1003`, { ...obs, status: 'amended' });
    assert.equal(ok.status, 200);
  });
});
