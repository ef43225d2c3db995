/**
 * End-state grading (src/tasks/endstate.ts) and checkpoints (src/tasks/checkpoints.ts): an episode's accepted writes
 * replayed into a scratch session reproduce its session exactly (same ids, versions, contents), the grader reads what
 * was created and changed, and checkpoints give the verdict, partial credit and the first failure's class.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FhirStore } from '../src/fhir/store.js';
import { embeddedBackend } from '../src/eval/backend.js';
import { executeAction, defaultJsonLoads } from '../src/agent/loop.js';
import { formatAction, parseAction } from '../src/protocol/text.js';
import { acceptedWrites, replayEndState } from '../src/tasks/endstate.js';
import { checkpoint, finishedCheckpoint, gradeCheckpoints } from '../src/tasks/checkpoints.js';
import type { HistoryItem } from '../src/tasks/types.js';

const BASE = 'http://localhost:8080/fhir/';

function world(): FhirStore {
  const store = new FhirStore();
  store.add({ resourceType: 'Patient', id: 'S1' });
  store.add({
    resourceType: 'MedicationRequest',
    id: '10',
    status: 'active',
    intent: 'order',
    subject: { reference: 'Patient/S1' },
    medicationCodeableConcept: { text: 'ibuprofen 400 mg' },
  });
  return store.freeze();
}

/** Run the replies as an episode would (live writes in the session `live`) and return the text history. */
async function episode(store: FhirStore, replies: string[]): Promise<HistoryItem[]> {
  const backend = embeddedBackend(store, { name: 'test', fingerprint: 'x' }, BASE);
  const s = await backend.openSession('live');
  const history: HistoryItem[] = [{ role: 'user', content: 'prompt' }];
  for (const r of replies) {
    history.push({ role: 'agent', content: r });
    const a = parseAction(r, { put: true });
    if (a.kind === 'get' || a.kind === 'post' || a.kind === 'put') {
      history.push({ role: 'user', content: await executeAction(a, { fhir: s.transport, postMode: 'live', jsonLoads: defaultJsonLoads }) });
    }
  }
  return history;
}

const stop = JSON.stringify({
  resourceType: 'MedicationRequest',
  id: '10',
  status: 'stopped',
  intent: 'order',
  subject: { reference: 'Patient/S1' },
  medicationCodeableConcept: { text: 'ibuprofen 400 mg' },
});
const order = JSON.stringify({
  resourceType: 'ServiceRequest',
  status: 'active',
  intent: 'order',
  subject: { reference: 'Patient/S1' },
  code: { text: 'BMP' },
});
const bad = JSON.stringify({ resourceType: 'MedicationRequest', id: '999', status: 'stopped' });

test('replayed writes reproduce the live session: created, updated, touched, search, refused writes left out', async () => {
  const store = world();
  const replies = [
    `GET ${BASE}MedicationRequest?patient=S1`,
    formatAction({ kind: 'put', url: `${BASE}MedicationRequest/10`, body: stop }),
    formatAction({ kind: 'post', url: `${BASE}ServiceRequest`, body: order }),
    formatAction({ kind: 'put', url: `${BASE}MedicationRequest/999`, body: bad }),
    formatAction({ kind: 'post', url: `${BASE}ServiceRequest`, body: '{oops' }),
    'FINISH([])',
  ];
  const history = await episode(store, replies);
  const writes = acceptedWrites(history, { put: true });
  assert.deepEqual(
    writes.map((w) => `${w.method} ${w.url}`),
    [`PUT ${BASE}MedicationRequest/10`, `POST ${BASE}ServiceRequest`],
  );
  // without the ehrgym dialect a PUT is not an action
  assert.deepEqual(
    acceptedWrites(history).map((w) => w.method),
    ['POST'],
  );

  const backend = embeddedBackend(store, { name: 'test', fingerprint: 'x' }, BASE);
  const ctx = { apiBase: BASE, fhir: backend.base, openSession: (n: string) => backend.openSession(n) };
  const { state, close } = await replayEndState(ctx, history, { put: true, session: 'grade-1' });
  try {
    assert.deepEqual(state.touched(), ['MedicationRequest/10', `ServiceRequest/${store.firstSessionId}`]);
    const created = await state.created('ServiceRequest');
    assert.equal(created.length, 1);
    // same id and content as the live session made
    const live = store.read('ServiceRequest', String(store.firstSessionId), 'live');
    assert.deepEqual(created[0], live);
    const [u] = await state.updated('MedicationRequest');
    assert.equal(u?.before.status, 'active');
    assert.equal(u?.after.status, 'stopped');
    assert.equal(u?.after.meta?.versionId, '2');
    assert.deepEqual(
      (await state.search('MedicationRequest?patient=S1&status=active')).map((r) => r.id),
      [],
    );
    assert.deepEqual(
      (await state.search('ServiceRequest?patient=S1')).map((r) => r.id),
      [String(store.firstSessionId)],
    );
    // the base is untouched
    assert.equal(store.read('MedicationRequest', '10')?.status, 'active');
  } finally {
    await close();
  }
  assert.equal(store.hasSession('grade-1'), false);
  await assert.rejects(replayEndState({ apiBase: BASE, fhir: backend.base }, history, { put: true, session: 'x' }), /needs a scratch session/);
});

test('checkpoints: verdict, partial credit and the class of the first failure', () => {
  const ok = gradeCheckpoints([checkpoint('patient found', 'lookup', true), checkpoint('held', 'decision', true)], { branch: 'hold' });
  assert.equal(ok.correct, true);
  assert.equal(ok.score, 1);
  assert.equal(ok.failureClass, undefined);
  assert.equal(ok.branch, 'hold');
  const g = gradeCheckpoints([
    checkpoint('patient found', 'lookup', true),
    checkpoint('dose', 'payload', false, 5, 10),
    checkpoint('answer', 'decision', false),
  ]);
  assert.equal(g.correct, false);
  assert.equal(g.score, 1 / 3);
  assert.equal(g.failureClass, 'payload');
  assert.deepEqual(g.checks[1], { name: 'dose', class: 'payload', pass: false, expected: 5, actual: 10 });
  assert.equal(gradeCheckpoints([]).correct, false);
  assert.equal(finishedCheckpoint({ index: 0, status: 'task limit reached', result: null, history: [] }).class, 'budget');
  assert.equal(finishedCheckpoint({ index: 0, status: 'agent invalid action', result: null, history: [] }).class, 'protocol');
  assert.equal(finishedCheckpoint({ index: 0, status: 'completed', result: '[]', history: [] }).pass, true);
});
