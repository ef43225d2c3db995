/**
 * Seeded fuzz of the FHIR server over loopback HTTP: a few thousand requests with mutated paths, query parameters
 * (_count, dates, prefixes, unknown parameters, encodings), methods, headers, bodies (deep, huge, invalid UTF-8,
 * wrong resourceType, arrays) and session ids, against `startFhirServer` on a small synthetic world. Asserts no
 * uncaught error, no 5xx, an OperationOutcome with every 4xx, JSON with every 2xx, and a base that reads the same
 * bytes before and after.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { startFhirServer, type StartedFhirServer } from '../src/fhir/server.js';
import { loadWorld, type World } from '../src/worlds/index.js';
import { Rng } from '../src/worlds/prng.js';

const REQUESTS = 2000;
const CONCURRENCY = 8;
const CT = 'application/fhir+json;charset=utf-8';

interface Answer {
  status: number;
  contentType: string;
  body: Buffer;
}

function send(port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  // an explicit length: Node sends bodies of DELETE/OPTIONS without one, which the server would read as a new request
  const h = body === undefined ? headers : { ...headers, 'content-length': String(body.length) };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: h, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

let world: World;
let server: StartedFhirServer;
const problems: string[] = [];
const onUncaught = (e: unknown) => problems.push(`uncaught: ${e instanceof Error ? e.stack : String(e)}`);

before(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  world = await loadWorld({ world: 'synthetic', seed: 7, patients: 1 });
  server = await startFhirServer(world.store);
});

after(async () => {
  await server?.close();
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
});

/** SHA-256 over every base resource as the server answers sessionless searches (every page) and reads of the first ids. */
async function baseHash(port: number, types: string[]): Promise<string> {
  const h = createHash('sha256');
  for (const type of types) {
    let path: string | undefined = `/fhir/${type}?_count=10000&_pretty=false`;
    let pages = 0;
    while (path !== undefined) {
      const a = await send(port, 'GET', path, { host: 'localhost:8080' });
      assert.equal(a.status, 200, `${path}: ${a.body.toString().slice(0, 200)}`);
      h.update(a.body);
      const b = JSON.parse(a.body.toString()) as { link: Array<{ relation: string; url: string }>; entry?: Array<{ resource: { id: string } }> };
      for (const e of (b.entry ?? []).slice(0, 3)) h.update((await send(port, 'GET', `/fhir/${type}/${e.resource.id}`, { host: 'localhost:8080' })).body);
      const next = b.link.find((l) => l.relation === 'next')?.url;
      path = next === undefined ? undefined : new URL(next).pathname + new URL(next).search;
      assert.ok(++pages < 200, 'paging ends');
    }
  }
  return h.digest('hex');
}

const TYPES = [
  'Patient',
  'Observation',
  'Condition',
  'MedicationRequest',
  'Procedure',
  'ServiceRequest',
  'Encounter',
  'Foo',
  'metadata',
  '_session',
  'patient',
  '',
];
const PARAMS = [
  'patient',
  'subject',
  'code',
  'category',
  'date',
  'status',
  'identifier',
  'name',
  'family',
  'given',
  'birthdate',
  '_id',
  '_lastUpdated',
  'legal-sex',
  'code:not',
  'name:exact',
  'date:missing',
  'x:y:z',
  '',
  '%zz',
  '_elements',
  '_include',
];
const COUNTS = ['0', '1', '2', '20', '21', '250', '251', '-1', 'abc', '', '1e3', '%31', '+5', '5000', '10001', '99999999', '9'.repeat(400)];
const DATE_VALUES = [
  'ge2023-11-12T10:15:00+00:00',
  'ge2023-11-12T10:15:00%2B00:00',
  'le2023-11-13',
  '2023',
  'gt2023-11-12T10:15:00Z',
  'ap2023-11',
  'eq2023-13-45',
  'ge2023-11-12T10:15:00++00:00',
  'sa2023-11-12T25:00:00Z',
  'xx2023',
  'ge2023-11-12T10:15:00.1234567+14:00',
  'ge2023-11-12 10:15',
  '%00',
];
const VALUES = [
  'S1',
  'Patient/S1',
  'MG',
  'http://loinc.org|K',
  '|K',
  'loinc|',
  '|',
  'vital-signs',
  'final',
  'Peter',
  'M%C3%BCller',
  '%FF%FE',
  'a,b,c',
  'a\\,b',
  '%25',
  '%F0%9F%98%80',
  'x'.repeat(600),
];
const SESSIONS = ['ep1', 'ep2', 'ep-3', 'a.b_c', 'default', 'bad id', 'x'.repeat(65), '', '..', '%2e%2e', 'ep1%2Fx'];
const HOSTS = ['localhost:8080', '127.0.0.1', 'ehr.example.org:443', 'a:1', '[::1]:8080'];

