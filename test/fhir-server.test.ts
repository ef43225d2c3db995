/** The FHIR HTTP server: HAPI output format, paging, sessions, bad input, strict mode, transports, a real client. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from 'fhir-kit-client';
import { httpTransport, inProcessTransport } from '../src/fhir/client.js';
import { FhirStore } from '../src/fhir/store.js';
import { createFhirApp, startFhirServer, uuidFrom, type StartedFhirServer } from '../src/fhir/server.js';
import { pretty } from '../src/fhir/json.js';
import { OFFICIAL_API_BASE } from '../src/fhir/types.js';
import { buildFixture, lab } from './fhir-fixtures.js';

const BASE = 'http://localhost:8080/fhir';
const CT = 'application/fhir+json;charset=utf-8';

/** The Patient of task1_1 exactly as the official server stores it (data/medagentbench/patients.ndjson). */
const STAFFORD = {
  resourceType: 'Patient',
  id: 'S6534835',
  meta: { versionId: '1', lastUpdated: '2024-12-30T19:05:44.789+00:00', source: '#EXu0nHSvNNuB4MFN' },
  extension: [
    {
      url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race',
      valueCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/v3/Race', code: '2131-1', display: 'Other' }] },
    },
    {
      url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity',
      valueCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/v3/Ethnicity', code: '2135-2', display: 'Hispanic or Latino' }] },
    },
  ],
  identifier: [
    {
      use: 'usual',
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR', display: 'Medical Record Number' }] },
      value: 'S6534835',
    },
  ],
  name: [{ use: 'official', family: 'Stafford', given: ['Peter'] }],
  telecom: [{ system: 'phone', value: '271-106-7188', use: 'home' }],
  gender: 'female',
  birthDate: '1932-12-29',
  address: [{ line: ['86480 Case Court Suite 524'], city: 'Lake Jenniferport', state: 'IA', postalCode: '35769' }],
};

/** HAPI's pretty-printed searchset for `Patient?name=Peter&name=Stafford&birthdate=1932-12-29&_format=json`. */
const HAPI_TEXT = (id: string, lastUpdated: string) => `{
  "resourceType": "Bundle",
  "id": "${id}",
  "meta": {
    "lastUpdated": "${lastUpdated}"
  },
  "type": "searchset",
  "total": 1,
  "link": [ {
    "relation": "self",
    "url": "http://localhost:8080/fhir/Patient?_format=json&birthdate=1932-12-29&name=Peter&name=Stafford"
  } ],
  "entry": [ {
    "fullUrl": "http://localhost:8080/fhir/Patient/S6534835",
    "resource": {
      "resourceType": "Patient",
      "id": "S6534835",
      "meta": {
        "versionId": "1",
        "lastUpdated": "2024-12-30T19:05:44.789+00:00",
        "source": "#EXu0nHSvNNuB4MFN"
      },
      "extension": [ {
        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
        "valueCodeableConcept": {
          "coding": [ {
            "system": "http://hl7.org/fhir/v3/Race",
            "code": "2131-1",
            "display": "Other"
          } ]
        }
      }, {
        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
        "valueCodeableConcept": {
          "coding": [ {
            "system": "http://hl7.org/fhir/v3/Ethnicity",
            "code": "2135-2",
            "display": "Hispanic or Latino"
          } ]
        }
      } ],
      "identifier": [ {
        "use": "usual",
        "type": {
          "coding": [ {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
            "code": "MR",
            "display": "Medical Record Number"
          } ]
        },
        "value": "S6534835"
      } ],
      "name": [ {
        "use": "official",
        "family": "Stafford",
        "given": [ "Peter" ]
      } ],
      "telecom": [ {
        "system": "phone",
        "value": "271-106-7188",
        "use": "home"
      } ],
      "gender": "female",
      "birthDate": "1932-12-29",
      "address": [ {
        "line": [ "86480 Case Court Suite 524" ],
        "city": "Lake Jenniferport",
        "state": "IA",
        "postalCode": "35769"
      } ]
    },
    "search": {
      "mode": "match"
    }
  } ]
}`;

function pagingStore(): FhirStore {
  const s = new FhirStore();
  s.add({ resourceType: 'Patient', id: 'S1' });
  for (let i = 0; i < 45; i++) {
    const day = String(1 + ((i * 7) % 28)).padStart(2, '0');
    s.add(lab(String(100 + i), 'S1', 'K', `2023-10-${day}T${String(i % 24).padStart(2, '0')}:00:00+00:00`, (3 + (i % 20) / 10).toFixed(1), 'mmol/L'));
  }
  return s.freeze();
}

