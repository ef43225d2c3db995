/** Session overlays: isolation, determinism of ids, O(1) drop, and an unchanged base after many sessions. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FhirDecimal } from '../src/fhir/decimal.js';
import { FhirError } from '../src/fhir/errors.js';
import { FhirStore } from '../src/fhir/store.js';
import { bp, buildFixture } from './fhir-fixtures.js';

describe('FHIR sessions', () => {
  it("keeps each session's writes private and the base unchanged", () => {
    const { store } = buildFixture();
    const before = store.fingerprint();
    const a = store.create(bp('S1', '118/77 mmHg'), 'a');
    const b = store.create(bp('S1', '120/80 mmHg'), 'b');
    // Same first id in both sessions: ids continue from the max numeric base id, per session.
    assert.equal(a.id, String(store.firstSessionId));
    assert.equal(b.id, a.id);
    assert.equal(store.firstSessionId, 5002);
    assert.deepEqual(
      store.searchResources('Observation', 'patient=S1&category=vital-signs', 'a').map((r) => r.valueString ?? r.id),
      ['1006', '118/77 mmHg'],
    );
    assert.deepEqual(
      store.searchResources('Observation', 'patient=S1&category=vital-signs', 'b').map((r) => r.valueString ?? r.id),
      ['1006', '120/80 mmHg'],
    );
    assert.deepEqual(
      store.searchResources('Observation', 'patient=S1&category=vital-signs').map((r) => r.id),
      ['1006'],
    );
    assert.deepEqual(
      store.searchResources('Observation', 'patient=S1&category=vital-signs', 'never-written').map((r) => r.id),
      ['1006'],
    );
    assert.equal(store.read('Observation', a.id!, 'a')?.valueString, '118/77 mmHg');
    assert.equal(store.read('Observation', a.id!), undefined);
    assert.equal(store.fingerprint(), before);
    assert.ok(store.dropSession('a'));
    assert.equal(store.read('Observation', a.id!, 'a'), undefined);
    assert.equal(store.read('Observation', b.id!, 'b')?.valueString, '120/80 mmHg');
  });

  it('session creates come after base data, sort with it, and get sequential ids', () => {
    const { store } = buildFixture();
    const m1 = store.create(
      {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ code: 'MG' }] },
        subject: { reference: 'Patient/S1' },
        effectiveDateTime: '2023-11-13T10:00:00+00:00',
      },
      'x',
    );
    const m2 = store.create(
      {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ code: 'MG' }] },
        subject: { reference: 'Patient/S1' },
        effectiveDateTime: '2020-01-01T00:00:00+00:00',
      },
      'x',
    );
    assert.deepEqual([m1.id, m2.id], ['5002', '5003']);
    assert.deepEqual(
      store.searchResources('Observation', 'patient=S1&code=MG', 'x').map((r) => r.id),
      ['1001', '1002', '1004', '1008', '1009', '5002', '5003'],
    );
    assert.deepEqual(
      store.searchResources('Observation', 'patient=S1&code=MG&_sort=-date', 'x').map((r) => r.id),
      ['5002', '1004', '1001', '1002', '1009', '5003', '1008'],
    );
    assert.deepEqual(
      store.searchResources('Observation', 'code=http://loinc.org|MG&patient=S1', 'x').map((r) => r.id),
      ['1001', '1002', '1004', '1008', '1009'],
    );
    assert.deepEqual(
      store.searchResources('Observation', 'code=|MG&patient=S1', 'x').map((r) => r.id),
      ['5002', '5003'],
    );
    // Stored as sent (compat), with id and meta first.
    assert.deepEqual(Object.keys(m1), ['resourceType', 'id', 'meta', 'status', 'code', 'subject', 'effectiveDateTime']);
    assert.deepEqual(m1.meta, { versionId: '1', lastUpdated: '2023-11-13T10:15:00.000+00:00' });
  });

  it('finds session-created patients by identifier, name and birthdate next to the indexed base', () => {
    const { store } = buildFixture();
    const p = store.create(
      { resourceType: 'Patient', identifier: [{ value: 'NEW1' }], name: [{ family: 'Stafford', given: ['Petra'] }], birthDate: '1932-12-29' },
      'np',
    );
    assert.deepEqual(
      store.searchResources('Patient', 'identifier=NEW1', 'np').map((r) => r.id),
      [p.id],
    );
    assert.deepEqual(
      store.searchResources('Patient', 'identifier=NEW1').map((r) => r.id),
      [],
    );
    assert.deepEqual(
      store.searchResources('Patient', 'name=pet&birthdate=1932-12-29', 'np').map((r) => r.id),
      ['S1', p.id],
    );
    assert.deepEqual(
      store.searchResources('Patient', 'family=stafford&_sort=-birthdate', 'np').map((r) => r.id),
      ['S1', p.id],
    );
  });

  it('is deterministic: the same episode gets the same ids whatever else happens', () => {
    const run = (noise: number) => {
      const { store } = buildFixture();
      for (let i = 0; i < noise; i++) store.create(bp('S2', `${i}/1 mmHg`), `noise${i}`);
      store.create(bp('S2', 'x'), 'noise0');
      return [store.create(bp('S1', '1/1 mmHg'), 'ep').id, store.create(bp('S1', '2/2 mmHg'), 'ep').id];
    };
    assert.deepEqual(run(0), run(7));
  });

  it('leaves the base byte-identical after 1,000 sessions with writes, and drops them all', () => {
    const { store } = buildFixture();
    const before = store.fingerprint();
    const baseHits = store.searchResources('Observation', 'patient=S1').map((r) => r.id);
    for (let i = 0; i < 1000; i++) {
      const sid = `ep-${i}`;
      store.create(bp('S1', `${100 + (i % 50)}/70 mmHg`), sid);
      if (i % 3 === 0) store.create({ resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/S1' } }, sid);
      const own = store.searchResources('Observation', 'patient=S1', sid);
      assert.equal(own.length, baseHits.length + 1);
      assert.equal(own[own.length - 1].valueString, `${100 + (i % 50)}/70 mmHg`);
    }
    assert.equal(store.sessionCount, 1000);
    assert.equal(store.searchResources('MedicationRequest', 'patient=S1', 'ep-3').length, 3);
    assert.equal(store.searchResources('MedicationRequest', 'patient=S1', 'ep-4').length, 2);
    assert.equal(store.fingerprint(), before);
    assert.deepEqual(
      store.searchResources('Observation', 'patient=S1').map((r) => r.id),
      baseHits,
    );
    for (let i = 0; i < 1000; i++) assert.ok(store.dropSession(`ep-${i}`));
    assert.equal(store.sessionCount, 0);
    assert.equal(store.fingerprint(), before);
  });

  it('refuses writes to a frozen base, bad session ids and unknown types; base objects are frozen', () => {
    const { store } = buildFixture();
    assert.throws(() => store.add({ resourceType: 'Patient', id: 'S9' }), /frozen/);
    assert.throws(() => store.addLazy('Patient', 'S9', {}, () => ({ resourceType: 'Patient' })), /frozen/);
    assert.throws(
      () => store.create(bp('S1', '1/1'), 'bad id!'),
      (e: unknown) => e instanceof FhirError && e.status === 400,
    );
    assert.throws(
      () => store.create({ resourceType: 'Foo' }, 'a'),
      (e: unknown) => e instanceof FhirError && e.status === 400,
    );
    const p = store.read('Patient', 'S1')!;
    assert.throws(() => {
      (p.name as Array<{ family: string }>)[0].family = 'Changed';
    }, TypeError);
    const withDecimal = store.create({ resourceType: 'Observation', valueQuantity: { value: new FhirDecimal('2.0'), unit: 'mg/dL' } }, 'a');
    assert.ok(withDecimal.valueQuantity.value instanceof FhirDecimal);
    assert.equal(withDecimal.valueQuantity.value.text, '2.0');
    const posted = bp('S1', '1/1 mmHg');
    const stored = store.create(posted, 'a');
    posted.valueString = 'mutated after POST';
    assert.equal(store.read('Observation', stored.id!, 'a')?.valueString, '1/1 mmHg');
  });

  it('audits lazily added keys against the materialised JSON', () => {
    const { store } = buildFixture();
    assert.deepEqual(store.auditKeys(), []);
    const s = new FhirStore();
    s.addLazy('Observation', '7', { patient: 'S1', code: ['http://loinc.org|K'] }, () => ({
      resourceType: 'Observation',
      id: '7',
      code: { coding: [{ system: 'http://loinc.org', code: 'MG' }] },
      subject: { reference: 'Patient/S1' },
      effectiveDateTime: '2023-11-13T10:00:00+00:00',
    }));
    const problems = s.auditKeys();
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems[0], /^Observation\/7 code: indexed \["http:\/\/loinc.org\|K"\], JSON gives \["http:\/\/loinc.org\|MG"\]$/);
    assert.match(problems[1], /^Observation\/7 date: indexed null/);
  });

  it('needs freeze() before sessions and assigns numeric ids to base resources without one', () => {
    const s = new FhirStore();
    s.add({ resourceType: 'Patient', id: 'S1' });
    assert.equal(s.add({ resourceType: 'Observation', subject: { reference: 'Patient/S1' } }), '1');
    assert.equal(s.add({ resourceType: 'Observation', id: '41' }), '41');
    assert.equal(s.add({ resourceType: 'Condition' }), '42');
    assert.throws(() => s.add({ resourceType: 'Condition', id: '42' }), /duplicate/);
    assert.throws(() => s.session('a'), /freeze/);
    s.freeze();
    assert.equal(s.create({ resourceType: 'Observation' }, 'a').id, '43');
    assert.deepEqual(
      s.searchResources('Observation', 'patient=S1').map((r) => r.id),
      ['1'],
    );
  });
});