function encodeForPath(s: string): string {
  return s.replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c));
}

function fuzzQuery(rng: Rng): string {
  const parts: string[] = [];
  const n = rng.int(0, 5);
  for (let i = 0; i < n; i++) {
    const k = rng.int(0, 9);
    if (k <= 1) parts.push(`_count=${rng.pick(COUNTS)}`);
    else if (k <= 3) parts.push(`${rng.pick(['date', '_lastUpdated', 'birthdate', 'authoredon', 'onset-date'])}=${rng.pick(DATE_VALUES)}`);
    else if (k === 4) parts.push(`_sort=${rng.pick(['date', '-date', '_lastUpdated', 'name', '', ',,', '-'])}`);
    else if (k === 5)
      parts.push(
        rng.pick([
          '_summary=count',
          '_summary=true',
          '_total=accurate',
          '_total=none',
          '_total=x',
          '_format=json',
          '_format=xml',
          '_format=application/fhir+json',
          '_pretty=false',
          '_pretty=maybe',
        ]),
      );
    else if (k === 6)
      parts.push(`_getpages=${rng.pick(['nope', '00000000-0000-4000-8000-000000000000', ''])}&_getpagesoffset=${rng.pick(['0', '20', '-1', '99999999999'])}`);
    else parts.push(`${rng.pick(PARAMS)}=${rng.pick(VALUES)}`);
  }
  if (rng.chance(0.05)) parts.push(rng.pick(['&&', '=', '==', '%', '%zz=1', 'a=%E0%A4%A']));
  return parts.length ? `?${parts.join('&')}` : '';
}

function fuzzPath(rng: Rng): string {
  const type = rng.pick(TYPES);
  const id = rng.pick(['S1', '1', '99999', '%zz', '..', 'x'.repeat(200), '', 'a%2Fb']);
  const prefix = rng.chance(0.3) ? `/_session/${encodeForPath(rng.pick(SESSIONS))}` : '';
  const shape = rng.int(0, 9);
  let path: string;
  if (shape === 0) path = '/fhir';
  else if (shape === 1) path = `/fhir${prefix}/metadata`;
  else if (shape <= 5) path = `/fhir${prefix}/${type}`;
  else if (shape <= 7) path = `/fhir${prefix}/${type}/${id}`;
  else if (shape === 8)
    path = rng.pick(['/other', '/', '//fhir//Patient/', '/fhir/Patient/S1/_history/1', '/fhir/%', '/fhirx', '/fhir/_session/ep1', '/fhir/Patient/S1/a/b/c']);
  else path = `/fhir${prefix}`;
  return encodeForPath(path + fuzzQuery(rng));
}

const OBS = { resourceType: 'Observation', status: 'final', code: { text: 'BP' }, subject: { reference: 'Patient/S1' }, valueString: '118/77 mmHg' };

function fuzzBody(rng: Rng, type: string): Buffer {
  switch (rng.int(0, 11)) {
    case 0:
      return Buffer.from(JSON.stringify({ ...OBS, resourceType: type }));
    case 1:
      return Buffer.from(JSON.stringify(OBS));
    case 2:
      return Buffer.from(`{"resourceType":"Observation","x":${'['.repeat(8000)}${']'.repeat(8000)}}`);
    case 3:
      return Buffer.from(`${'{"a":'.repeat(rng.int(90, 110))}1${'}'.repeat(110)}`);
    case 4:
      return Buffer.from(JSON.stringify({ ...OBS, note: 'x'.repeat(1024 * 1024) }));
    case 5:
      return Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]);
    case 6:
      return Buffer.from('[{"resourceType":"Observation"}]');
    case 7:
      return Buffer.from(rng.pick(['', 'null', '1', '"x"', '{', '{"resourceType":null}', '{"resourceType":{"a":1}}', '\ufeff{"resourceType":"Observation"}']));
    case 8:
      return Buffer.from(JSON.stringify({ ...OBS, id: 'S1', meta: 'x', resourceType: 'Patient' }));
    case 9:
      return Buffer.from(
        JSON.stringify({
          resourceType: 'Observation',
          status: 'final',
          effectiveDateTime: '2023-11-12T10:15:00+00:00',
          code: { coding: [{ code: 'MG' }] },
          subject: { reference: 'Patient/S1' },
        }),
      );
    case 10:
      return Buffer.from(JSON.stringify({ ...OBS, contained: Array.from({ length: 50 }, (_, i) => ({ resourceType: 'Observation', id: String(i) })) }));
    default:
      return Buffer.from(JSON.stringify({ resourceType: type, extension: [{ url: 'x', valueString: '\u0000\u2028' }] }));
  }
}