async function get(app: { fetch: (r: Request) => Response | Promise<Response> }, url: string, init?: RequestInit) {
  const res = await app.fetch(new Request(url, init));
  const text = await res.text();
  return { status: res.status, ct: res.headers.get('content-type'), headers: res.headers, text, json: () => JSON.parse(text) };
}

describe('FHIR server: HAPI format', () => {
  const store = new FhirStore();
  store.add(STAFFORD);
  const app = createFhirApp(store);

  it('pretty-prints a searchset byte for byte like HAPI', async () => {
    const r = await get(app, `${BASE}/Patient?name=Peter&name=Stafford&birthdate=1932-12-29&_format=json`);
    assert.equal(r.status, 200);
    assert.equal(r.ct, CT);
    const id = r.json().id;
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(r.text, HAPI_TEXT(id, '2023-11-13T10:15:00.000+00:00'));
    // Deterministic bundle id: same query, same id; different query, different id.
    const again = await get(app, `${BASE}/Patient?name=Peter&name=Stafford&birthdate=1932-12-29&_format=json`);
    assert.equal(again.json().id, id);
    assert.notEqual((await get(app, `${BASE}/Patient?name=Peter&_format=json`)).json().id, id);
  });

  it('reads a resource and prints decimals with their original text', async () => {
    const s = new FhirStore();
    s.add(lab('157263', 'S6329521', 'K', '2023-11-09T12:23:00+00:00', '4.0', 'mmol/L'));
    const a = createFhirApp(s);
    const r = await get(a, `${BASE}/Observation/157263?_format=json`);
    assert.equal(r.status, 200);
    assert.equal(r.ct, CT);
    assert.match(r.text, /\n {4}"value": 4\.0,\n/);
    assert.equal(r.json().valueQuantity.value, 4);
    const compact = await get(a, `${BASE}/Observation/157263?_pretty=false`);
    assert.ok(compact.text.startsWith('{"resourceType":"Observation","id":"157263"'));
    assert.ok(compact.text.includes('"value":4.0,'));
  });

  it('escapes self-link names and values like HAPI and keeps repeated parameters in order', async () => {
    const { store: fx } = buildFixture();
    const a = createFhirApp(fx);
    const r = await get(a, `${BASE}/Observation?patient=S1&date=ge2023-11-12T10:15:00%2B00:00&code=http://loinc.org|MG&date=le2023-11-13&_format=json`);
    assert.equal(r.status, 200);
    assert.equal(
      r.json().link[0].url,
      `${BASE}/Observation?_format=json&code=http%3A%2F%2Floinc.org%7CMG&date=ge2023-11-12T10%3A15%3A00%2B00%3A00&date=le2023-11-13&patient=S1`,
    );
    const p = await get(a, `${BASE}/Patient?name:contains=de%20b&_format=application/fhir+json`);
    assert.equal(p.status, 200);
    assert.equal(p.json().link[0].url, `${BASE}/Patient?_format=application%2Ffhir%20json&name%3Acontains=de%20b`);
  });

  it('tolerates a double slash after the base (`{api_base}/Patient`), printing links on the clean base', async () => {
    const r = await get(app, `${BASE}//Patient?identifier=S6534835&_format=json`);
    assert.equal(r.status, 200);
    assert.equal(r.json().link[0].url, `${BASE}/Patient?_format=json&identifier=S6534835`);
    assert.equal((await get(app, `${BASE}//Patient/S6534835`)).status, 200);
  });

  it('answers metadata with a CapabilityStatement of exactly the supported parameters', async () => {
    const r = await get(app, `${BASE}/metadata`);
    assert.equal(r.status, 200);
    assert.equal(r.ct, CT);
    const cs = r.json();
    assert.equal(cs.resourceType, 'CapabilityStatement');
    assert.equal(cs.fhirVersion, '4.0.1');
    const patient = cs.rest[0].resource.find((x: { type: string }) => x.type === 'Patient');
    const names = patient.searchParam.map((p: { name: string }) => p.name);
    assert.ok(names.includes('identifier') && names.includes('address-postalcode') && !names.includes('legal-sex'));
    assert.deepEqual(
      patient.interaction.map((i: { code: string }) => i.code),
      ['read', 'search-type', 'create', 'update'],
    );
  });
});

