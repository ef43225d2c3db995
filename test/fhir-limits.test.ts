/**
 * Server limits: the page-size cap with HAPI's `next` link, HAPI's paging shape above 250 matches, large pages
 * streamed with the same bytes as in process, and caches that do not grow with session paths or Host values.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { handlerTransport, inProcessTransport } from '../src/fhir/client.js';
import { MAX_PAGE_SIZE } from '../src/fhir/query.js';
import { createFhirApp, createFhirHandler, startFhirServer } from '../src/fhir/server.js';
import { FhirStore } from '../src/fhir/store.js';
import { patient } from './fhir-fixtures.js';

const B = 'http://localhost:8080/fhir/';

function storeWith(patients: number, observations: number): FhirStore {
  const s = new FhirStore();
  for (let i = 0; i < patients; i++) s.add(patient(`S${String(i).padStart(7, '0')}`, 'Doe', ['Pat'], '1950-01-01', 'female'));
  for (let i = 0; i < observations; i++) {
    s.add({
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: 'K', display: 'K' }], text: 'K' },
      subject: { reference: 'Patient/S0000000' },
      effectiveDateTime: `2023-11-${String(1 + (i % 12)).padStart(2, '0')}T10:${String(i % 60).padStart(2, '0')}:00+00:00`,
      valueQuantity: { value: 4, unit: 'mmol/L' },
    });
  }
  return s.freeze();
}

interface Bundle {
  total?: number;
  link: Array<{ relation: string; url: string }>;
  entry?: unknown[];
}

describe('page size cap', () => {
  const store = storeWith(1, MAX_PAGE_SIZE + 50);
  const fhir = handlerTransport(createFhirHandler(store));
  for (const count of ['99999999', '1000000000', '9'.repeat(300), String(MAX_PAGE_SIZE + 1)]) {
    it(`_count=${count.slice(0, 12)}… gets a page of ${MAX_PAGE_SIZE} and a next link, no misleading message`, async () => {
      const r = await fhir({ method: 'GET', url: `${B}Observation?code=K&_count=${count}` });
      assert.equal(r.status, 200, r.body.slice(0, 300));
      const b = JSON.parse(r.body) as Bundle;
      assert.equal(b.entry?.length, MAX_PAGE_SIZE);
      assert.equal(b.total, undefined);
      const next = b.link.find((l) => l.relation === 'next')!.url;
      assert.match(next, new RegExp(`_getpagesoffset=${MAX_PAGE_SIZE}&_count=${MAX_PAGE_SIZE}&_pretty=true&_bundletype=searchset$`));
      const last = JSON.parse((await fhir({ method: 'GET', url: next })).body) as Bundle;
      assert.equal(last.entry?.length, 50);
      assert.equal(last.total, MAX_PAGE_SIZE + 50);
    });
  }
  it('a non-numeric _count says what is expected', async () => {
    const r = await fhir({ method: 'GET', url: `${B}Observation?_count=lots` });
    assert.equal(r.status, 400);
    assert.match(r.body, /Invalid _count value: \\"lots\\" \(expected a non-negative integer\)/);
  });
  it('a large page streamed over HTTP has the bytes of the in-process reply (pretty and compact)', async () => {
    const server = await startFhirServer(store);
    try {
      for (const q of ['Observation?_count=3000', 'Observation?_count=3000&_pretty=false', 'Observation?_count=1001&_sort=-date']) {
        const want = await fhir({ method: 'GET', url: `${B}${q}` });
        const got = await new Promise<{ body: string; te?: string }>((resolve, reject) => {
          http
            .get({ host: '127.0.0.1', port: server.port, path: `/fhir/${q}`, headers: { host: 'localhost:8080' } }, (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => resolve({ body: Buffer.concat(chunks).toString(), te: res.headers['transfer-encoding'] }));
            })
            .on('error', reject);
        });
        assert.equal(got.te, 'chunked', q);
        assert.equal(got.body, want.body, q);
        JSON.parse(got.body);
      }
    } finally {
      await server.close();
    }
  });
});

describe("HAPI's paging shape", () => {
  const fhir = handlerTransport(createFhirHandler(storeWith(500, 0)));
  it('Patient?_count=500 over 500 patients: every entry, no total, a next link to an empty page with the total', async () => {
    const b = JSON.parse((await fhir({ method: 'GET', url: `${B}Patient?_count=500` })).body) as Bundle;
    assert.equal(b.entry?.length, 500);
    assert.equal(b.total, undefined);
    const next = b.link.find((l) => l.relation === 'next')!.url;
    assert.match(next, /^http:\/\/localhost:8080\/fhir\?_getpages=[0-9a-f-]{36}&_getpagesoffset=500&_count=500&_pretty=true&_bundletype=searchset$/);
    const after = JSON.parse((await fhir({ method: 'GET', url: next })).body) as Bundle;
    assert.equal(after.entry, undefined);
    assert.equal(after.total, 500);
  });
  it('a page that is not full, or full with 250 or fewer: total and no next link; _total=accurate: total, no next link', async () => {
    for (const count of [501, 5000]) {
      const b = JSON.parse((await fhir({ method: 'GET', url: `${B}Patient?_count=${count}` })).body) as Bundle;
      assert.equal(b.total, 500);
      assert.equal(b.link.length, 1);
    }
    const few = handlerTransport(createFhirHandler(storeWith(250, 0)));
    const b = JSON.parse((await few({ method: 'GET', url: `${B}Patient?_count=250` })).body) as Bundle;
    assert.equal(b.total, 250);
    assert.equal(b.link.length, 1);
    const acc = JSON.parse((await fhir({ method: 'GET', url: `${B}Patient?_count=500&_total=accurate` })).body) as Bundle;
    assert.equal(acc.total, 500);
    assert.equal(acc.link.length, 1);
  });
});

describe('caches keyed by what the server controls', () => {
  it('distinct session paths and Host values neither grow the heap nor leak into each other', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const store = storeWith(30, 300);
    const app = createFhirApp(store);
    const fetchIt = inProcessTransport(app);
    await fetchIt({ method: 'GET', url: `${B}metadata` });
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 3000; i++) {
      const r = await app.fetch(new Request(`http://h${i}.example:8080/fhir/_session/s${i}/metadata`, { headers: { 'x-forwarded-host': `f${i}.example` } }));
      await r.arrayBuffer();
    }
    gc();
    const grown = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
    // one CapabilityStatement text per distinct base (≈ 100 KB each) would be ≈ 300 MB
    assert.ok(grown < 40, `heap grew ${grown.toFixed(1)} MiB`);
    // a cached searchset answered on two bases carries each request's own base and bundle id
    const q = 'Observation?code=K&_count=5';
    const a = await fetchIt({ method: 'GET', url: `http://a.example/fhir/_session/one/${q}` });
    const b = await fetchIt({ method: 'GET', url: `http://b.example/fhir/${q}` });
    assert.ok(a.body.includes('"fullUrl": "http://a.example/fhir/_session/one/Observation/'));
    assert.ok(!a.body.includes('b.example'));
    assert.ok(b.body.includes('"url": "http://b.example/fhir/Observation?_count=5&code=K"'));
    const ids = [JSON.parse(a.body).id, JSON.parse(b.body).id];
    assert.notEqual(ids[0], ids[1]);
    assert.ok(a.body.includes(`_getpages=${ids[0]}&`) && b.body.includes(`_getpages=${ids[1]}&`));
    const neutral = (text: string, base: string, id: string) => text.replaceAll(base, 'BASE').replaceAll(id, 'ID');
    assert.equal(neutral(a.body, 'http://a.example/fhir/_session/one', ids[0]), neutral(b.body, 'http://b.example/fhir', ids[1]));
  });
});