test('fuzz: seeded requests over HTTP never crash, never 5xx, always OperationOutcome on 4xx, base unchanged', { timeout: 120_000 }, async () => {
  const types = world.store.types().sort();
  const before = await baseHash(server.port, types);
  const fingerprint = world.store.fingerprint();
  const rng = new Rng('fhir-fuzz-1');
  const plan = Array.from({ length: REQUESTS }, () => {
    // a share of well-formed requests, so that the mutations also run next to successful reads and writes
    if (rng.chance(0.08)) {
      const sid = rng.pick(['ep1', 'ep2', 'ep-3']);
      return { method: 'POST', path: `/fhir/_session/${sid}/Observation`, headers: { host: 'localhost:8080' }, body: Buffer.from(JSON.stringify(OBS)) };
    }
    if (rng.chance(0.1)) {
      const q = rng.pick(['Patient?_count=2', 'Observation?code=MG&_sort=-date', 'Condition?_count=21', 'Observation?_count=300', 'Patient?birthdate=ge1900']);
      return { method: 'GET', path: `/fhir/${q}`, headers: { host: 'localhost:8080' }, body: undefined };
    }
    const method = rng.weighted(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'], [10, 5, 1, 1, 1, 1, 1]);
    const path = fuzzPath(rng);
    const headers: Record<string, string> = { host: rng.chance(0.9) ? 'localhost:8080' : rng.pick(HOSTS) };
    if (rng.chance(0.3)) headers['x-ehrgym-session'] = encodeForPath(rng.pick(SESSIONS));
    if (rng.chance(0.1)) headers['x-forwarded-host'] = rng.pick(['evil.example', 'a b', '"><x', 'x'.repeat(300), 'h:1, h:2']);
    if (rng.chance(0.1)) headers['x-forwarded-proto'] = rng.pick(['https', 'gopher', '']);
    if (rng.chance(0.2))
      headers['content-type'] = rng.pick(['application/fhir+json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']);
    const body = method === 'GET' || method === 'HEAD' ? undefined : rng.chance(0.9) ? fuzzBody(rng, path.split('/')[2] ?? 'Observation') : undefined;
    return { method, path, headers, body };
  });
  const statuses = new Map<number, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < plan.length) {
        const r = plan[next++]!;
        let a: Answer;
        try {
          a = await send(server.port, r.method, r.path, r.headers, r.body);
        } catch (e) {
          // a body over the limit may be answered 413 and the connection closed before it is all sent
          if ((r.body?.length ?? 0) > 1024 * 1024 && (e as { code?: string }).code === 'ECONNRESET') continue;
          problems.push(`${r.method} ${r.path.slice(0, 200)} (${r.body?.length ?? 0} bytes): ${(e as Error).message}`);
          continue;
        }
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        const what = `${r.method} ${r.path.slice(0, 200)} → ${a.status}`;
        if (a.status >= 500) problems.push(`${what}: ${a.body.toString().slice(0, 300)}`);
        if (r.method === 'HEAD' || a.status === 204) continue;
        if (a.contentType !== CT) {
          problems.push(`${what}: content-type ${a.contentType}`);
          continue;
        }
        let parsed: { resourceType?: string; issue?: Array<{ diagnostics?: string }> };
        try {
          parsed = JSON.parse(a.body.toString());
        } catch {
          problems.push(`${what}: body is not JSON`);
          continue;
        }
        if (a.status >= 400 && (parsed.resourceType !== 'OperationOutcome' || !parsed.issue?.[0]?.diagnostics))
          problems.push(`${what}: not an OperationOutcome`);
      }
    }),
  );
  assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`);
  // the mix reached every kind of answer
  for (const s of [200, 201, 204, 400, 403, 404, 405, 410, 413]) assert.ok(statuses.has(s), `status ${s} seen (${JSON.stringify([...statuses])})`);
  assert.equal(world.store.fingerprint(), fingerprint);
  assert.equal(await baseHash(server.port, types), before);
});
