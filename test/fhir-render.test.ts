/**
 * The uncached search path: bytes over a real HTTP port (request headers read from the Node request) equal the
 * in-process fetch and the plain `pretty(bundle)` rendering, whatever the entry/response caches hold, the parameter
 * order or the escaping the self link needs.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { FhirDecimal } from '../src/fhir/decimal.js';
import { pretty } from '../src/fhir/json.js';
import { createFhirApp, startFhirServer, type StartedFhirServer } from '../src/fhir/server.js';
import { buildFixture } from './fhir-fixtures.js';

function httpGet(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      })
      .on('error', reject);
  });
}

const PATHS = [
  '/fhir/Patient?name=Peter&name=Stafford&birthdate=1932-12-29&_format=json',
  '/fhir/Patient?birthdate=1969-05-12&name=M%C3%BCller',
  '/fhir/Patient?_count=1&birthdate=1969-05-12',
  '/fhir/Observation?patient=S1&code=MG&_sort=-date',
  '/fhir/Observation?code=MG&patient=S1&_count=5000',
  '/fhir/Observation?patient=S1&date=ge2023-11-12T10:15:00%2B00:00&_total=accurate',
  '/fhir/Patient?name=Peter&x*y=a%20b(c)~',
  '/fhir/Pat%69ent?identifier=S1',
  '/fhir/Observation?patient=S1&_pretty=false',
  '/fhir/_session/s9/Observation?patient=S2',
];

describe('uncached search rendering', () => {
  let servers: StartedFhirServer[] = [];
  before(async () => {
    const { store } = buildFixture();
    servers = [
      await startFhirServer(store),
      await startFhirServer(store, { responseCacheBytes: 0 }),
      await startFhirServer(store, { responseCacheBytes: 0, renderCacheChars: 0 }),
    ];
  });
  after(async () => {
    for (const s of servers) await s.close();
  });

  it('answers the same bytes over HTTP as in process, with or without caches, cold and warm', async () => {
    const app = createFhirApp(buildFixture().store, { responseCacheBytes: 0, renderCacheChars: 0 });
    const variants: Array<Record<string, string>> = [
      { host: 'localhost:8080' },
      { host: 'localhost:8080', 'X-Ehrgym-Session': 'ep-7' },
      { host: '127.0.0.1:9', 'X-Forwarded-Host': 'ehr.example.org', 'X-Forwarded-Proto': 'https' },
    ];
    for (const headers of variants) {
      for (const path of PATHS) {
        const want = await app.fetch(new Request(`http://${headers.host}${path}`, { headers }));
        const wantBody = await want.text();
        for (const s of servers) {
          for (let round = 0; round < 2; round++) {
            const got = await httpGet(s.port, path, headers);
            assert.equal(got.status, want.status, `${path} ${JSON.stringify(headers)}`);
            assert.equal(got.body, wantBody, `${path} ${JSON.stringify(headers)} port ${s.port} round ${round}`);
          }
        }
      }
    }
  });

  it('reads X-Ehrgym-Session and X-Forwarded-Host from the Node request (links and session visible in the bytes)', async () => {
    const [s] = servers;
    const headers = { host: 'a:1', 'x-forwarded-host': 'ehr.example.org', 'x-forwarded-proto': 'https' };
    const trusting = await startFhirServer(buildFixture().store, { trustForwarded: true });
    try {
      const fwd = await httpGet(trusting.port, '/fhir/Patient?_count=1', headers);
      assert.match(fwd.body, /"url": "https:\/\/ehr\.example\.org\/fhir\/Patient\?_count=1"/);
      assert.match(fwd.body, /"fullUrl": "https:\/\/ehr\.example\.org\/fhir\/Patient\/S1"/);
    } finally {
      await trusting.close();
    }
    // by default the forwarded headers are ignored: links name the Host the request was sent to
    const plain = await httpGet(s.port, '/fhir/Patient?_count=1', headers);
    assert.match(plain.body, /"fullUrl": "http:\/\/a:1\/fhir\/Patient\/S1"/);
    const bad = await httpGet(s.port, '/fhir/Patient', { host: 'a:1', 'X-Ehrgym-Session': 'x'.repeat(65) });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /X-Ehrgym-Session/);
  });

  it('renders a searchset exactly as pretty() renders the same Bundle object', async () => {
    const { store } = buildFixture();
    const app = createFhirApp(store, { responseCacheBytes: 0 });
    for (let round = 0; round < 2; round++) {
      const text = await (await app.fetch(new Request('http://localhost:8080/fhir/Observation?code=MG&patient=S1&_count=5000'))).text();
      const parsed = JSON.parse(text) as { entry: Array<{ resource: { id: string } }> };
      assert.ok(parsed.entry.length > 1);
      const expected = {
        ...parsed,
        entry: parsed.entry.map((e) => ({ ...e, resource: store.read('Observation', e.resource.id) })),
      };
      assert.equal(text, pretty(expected));
    }
  });
});

/** The straightforward HAPI printer (normalise, then one case per JSON kind): the reference `pretty` must equal. */
function referencePretty(v: unknown, level = 0): string {
  const ind = (n: number) => '  '.repeat(n);
  const norm = (x: unknown): unknown =>
    x && typeof x === 'object' && !(x instanceof FhirDecimal) && typeof (x as { toJSON?: unknown }).toJSON === 'function'
      ? (x as { toJSON(): unknown }).toJSON()
      : x;
  v = norm(v);
  if (v === null) return 'null';
  if (v instanceof FhirDecimal) return v.text;
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return String(v);
    case 'bigint':
      return String(v);
    case 'object':
      break;
    default:
      return 'null';
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return '[ ]';
    return '[ ' + v.map((x) => referencePretty(x, level)).join(', ') + ' ]';
  }
  const lines: string[] = [];
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const n = norm(x);
    if (n === undefined || typeof n === 'function' || typeof n === 'symbol') continue;
    lines.push(ind(level + 1) + JSON.stringify(k) + ': ' + referencePretty(n, level + 1));
  }
  return lines.length ? '{\n' + lines.join(',\n') + '\n' + ind(level) + '}' : '{ }';
}