describe('FHIR server: paging, _count, _sort', () => {
  const store = pagingStore();
  const app = createFhirApp(store);
  const all = store.searchResources('Observation', 'patient=S1').map((r) => r.id);

  it('pages by 20 with HAPI _getpages links; total only on the last page', async () => {
    const p1 = (await get(app, `${BASE}/Observation?patient=S1&code=K&_format=json`)).json();
    assert.equal(p1.total, undefined);
    assert.equal(p1.entry.length, 20);
    assert.equal(p1.link[1].relation, 'next');
    assert.equal(p1.link[1].url, `${BASE}?_getpages=${p1.id}&_getpagesoffset=20&_count=20&_format=json&_pretty=true&_bundletype=searchset`);
    const p2 = (await get(app, p1.link[1].url)).json();
    assert.equal(p2.total, undefined);
    assert.equal(p2.link[0].url, `${BASE}?_bundletype=searchset&_count=20&_format=json&_getpages=${p1.id}&_getpagesoffset=20&_pretty=true`);
    assert.deepEqual(
      p2.link.map((l: { relation: string }) => l.relation),
      ['self', 'next', 'previous'],
    );
    const p3 = (await get(app, p2.link[1].url)).json();
    assert.equal(p3.total, 45);
    assert.equal(p3.entry.length, 5);
    const ids = [...p1.entry, ...p2.entry, ...p3.entry].map((e: { resource: { id: string } }) => e.resource.id);
    assert.deepEqual(ids, all);
    // Without _format in the request, the next link has none either (HAPI); _pretty=true only when pretty-printing.
    const noFmt = (await get(app, `${BASE}/Observation?patient=S1&_count=10`)).json();
    assert.equal(noFmt.link[1].url, `${BASE}?_getpages=${noFmt.id}&_getpagesoffset=10&_count=10&_pretty=true&_bundletype=searchset`);
    const compact = (await get(app, `${BASE}/Observation?patient=S1&_count=10&_pretty=false&_format=application/fhir+json`)).json();
    assert.equal(compact.link[1].url, `${BASE}?_getpages=${compact.id}&_getpagesoffset=10&_count=10&_format=application%2Ffhir%2Bjson&_bundletype=searchset`);
    const c2 = await get(app, compact.link[1].url);
    assert.equal(c2.status, 200);
    // HAPI quirk: the link carries no _pretty, so the next page comes back pretty-printed (the server default).
    assert.ok(c2.text.startsWith('{\n  "resourceType": "Bundle"'));
  });

  it('honours _count up to 5000 in one page, _count=0 and _summary=count', async () => {
    const big = (await get(app, `${BASE}/Observation?patient=S1&code=K&_count=5000&_format=json`)).json();
    assert.equal(big.total, 45);
    assert.equal(big.entry.length, 45);
    assert.equal(big.link.length, 1);
    for (const q of ['_count=0', '_summary=count']) {
      const c = (await get(app, `${BASE}/Observation?patient=S1&${q}`)).json();
      assert.equal(c.total, 45);
      assert.equal(c.entry, undefined);
    }
    assert.equal((await get(app, `${BASE}/Observation?patient=S1&_total=accurate`)).json().total, 45);
    assert.equal((await get(app, `${BASE}/Observation?patient=S1&_total=none&_count=50`)).json().total, undefined);
    assert.equal((await get(app, `${BASE}/Observation?patient=S1&_total=exact`)).status, 400);
    const none = (await get(app, `${BASE}/Observation?patient=S2`)).json();
    assert.equal(none.total, 0);
    assert.equal(none.entry, undefined);
  });

  it('builds searchset text from cached entries identical to printing the whole Bundle', async () => {
    const small = createFhirApp(store, { renderCacheChars: 30_000 });
    for (let round = 0; round < 3; round++) {
      for (const q of [
        'patient=S1&code=K&_sort=-date',
        'patient=S1&_count=45',
        'patient=S1&_count=3&_sort=date',
        'patient=S1&_count=0',
        'patient=S9',
        'patient=S1&_total=accurate',
        'patient=S1&_total=none&_count=50',
      ]) {
        const r = await get(small, `${BASE}/Observation?${q}&_format=json`);
        const b = JSON.parse(r.text);
        const handles = store.search('Observation', q).handles.slice(0, b.entry?.length ?? 0);
        const expected: Record<string, unknown> = {
          resourceType: 'Bundle',
          id: b.id,
          meta: { lastUpdated: '2023-11-13T10:15:00.000+00:00' },
          type: 'searchset',
          ...(b.total !== undefined ? { total: b.total } : {}),
          link: b.link,
          entry:
            handles.length === 0
              ? undefined
              : handles.map((h) => ({
                  fullUrl: `${BASE}/Observation/${store.idOf('Observation', h)}`,
                  resource: store.resourceOf('Observation', h),
                  search: { mode: 'match' },
                })),
        };
        assert.equal(r.text, pretty(expected));
      }
    }
  });

  it('prints _getpages pages identical to printing the whole Bundle', async () => {
    const p1 = (await get(app, `${BASE}/Observation?patient=S1&_count=10&_format=json`)).json();
    const r = await get(app, p1.link[1].url);
    const b = JSON.parse(r.text);
    assert.deepEqual(
      b.link.map((l: { relation: string }) => l.relation),
      ['self', 'next', 'previous'],
    );
    const handles = store.search('Observation', 'patient=S1').handles.slice(10, 20);
    const expected = {
      resourceType: 'Bundle',
      id: p1.id,
      meta: { lastUpdated: '2023-11-13T10:15:00.000+00:00' },
      type: 'searchset',
      link: b.link,
      entry: handles.map((h) => ({
        fullUrl: `${BASE}/Observation/${store.idOf('Observation', h)}`,
        resource: store.resourceOf('Observation', h),
        search: { mode: 'match' },
      })),
    };
    assert.equal(r.text, pretty(expected));
  });

  it('sorts by date both ways across pages, stably', async () => {
    const dates = (q: string) => store.searchResources('Observation', q).map((r) => Date.parse(r.effectiveDateTime));
    const asc = dates('patient=S1&_sort=date');
    assert.deepEqual(
      asc,
      [...asc].sort((a, b) => a - b),
    );
    const desc = (await get(app, `${BASE}/Observation?patient=S1&_sort=-date&_count=50`))
      .json()
      .entry.map((e: { resource: { effectiveDateTime: string } }) => Date.parse(e.resource.effectiveDateTime));
    assert.deepEqual(
      desc,
      [...asc].reverse().sort((a, b) => b - a),
    );
    const p1 = (await get(app, `${BASE}/Observation?patient=S1&_sort=-date`)).json();
    const p2 = (await get(app, p1.link[1].url)).json();
    assert.ok(Date.parse(p1.entry[19].resource.effectiveDateTime) >= Date.parse(p2.entry[0].resource.effectiveDateTime));
  });

  it('answers 410 for unknown or other-session _getpages ids, 400 for bad offsets', async () => {
    assert.equal((await get(app, `${BASE}?_getpages=nope&_getpagesoffset=20&_count=20`)).status, 410);
    const p1 = (await get(app, `${BASE}/Observation?patient=S1`, { headers: { 'X-Ehrgym-Session': 's1' } })).json();
    assert.equal((await get(app, p1.link[1].url, { headers: { 'X-Ehrgym-Session': 's2' } })).status, 410);
    assert.equal((await get(app, p1.link[1].url, { headers: { 'X-Ehrgym-Session': 's1' } })).status, 200);
    assert.equal((await get(app, p1.link[1].url.replace('_getpagesoffset=20', '_getpagesoffset=x'), { headers: { 'X-Ehrgym-Session': 's1' } })).status, 400);
  });

  it('pages from a cached first page too', async () => {
    const a = createFhirApp(store);
    const one = (await get(a, `${BASE}/Observation?patient=S1&_count=7`)).json();
    const two = (await get(a, `${BASE}/Observation?patient=S1&_count=7`)).json();
    assert.equal(one.id, two.id);
    const next = (await get(a, two.link[1].url)).json();
    assert.equal(next.entry.length, 7);
    assert.equal(next.entry[0].resource.id, all[7]);
  });

  it('keeps the paging cache bounded', async () => {
    const small = createFhirApp(pagingStore(), { pagingCacheSize: 2 });
    const first = (await get(small, `${BASE}/Observation?patient=S1&_count=5`)).json();
    await get(small, `${BASE}/Observation?patient=S1&_count=6`);
    await get(small, `${BASE}/Observation?patient=S1&_count=7`);
    assert.equal((await get(small, first.link[1].url)).status, 410);
  });
});

