/**
 * Plantings: records a caller plants beside the synthetic cohort. Deterministic, numbered after the cohort, recorded
 * in the fingerprint; no plantings leaves the world byte-identical; bad plantings are refused with one clear error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadWorld } from '../src/worlds/index.js';
import type { Planting } from '../src/worlds/synthetic.js';
import type { Resource } from '../src/fhir/types.js';

const note: Planting = {
  name: 'note',
  version: 'note-v1',
  plant: (p, rng) =>
    p.index % 2 === 0
      ? []
      : [{ resourceType: 'Flag', status: 'active', code: { text: `flag ${rng.int(0, 999)}` }, subject: { reference: `Patient/${p.mrn}` } } as Resource],
};

const all = (w: Awaited<ReturnType<typeof loadWorld>>, type: string): Resource[] =>
  w.store.search(type, []).handles.map((h) => w.store.read(type, w.store.idOf(type, h))!);

test('plantings: deterministic, numbered after the cohort, in the fingerprint; none = the plain world', async () => {
  const plain = await loadWorld({ world: 'synthetic', seed: 2, patients: 6 });
  const none = await loadWorld({ world: 'synthetic', seed: 2, patients: 6, plantings: [] });
  assert.equal(none.fingerprint, plain.fingerprint);
  assert.equal(none.contentFingerprint(), plain.contentFingerprint());
  const a = await loadWorld({ world: 'synthetic', seed: 2, patients: 6, plantings: [note] });
  const b = await loadWorld({ world: 'synthetic', seed: 2, patients: 6, plantings: [note] });
  assert.equal(a.contentFingerprint(), b.contentFingerprint());
  assert.notEqual(a.fingerprint, plain.fingerprint);
  assert.equal(a.total, plain.total + 3);
  const flags = all(a, 'Flag');
  assert.equal(flags.length, 3);
  const maxBase = Math.max(
    ...Object.keys(plain.counts).flatMap((t) =>
      all(plain, t)
        .map((r) => Number(r.id))
        .filter(Number.isFinite),
    ),
  );
  assert.ok(
    flags.every((f) => Number(f.id) > maxBase),
    'planted ids follow the cohort',
  );
  assert.deepEqual(
    flags.map((f) => (f.subject as { reference: string }).reference),
    [1, 3, 5].map((i) => `Patient/${a.patientIds[i]}`),
  );
  assert.equal((flags[0]!.meta as { versionId: string }).versionId, '1');
  // another version is another world
  const v2 = await loadWorld({ world: 'synthetic', seed: 2, patients: 6, plantings: [{ ...note, version: 'note-v2' }] });
  assert.notEqual(v2.fingerprint, a.fingerprint);
});

test('plantings: refused on other worlds, twice, or with ids', async () => {
  await assert.rejects(loadWorld({ world: 'empty', plantings: [note] }), /plantings apply to the synthetic world only/);
  await assert.rejects(loadWorld({ world: 'synthetic', seed: 2, patients: 3, plantings: [note, note] }), /planting "note" is given twice/);
  const withId: Planting = { name: 'x', version: '1', plant: () => [{ resourceType: 'Flag', id: '7' } as Resource] };
  await assert.rejects(loadWorld({ world: 'synthetic', seed: 2, patients: 3, plantings: [withId] }), /returned a Flag with an id/);
});