describe('pretty (HAPI printer)', () => {
  it('equals the reference printer on edge values and on seeded random JSON', () => {
    const edge: unknown[] = [
      { a: undefined, b: () => 1, c: Symbol('x'), d: [undefined, () => 1, Symbol('y'), null], e: {}, f: [], g: [[], [{}], [1, [2, { h: 'i' }]]] },
      { when: new Date(Date.UTC(2023, 10, 13, 10, 15)), dec: new FhirDecimal('4.0'), neg: -0, inf: Infinity, nan: NaN, big: 12n, t: true, u: false },
      { 'k"ey\n': 'v\u2028\ud800"\\', ü: 'José', nested: { toJSON: () => ({ x: [1, 2] }) }, gone: { toJSON: () => undefined } },
      [{ a: 1 }, { b: [{ c: 2 }] }],
      'top',
      3.25,
      null,
      undefined,
    ];
    for (const v of edge) for (const level of [0, 2]) assert.equal(pretty(v, level), referencePretty(v, level));
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
    const gen = (depth: number): unknown => {
      const r = rnd();
      if (depth > 4 || r < 0.3) return ['s', 'é"\\', 1.5, -2, true, null, new FhirDecimal('1.10'), undefined][Math.floor(rnd() * 8)];
      if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => gen(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(rnd() * 5); i > 0; i--) o[['id', 'code', 'value', 'x y', '\u00e9', 'n' + i][Math.floor(rnd() * 6)]] = gen(depth + 1);
      return o;
    };
    for (let i = 0; i < 2000; i++) {
      const v = gen(0);
      assert.equal(pretty(v, i % 3), referencePretty(v, i % 3));
    }
    const { store } = buildFixture();
    for (const type of store.types()) for (const r of store.searchResources(type, '_count=5000')) assert.equal(pretty(r, 2), referencePretty(r, 2));
  });
});