describe('FHIR server: sessions over HTTP', () => {
  const { store } = buildFixture();
  const app = createFhirApp(store);
  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    get(app, url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/fhir+json', ...headers } });
  const bp = { resourceType: 'Observation', status: 'final', code: { text: 'BP' }, valueString: '118/77 mmHg', subject: { reference: 'Patient/S1' } };

  it('creates in a path session with session links; invisible elsewhere; dropped by DELETE', async () => {
    const c = await post(`${BASE}/_session/ep1/Observation`, bp);
    assert.equal(c.status, 201);
    assert.equal(c.ct, CT);
    assert.equal(c.headers.get('location'), `${BASE}/_session/ep1/Observation/5002/_history/1`);
    assert.equal(c.json().id, '5002');
    assert.equal(c.json().meta.lastUpdated, '2023-11-13T10:15:00.000+00:00');
    // code=BP does not match the posted `code: {text: "BP"}` (token search reads codings only, as HAPI).
    assert.equal((await get(app, `${BASE}/_session/ep1/Observation?patient=S1&code=BP`)).json().total, 1);
    const s = (await get(app, `${BASE}/_session/ep1/Observation?patient=S1&date:missing=true`)).json();
    assert.equal(s.total, 2);
    assert.equal(s.entry[0].fullUrl, `${BASE}/_session/ep1/Observation/1008`);
    assert.equal(s.entry[1].fullUrl, `${BASE}/_session/ep1/Observation/5002`);
    assert.equal(s.link[0].url, `${BASE}/_session/ep1/Observation?date%3Amissing=true&patient=S1`);
    assert.equal((await get(app, `${BASE}/_session/ep1/Observation/5002`)).status, 200);
    assert.equal((await get(app, `${BASE}/Observation/5002`)).status, 404);
    assert.equal((await get(app, `${BASE}/Observation/5002`, { headers: { 'X-Ehrgym-Session': 'ep1' } })).status, 200);
    assert.equal((await get(app, `${BASE}/_session/ep2/Observation?patient=S1&date:missing=true`)).json().total, 1);
    assert.equal((await get(app, `${BASE}/_session/ep1`, { method: 'DELETE' })).status, 204);
    assert.equal((await get(app, `${BASE}/_session/ep1/Observation/5002`)).status, 404);
  });

  it('never serves a cached search once the session has written that type', async () => {
    const url = `${BASE}/Observation?patient=S3&_format=json`;
    const h = { 'X-Ehrgym-Session': 'rc' };
    const first = await get(app, url, { headers: h });
    const again = await get(app, url, { headers: h });
    assert.equal(again.text, first.text);
    assert.equal(first.json().total, 1);
    await post(`${BASE}/Observation`, { ...bp, subject: { reference: 'Patient/S3' } }, h);
    const after = (await get(app, url, { headers: h })).json();
    assert.equal(after.total, 2);
    assert.equal(after.id, first.json().id);
    assert.equal((await get(app, url)).json().total, 1);
  });

  it('uses the header session with plain-base links, and the default session without one', async () => {
    const c = await post(
      `${BASE}/MedicationRequest`,
      { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/S2' } },
      { 'X-Ehrgym-Session': 'h1' },
    );
    assert.equal(c.headers.get('location'), `${BASE}/MedicationRequest/5002/_history/1`);
    const s = (await get(app, `${BASE}/MedicationRequest?patient=S2`, { headers: { 'X-Ehrgym-Session': 'h1' } })).json();
    assert.equal(s.entry[0].fullUrl, `${BASE}/MedicationRequest/5002`);
    assert.equal((await get(app, `${BASE}/MedicationRequest?patient=S2`)).json().total, 0);
    // without a session: read-only, the shared default session stays empty
    const mr = { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/S2' } };
    const d = await post(`${BASE}/MedicationRequest`, mr);
    assert.equal(d.status, 403);
    assert.equal(d.json().issue[0].code, 'forbidden');
    assert.match(d.json().issue[0].diagnostics, /Writes need a session: .*\/fhir\/_session\/<id>\/.*X-Ehrgym-Session/);
    assert.equal((await post(`${BASE}/_session/default/MedicationRequest`, mr)).status, 403);
    assert.equal((await post(`${BASE}/MedicationRequest`, mr, { 'X-Ehrgym-Session': 'default' })).status, 403);
    assert.equal((await get(app, `${BASE}/Patient/S1`, { method: 'DELETE' })).status, 403);
    assert.equal(store.hasSession('default'), false);
    assert.equal((await get(app, `${BASE}/MedicationRequest?patient=S2`)).json().total, 0);
  });

  it('writableDefault: requests without a session write into the shared default session', async () => {
    const fx = buildFixture().store;
    const open = createFhirApp(fx, { writableDefault: true });
    const mr = { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/S2' } };
    const d = await get(open, `${BASE}/MedicationRequest`, { method: 'POST', body: JSON.stringify(mr) });
    assert.equal(d.status, 201);
    assert.equal(fx.hasSession('default'), true);
    assert.equal((await get(open, `${BASE}/MedicationRequest?patient=S2`)).json().total, 1);
    assert.equal(fx.searchResources('MedicationRequest', 'patient=S2').length, 0);
  });
});

describe('FHIR server: bad input', () => {
  const { store } = buildFixture();
  const app = createFhirApp(store);
  const fp = store.fingerprint();
  const cases: Array<[string, string, RequestInit | undefined, number]> = [
    ['unknown parameter', `${BASE}/Patient?legal-sex=female&_format=json`, undefined, 400],
    ['malformed date', `${BASE}/Observation?patient=S1&date=ge2023-1-1`, undefined, 400],
    ['date offset of two spaces', `${BASE}/Observation?patient=S1&code=MG&date=ge2023-11-12T10:15:00%20%2000:00&_format=json`, undefined, 400],
    ['malformed token', `${BASE}/Observation?code=|&_format=json`, undefined, 400],
    ['bad _count', `${BASE}/Observation?_count=-1`, undefined, 400],
    ['unknown type', `${BASE}/Foo?_format=json`, undefined, 404],
    ['unknown id', `${BASE}/Patient/S999`, undefined, 404],
    ['suffix appended without ?', `${BASE}/Patient/S1&_format=json`, undefined, 404],
    ['type with suffix appended without ?', `${BASE}/Patient&_format=json`, undefined, 404],
    ['outside /fhir', 'http://localhost:8080/other', undefined, 404],
    ['base without operation', `${BASE}/`, undefined, 400],
    ['malformed JSON', `${BASE}/Observation`, { headers: { 'X-Ehrgym-Session': 'w1' }, method: 'POST', body: '{"resourceType": "Observation",' }, 400],
    ['non-object JSON', `${BASE}/Observation`, { headers: { 'X-Ehrgym-Session': 'w1' }, method: 'POST', body: '[1,2]' }, 400],
    ['resourceType mismatch', `${BASE}/Observation`, { headers: { 'X-Ehrgym-Session': 'w1' }, method: 'POST', body: '{"resourceType":"Patient"}' }, 400],
    ['missing resourceType', `${BASE}/Observation`, { headers: { 'X-Ehrgym-Session': 'w1' }, method: 'POST', body: '{"status":"final"}' }, 400],
    ['body over 1 MiB', `${BASE}/Observation`, { method: 'POST', body: JSON.stringify({ resourceType: 'Observation', note: 'x'.repeat(1024 * 1024) }) }, 413],
    ['PATCH', `${BASE}/Patient/S1`, { headers: { 'X-Ehrgym-Session': 'w1' }, method: 'PATCH', body: '{}' }, 405],
    ['PUT without a resourceType', `${BASE}/Patient/S1`, { headers: { 'X-Ehrgym-Session': 'w1' }, method: 'PUT', body: '{}' }, 400],
    ['DELETE a resource', `${BASE}/Patient/S1`, { headers: { 'X-Ehrgym-Session': 'w1' }, method: 'DELETE' }, 405],
    ['POST to a resource id', `${BASE}/Patient/S1`, { headers: { 'X-Ehrgym-Session': 'w1' }, method: 'POST', body: '{}' }, 405],
    ['POST metadata', `${BASE}/metadata`, { headers: { 'X-Ehrgym-Session': 'w1' }, method: 'POST', body: '{}' }, 405],
    ['bad session id in path', `${BASE}/_session/bad!id/Patient`, undefined, 400],
    ['bad session header', `${BASE}/Patient`, { headers: { 'X-Ehrgym-Session': 'x'.repeat(65) } }, 400],
    ['write without a session', `${BASE}/Observation`, { method: 'POST', body: '{"resourceType":"Observation"}' }, 403],
    ['PUT without a session', `${BASE}/Patient/S1`, { method: 'PUT', body: '{}' }, 403],
    [
      'body nested 8,000 levels',
      `${BASE}/Observation`,
      { headers: { 'X-Ehrgym-Session': 'w1' }, method: 'POST', body: `{"resourceType":"Observation","x":${'['.repeat(8000)}${']'.repeat(8000)}}` },
      400,
    ],
    [
      'body nested 101 levels',
      `${BASE}/Observation`,
      { headers: { 'X-Ehrgym-Session': 'w1' }, method: 'POST', body: `{"resourceType":"Observation","x":${'{"a":'.repeat(100)}1${'}'.repeat(100)}}` },
      400,
    ],
    [
      'body of invalid UTF-8',
      `${BASE}/Observation`,
      { headers: { 'X-Ehrgym-Session': 'w1' }, method: 'POST', body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) },
      400,
    ],
    ['_count with letters', `${BASE}/Observation?_count=ten`, undefined, 400],
  ];
  for (const [name, url, init, status] of cases) {
    it(`${name} → ${status} OperationOutcome`, async () => {
      const r = await get(app, url, init);
      assert.equal(r.status, status);
      assert.equal(r.ct, CT);
      const o = r.json();
      assert.equal(o.resourceType, 'OperationOutcome');
      assert.equal(o.issue[0].severity, 'error');
      assert.ok(o.issue[0].diagnostics.length > 10);
    });
  }
  it('names the parameter and lists the valid ones', async () => {
    const o = (await get(app, `${BASE}/Patient?legal-sex=female`)).json();
    assert.match(o.issue[0].diagnostics, /"legal-sex".*\[_id, _lastUpdated, address, .*telecom\]/);
    assert.equal(
      (await get(app, `${BASE}/Patient/S1`, { method: 'PATCH', body: '{}', headers: { 'X-Ehrgym-Session': 'w1' } })).headers.get('allow'),
      'GET, PUT',
    );
  });
  it('leaves the base unchanged after all of it', () => {
    assert.equal(store.fingerprint(), fp);
  });
});

describe('FHIR server: compat and strict writes', () => {
  const graderForm = {
    resourceType: 'MedicationRequest',
    medicationCodeableConcept: { coding: [{ system: 'http://hl7.org/fhir/sid/ndc', code: '0338-1715-40' }] },
    authoredOn: '2023-11-13T10:15:00+00:00',
    dosageInstruction: [{ route: 'IV', doseAndRate: [{ doseQuantity: { value: 2, unit: 'g' }, rateQuantity: { value: 2, unit: 'h' } }] }],
    status: 'active',
    intent: 'order',
    subject: { reference: 'Patient/S1' },
  };
  it('compat mode stores the grader form exactly as sent', async () => {
    const { store } = buildFixture();
    const app = createFhirApp(store);
    const r = await get(app, `${BASE}/MedicationRequest`, { method: 'POST', body: JSON.stringify(graderForm), headers: { 'X-Ehrgym-Session': 'c' } });
    assert.equal(r.status, 201);
    const { id, meta, ...rest } = r.json();
    assert.equal(id, '5002');
    assert.deepEqual(rest, graderForm);
    assert.deepEqual(Object.keys(r.json()).slice(3), Object.keys(graderForm).slice(1));
  });
  it('strict mode answers 422 listing each issue, and accepts valid R4', async () => {
    const { store } = buildFixture();
    const app = createFhirApp(store, { strict: true });
    const bad = { ...graderForm, status: 'bogus', note: { text: 'x' } };
    const r = await get(app, `${BASE}/MedicationRequest`, { method: 'POST', body: JSON.stringify(bad), headers: { 'X-Ehrgym-Session': 's' } });
    assert.equal(r.status, 422);
    assert.equal(r.ct, CT);
    const issues = r.json().issue as Array<{ code: string; expression?: string[] }>;
    const exprs = issues.flatMap((i) => i.expression ?? []);
    assert.ok(exprs.includes('MedicationRequest.note'), JSON.stringify(issues));
    assert.ok(
      exprs.some((e) => e.startsWith('MedicationRequest.dosageInstruction[0].route')),
      JSON.stringify(issues),
    );
    assert.ok(issues.some((i) => i.code === 'code-invalid' && i.expression?.[0] === 'MedicationRequest.status'));
    const missing = await get(app, `${BASE}/ServiceRequest`, {
      method: 'POST',
      body: JSON.stringify({ resourceType: 'ServiceRequest', status: 'active' }),
      headers: { 'X-Ehrgym-Session': 's' },
    });
    assert.equal(missing.status, 422);
    assert.ok(missing.json().issue.some((i: { expression?: string[] }) => i.expression?.[0] === 'ServiceRequest.intent'));
    const good = {
      ...graderForm,
      dosageInstruction: [
        {
          route: { coding: [{ system: 'http://snomed.info/sct', code: '47625008' }], text: 'IV' },
          doseAndRate: [{ doseQuantity: { value: 2, unit: 'g', system: 'http://unitsofmeasure.org', code: 'g' } }],
        },
      ],
      note: [{ text: 'x' }],
    };
    const ok = await get(app, `${BASE}/MedicationRequest`, { method: 'POST', body: JSON.stringify(good), headers: { 'X-Ehrgym-Session': 's' } });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(store.searchResources('MedicationRequest', 'patient=S1', 's').length, 3);
  });
});

describe('FHIR transports and a third-party client over a real port', () => {
  let server: StartedFhirServer;
  const { store } = buildFixture();
  before(async () => {
    server = await startFhirServer(store, { trustForwarded: true });
  });
  after(async () => {
    await server.close();
  });

  it('listens on 127.0.0.1 and serves the fhir-kit-client library (search, read, create, paging)', async () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/fhir\/$/);
    const client = new Client({ baseUrl: `${server.url}_session/kit` });
    const bundle = (await client.search({ resourceType: 'Patient', searchParams: { identifier: 'S1' } })) as unknown as {
      total: number;
      entry: Array<{ resource: { id: string } }>;
    };
    assert.equal(bundle.total, 1);
    assert.equal(bundle.entry[0].resource.id, 'S1');
    const p = (await client.read({ resourceType: 'Patient', id: 'S3' })) as unknown as { name: Array<{ family: string }> };
    assert.equal(p.name[0].family, 'Dunn');
    const created = (await client.create({
      resourceType: 'Observation',
      body: { resourceType: 'Observation', status: 'final', code: { text: 'BP' }, subject: { reference: 'Patient/S1' } },
    })) as unknown as { id: string };
    assert.equal(created.id, '5002');
    const page1 = (await client.search({ resourceType: 'Patient', searchParams: { _count: 2 } })) as unknown as {
      entry: unknown[];
      link: Array<{ relation: string; url: string }>;
    };
    assert.equal(page1.entry.length, 2);
    const page2 = (await client.nextPage({ bundle: page1 as never })) as unknown as { entry: Array<{ resource: { id: string } }> };
    assert.deepEqual(
      page2.entry.map((e) => e.resource.id),
      ['S3', 'S4'],
    );
    await assert.rejects(client.search({ resourceType: 'Patient', searchParams: { 'legal-sex': 'male' } }));
  });

  it('in-process and HTTP transports give identical bytes on the official base', async () => {
    const inproc = inProcessTransport(createFhirApp(store), { session: 't1' });
    const http = httpTransport({ map: { from: OFFICIAL_API_BASE, to: server.url }, session: 't1' });
    const url = `${OFFICIAL_API_BASE}Observation?patient=S1&code=MG&_sort=-date&_format=json`;
    const a = await inproc({ method: 'GET', url });
    const b = await http({ method: 'GET', url });
    assert.equal(a.status, 200);
    assert.equal(a.contentType, CT);
    assert.equal(b.contentType, CT);
    assert.equal(a.body, b.body);
    assert.ok(a.body.includes('"fullUrl": "http://localhost:8080/fhir/Observation/1004"'));
    const bad = await http({ method: 'GET', url: `${OFFICIAL_API_BASE}Patient?legal-sex=male&_format=json` });
    assert.equal(bad.status, 400);
    const posted = await inproc({
      method: 'POST',
      url: `${OFFICIAL_API_BASE}Observation`,
      body: JSON.stringify({ resourceType: 'Observation', status: 'final' }),
    });
    // the server trusts X-Forwarded-Host only when told to: otherwise links name the address it was reached on
    const plain = await startFhirServer(store);
    try {
      const c = await httpTransport({ map: { from: OFFICIAL_API_BASE, to: plain.url } })({ method: 'GET', url });
      assert.ok(c.body.includes(`"fullUrl": "${plain.url}Observation/1004"`));
      assert.ok(!c.body.includes('localhost:8080'));
    } finally {
      await plain.close();
    }
    assert.equal(posted.status, 201);
    assert.equal(posted.headers?.location, 'http://localhost:8080/fhir/Observation/5002/_history/1');
    assert.equal(uuidFrom('x'), uuidFrom('x'));
  });
});
