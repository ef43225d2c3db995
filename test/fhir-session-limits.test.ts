/**
 * Session limits and footprint: the cap on live sessions (503) and the byte budget per session (429) in the store,
 * over HTTP (OperationOutcome replies) and through `ehrgym serve` flags; reads never open a session; a session's
 * overlay holds only its own rows; a dropped session is gone from every structure and garbage-collectable.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { FhirError } from '../src/fhir/errors.js';
import { createFhirHandler, startFhirServer } from '../src/fhir/server.js';
import { DEFAULT_MAX_SESSION_BYTES, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_TOTAL_SESSION_BYTES, FhirStore } from '../src/fhir/store.js';
import { bp, buildFixture } from './fhir-fixtures.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** The FhirError a call throws (fails the test when it does not throw one). */
function fhirErrorOf(f: () => unknown): FhirError {
  try {
    f();
  } catch (e) {
    if (e instanceof FhirError) return e;
    throw e;
  }
  assert.fail('expected a FhirError');
}

/** Whether an object is collected once nothing else references it (forced GC after the current job). */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 5 && ref.deref() !== undefined; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return ref.deref() === undefined;
}

describe('FHIR session limits', () => {
  it('has documented defaults and validates its limits', () => {
    const store = new FhirStore();
    assert.equal(store.maxSessions, DEFAULT_MAX_SESSIONS);
    assert.equal(DEFAULT_MAX_SESSIONS, 10_000);
    assert.equal(store.maxSessionBytes, DEFAULT_MAX_SESSION_BYTES);
    assert.equal(DEFAULT_MAX_SESSION_BYTES, 16 * 1024 * 1024);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => new FhirStore({ maxSessions: bad }), /maxSessions must be a positive integer or Infinity/);
      assert.throws(() => new FhirStore({ maxSessionBytes: bad }), /maxSessionBytes must be a positive integer or Infinity/);
      assert.throws(() => {
        store.maxSessions = bad;
      }, RangeError);
    }
    store.maxSessions = Number.POSITIVE_INFINITY;
    store.maxSessionBytes = 123;
    assert.equal(store.maxSessions, Number.POSITIVE_INFINITY);
    assert.equal(store.maxSessionBytes, 123);
  });

  it('refuses to open more than maxSessions sessions with a 503, opening nothing', () => {
    const { store } = buildFixture();
    store.maxSessions = 2;
    store.create(bp('S1', '1/1 mmHg'), 'a');
    store.create(bp('S1', '2/2 mmHg'), 'b');
    const err = fhirErrorOf(() => store.create(bp('S1', '3/3 mmHg'), 'c'));
    assert.equal(err.status, 503);
    assert.match(err.message, /^Too many live sessions \(limit 2\): cannot open session "c"/);
    assert.deepEqual(err.issues, [{ severity: 'error', code: 'throttled', diagnostics: err.message }]);
    assert.equal(fhirErrorOf(() => store.session('c')).status, 503);
    assert.equal(store.sessionCount, 2);
    assert.equal(store.hasSession('c'), false);
    assert.deepEqual(store.sessionIds(), ['a', 'b']);
    // Live sessions keep writing at the cap; reading in an unknown session answers from the base.
    assert.equal(store.create(bp('S1', '4/4 mmHg'), 'a').id, String(store.firstSessionId + 1));
    assert.deepEqual(
      store.searchResources('Observation', 'patient=S1&category=vital-signs', 'c').map((r) => r.id),
      ['1006'],
    );
    assert.equal(store.sessionCount, 2);
    // Dropping one makes room.
    assert.ok(store.dropSession('b'));
    assert.equal(store.create(bp('S1', '3/3 mmHg'), 'c').id, String(store.firstSessionId));
    assert.deepEqual(store.sessionIds(), ['a', 'c']);
    // Lowering the cap below the live count drops nothing; it only refuses new sessions.
    store.maxSessions = 1;
    assert.equal(store.sessionCount, 2);
    assert.equal(store.create(bp('S1', '5/5 mmHg'), 'c').id, String(store.firstSessionId + 1));
    assert.equal(fhirErrorOf(() => store.create(bp('S1', '6/6 mmHg'), 'd')).status, 503);
  });

  it('counts stored JSON bytes per session and refuses a write past the budget with a 429, storing nothing', () => {
    const { store } = buildFixture();
    const first = store.create(bp('S1', '118/77 mmHg'), 'a');
    const size = Buffer.byteLength(JSON.stringify(first));
    assert.deepEqual(store.sessionInfo('a'), { id: 'a', writes: 1, updates: 0, bytes: size, rows: { Observation: 1 } });
    // Non-ASCII text counts in UTF-8 bytes.
    const second = store.create(bp('S1', 'Blutdruck 118/77 mmHg — ü'), 'a');
    assert.equal(store.sessionInfo('a')!.bytes, size + Buffer.byteLength(JSON.stringify(second)));
    const used = store.sessionInfo('a')!.bytes;
    store.maxSessionBytes = used + size; // room for exactly one more resource of the first one's size
    assert.equal(store.create(bp('S1', '118/77 mmHg'), 'a').id, String(store.firstSessionId + 2));
    const err = fhirErrorOf(() => store.create(bp('S1', '118/77 mmHg'), 'a'));
    assert.equal(err.status, 429);
    assert.equal(
      err.message,
      `Session "a" is over its budget of ${used + size} bytes: this Observation needs ${size} bytes and ${used + size} are used; drop the session or write less`,
    );
    assert.deepEqual(err.issues, [{ severity: 'error', code: 'too-costly', diagnostics: err.message }]);
    // Nothing was stored and no id was used: the next accepted write gets the next id.
    assert.deepEqual(store.sessionInfo('a'), { id: 'a', writes: 3, updates: 0, bytes: used + size, rows: { Observation: 3 } });
    assert.equal(store.searchResources('Observation', 'patient=S1&category=vital-signs', 'a').length, 4);
    store.maxSessionBytes = DEFAULT_MAX_SESSION_BYTES;
    assert.equal(store.create(bp('S1', '118/77 mmHg'), 'a').id, String(store.firstSessionId + 3));
    // A first write too large for any session opens no session.
    store.maxSessionBytes = size - 1;
    assert.equal(fhirErrorOf(() => store.create(bp('S1', '118/77 mmHg'), 'fresh')).status, 429);
    assert.equal(store.hasSession('fresh'), false);
    // The budget is per session: another session still writes what fits.
    assert.equal(fhirErrorOf(() => store.create(bp('S1', '118/77 mmHg'), 'b')).status, 429);
    assert.equal(store.create({ resourceType: 'Basic' }, 'b').id, String(store.firstSessionId));
  });

  it('bounds the bytes of all live sessions together with a 503, and dropping a session frees its share', () => {
    const { store } = buildFixture();
    const size = Buffer.byteLength(JSON.stringify(store.create(bp('S1', '118/77 mmHg'), 'a')));
    assert.equal(store.maxTotalSessionBytes, DEFAULT_MAX_TOTAL_SESSION_BYTES);
    assert.equal(store.sessionBytes, size);
    store.maxTotalSessionBytes = 3 * size;
    store.create(bp('S1', '118/77 mmHg'), 'b');
    store.create(bp('S1', '118/77 mmHg'), 'c');
    assert.equal(store.sessionBytes, 3 * size);
    const err = fhirErrorOf(() => store.create(bp('S1', '118/77 mmHg'), 'a'));
    assert.equal(err.status, 503);
    assert.equal(
      err.message,
      `The server's sessions hold ${3 * size} bytes of their budget of ${3 * size}: this Observation needs ${size} bytes; retry after sessions are dropped`,
    );
    assert.deepEqual(err.issues, [{ severity: 'error', code: 'throttled', diagnostics: err.message }]);
    assert.equal(fhirErrorOf(() => store.create(bp('S1', '118/77 mmHg'), 'd')).status, 503);
    assert.equal(store.hasSession('d'), false);
    assert.deepEqual(store.sessionInfo('a'), { id: 'a', writes: 1, updates: 0, bytes: size, rows: { Observation: 1 } });
    assert.equal(store.dropSession('b'), true);
    assert.equal(store.dropSession('b'), false);
    assert.equal(store.sessionBytes, 2 * size);
    assert.equal(store.create(bp('S1', '118/77 mmHg'), 'd').id, String(store.firstSessionId));
    assert.throws(() => new FhirStore({ maxTotalSessionBytes: 0 }), /maxTotalSessionBytes must be a positive integer or Infinity/);
  });

  it("keeps only a session's own rows in its overlay, per type", () => {
    const { store } = buildFixture();
    const baseObs = store.count('Observation');
    assert.ok(baseObs > 5);
    store.create(bp('S1', '1/1 mmHg'), 'a');
    store.create(bp('S2', '2/2 mmHg'), 'a');
    store.create({ resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/S1' } }, 'a');
    store.create(bp('S1', '3/3 mmHg'), 'b');
    assert.deepEqual(store.sessionInfo('a')!.rows, { Observation: 2, MedicationRequest: 1 });
    assert.deepEqual(store.sessionInfo('b')!.rows, { Observation: 1 });
    assert.equal(store.count('Observation'), baseObs);
    assert.equal(store.sessionInfo('nope'), undefined);
  });

  it('opens no session on reads: read, search and unknown-session DELETE allocate nothing', async () => {
    const { store } = buildFixture();
    assert.equal(store.read('Patient', 'S1', 'ghost')?.id, 'S1');
    assert.equal(store.read('Observation', String(store.firstSessionId), 'ghost'), undefined);
    assert.ok(store.search('Observation', 'patient=S1', 'ghost').total > 0);
    assert.equal(store.sessionHasType('ghost', 'Observation'), false);
    const handle = createFhirHandler(store);
    const req = (method: string, path: string, headers: Record<string, string> = {}) =>
      handle({ method, url: `http://localhost:8080${path}`, header: (n) => headers[n.toLowerCase()], body: async () => new Uint8Array() });
    assert.equal((await req('GET', '/fhir/_session/ghost/Observation?patient=S1')).status, 200);
    assert.equal((await req('GET', '/fhir/_session/ghost/Patient/S1')).status, 200);
    assert.equal((await req('GET', `/fhir/_session/ghost/Observation/${store.firstSessionId}`)).status, 404);
    assert.equal((await req('GET', '/fhir/Observation?patient=S1', { 'x-ehrgym-session': 'ghost2' })).status, 200);
    assert.equal((await req('DELETE', '/fhir/_session/ghost3')).status, 204);
    assert.equal(store.sessionCount, 0);
    assert.deepEqual(store.sessionIds(), []);
    // At the cap, reads in unknown sessions still answer.
    store.maxSessions = 1;
    store.create(bp('S1', '1/1 mmHg'), 'a');
    assert.equal((await req('GET', '/fhir/_session/ghost/Observation?patient=S1')).status, 200);
    assert.equal(store.sessionCount, 1);
  });

  it('drops a session from every structure; nothing keeps a reference to it', async () => {
    const { store } = buildFixture();
    // Only weak references and the id leave this function.
    const [createdId, resRef] = (() => {
      const created = store.create(bp('S1', '118/77 mmHg'), 'a');
      return [created.id!, new WeakRef(created)] as const;
    })();
    store.create({ resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/S1' } }, 'a');
    store.searchResources('Observation', 'code=BP', 'a'); // builds the session's lazy token lookups
    let ref: WeakRef<object> = new WeakRef(store.session('a'));
    assert.ok(store.dropSession('a'));
    assert.equal(store.dropSession('a'), false);
    assert.equal(store.hasSession('a'), false);
    assert.equal(store.sessionInfo('a'), undefined);
    assert.equal(store.sessionCount, 0);
    assert.deepEqual(store.sessionIds(), []);
    assert.equal(store.sessionHasType('a', 'Observation'), false);
    assert.equal(store.read('Observation', createdId, 'a'), undefined);
    assert.ok(await collected(ref), 'the dropped session is garbage');
    assert.ok(await collected(resRef), 'its resources are garbage');
    // Reopened under the same name it starts afresh.
    assert.equal(store.create(bp('S1', '1/1 mmHg'), 'a').id, createdId);
    assert.deepEqual(store.sessionInfo('a')!.rows, { Observation: 1 });

    // The same through the HTTP handler: POST, search, DELETE.
    const handle = createFhirHandler(store);
    const post = await handle({
      method: 'POST',
      url: 'http://localhost:8080/fhir/_session/h/Observation',
      header: (n) => (n.toLowerCase() === 'content-type' ? 'application/fhir+json' : undefined),
      body: async () => new TextEncoder().encode(JSON.stringify(bp('S1', '9/9 mmHg'))),
    });
    assert.equal(post.status, 201);
    const get = (path: string, method = 'GET') =>
      handle({ method, url: `http://localhost:8080${path}`, header: () => undefined, body: async () => new Uint8Array() });
    assert.equal((await get('/fhir/_session/h/Observation?patient=S1')).status, 200);
    ref = new WeakRef(store.session('h'));
    assert.equal((await get('/fhir/_session/h', 'DELETE')).status, 204);
    assert.equal(store.hasSession('h'), false);
    assert.ok(await collected(ref), 'the server keeps no reference to a dropped session');
  });

  it('answers the caps over HTTP with OperationOutcome 503 and 429, and keeps serving', async () => {
    const { store } = buildFixture();
    store.maxSessions = 2;
    store.maxSessionBytes = 2048;
    const server = await startFhirServer(store);
    try {
      const post = (session: string, body: unknown) =>
        fetch(`${server.url}_session/${session}/Observation`, {
          method: 'POST',
          headers: { 'content-type': 'application/fhir+json' },
          body: JSON.stringify(body),
        });
      assert.equal((await post('a', bp('S1', '1/1 mmHg'))).status, 201);
      assert.equal((await post('b', bp('S1', '2/2 mmHg'))).status, 201);
      const full = await post('c', bp('S1', '3/3 mmHg'));
      assert.equal(full.status, 503);
      assert.match(full.headers.get('content-type') ?? '', /^application\/fhir\+json/);
      const oo = (await full.json()) as { resourceType: string; issue: Array<{ severity: string; code: string; diagnostics: string }> };
      assert.equal(oo.resourceType, 'OperationOutcome');
      assert.equal(oo.issue[0].code, 'throttled');
      assert.match(oo.issue[0].diagnostics, /^Too many live sessions \(limit 2\): cannot open session "c"/);
      assert.equal(store.hasSession('c'), false);

      const big = { ...bp('S1', '4/4 mmHg'), note: [{ text: 'x'.repeat(4000) }] };
      const over = await post('a', big);
      assert.equal(over.status, 429);
      const oo2 = (await over.json()) as { resourceType: string; issue: Array<{ code: string; diagnostics: string }> };
      assert.equal(oo2.resourceType, 'OperationOutcome');
      assert.equal(oo2.issue[0].code, 'too-costly');
      assert.match(oo2.issue[0].diagnostics, /^Session "a" is over its budget of 2048 bytes: this Observation needs \d+ bytes/);
      assert.equal(store.sessionInfo('a')!.writes, 1);

      // Dropping a session over HTTP makes room; the server answers normally throughout.
      assert.equal((await fetch(`${server.url}_session/b`, { method: 'DELETE' })).status, 204);
      assert.equal((await post('c', bp('S1', '3/3 mmHg'))).status, 201);
      const search = await fetch(`${server.url}_session/c/Observation?patient=S1&category=vital-signs`);
      assert.equal(search.status, 200);
      assert.equal(((await search.json()) as { total: number }).total, 2);
    } finally {
      await server.close();
    }
  });
});

describe('ehrgym serve --max-sessions / --max-session-bytes / --max-total-session-bytes', () => {
  const CLI = ['--import', 'tsx', 'src/cli/index.ts', 'serve'];

  it('rejects bad values with one line and exit 2', async () => {
    const { main } = await import('../src/cli/index.js');
    const cases: Array<[string[], string]> = [
      [['--max-sessions', '0'], 'ehrgym: --max-sessions must be ≥ 1, got 0\n'],
      [['--max-sessions', 'many'], 'ehrgym: --max-sessions must be an integer, got "many"\n'],
      [['--max-session-bytes', '-5'], 'ehrgym: --max-session-bytes must be an integer, got "-5"\n'],
      [['--max-session-bytes', '16MiB'], 'ehrgym: --max-session-bytes must be an integer, got "16MiB"\n'],
      [['--max-total-session-bytes', '0'], 'ehrgym: --max-total-session-bytes must be ≥ 1, got 0\n'],
    ];
    for (const [args, want] of cases) {
      let err = '';
      const orig = process.stderr.write.bind(process.stderr);
      (process.stderr as { write: unknown }).write = (chunk: string | Uint8Array) => {
        err += String(chunk);
        return true;
      };
      let code: number;
      try {
        code = await main(['node', 'ehrgym', 'serve', '--world', 'empty', ...args]);
      } finally {
        (process.stderr as { write: unknown }).write = orig;
      }
      assert.equal(code, 2, args.join(' '));
      assert.equal(err, want, args.join(' '));
    }
    const r = spawnSync(process.execPath, [...CLI, '--world', 'empty', '--max-sessions', '0'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'ehrgym: --max-sessions must be ≥ 1, got 0\n');
  });

  it('applies the flags to the served store', async () => {
    const child = spawn(
      process.execPath,
      [...CLI, '--world', 'empty', '--port', '0', '--max-sessions', '2', '--max-session-bytes', '300', '--max-total-session-bytes', '400'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
        child.stdout.on('data', (d) => {
          out += d;
          const m = /(http:\/\/\S+\/fhir\/)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
        child.on('exit', (code) => reject(new Error(`server exited (${code}): ${out}`)));
      });
      const post = (session: string, body: unknown) =>
        fetch(`${url}_session/${session}/Basic`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(body) });
      assert.equal((await post('a', { resourceType: 'Basic' })).status, 201);
      const note = (n: number) => ({ resourceType: 'Basic', text: { status: 'generated', div: 'x'.repeat(n) } });
      assert.equal((await post('b', note(150))).status, 201);
      const overAll = await post('a', note(50)); // fits a's 300 bytes, not the 400 of all sessions
      assert.equal(overAll.status, 503);
      assert.match(((await overAll.json()) as { issue: Array<{ diagnostics: string }> }).issue[0].diagnostics, /budget of 400/);
      const tooMany = await post('c', { resourceType: 'Basic' });
      assert.equal(tooMany.status, 503);
      assert.match(((await tooMany.json()) as { issue: Array<{ diagnostics: string }> }).issue[0].diagnostics, /limit 2/);
      const tooBig = await post('a', { resourceType: 'Basic', text: { status: 'generated', div: 'x'.repeat(400) } });
      assert.equal(tooBig.status, 429);
      assert.match(((await tooBig.json()) as { issue: Array<{ diagnostics: string }> }).issue[0].diagnostics, /budget of 300 bytes/);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
