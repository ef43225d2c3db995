/**
 * The seeded PRNG: pinned outputs (integer arithmetic only, so identical on every platform), stream independence,
 * and the helpers' ranges and distributions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, hash32, rngFor, streamKey } from '../src/worlds/prng.js';

test('pinned hash and sfc32 outputs (cross-platform stability)', () => {
  assert.equal(hash32(''), 2872998923);
  assert.equal(hash32('v1|42|patient|7|labs.MG'), 1204703305);
  const r = new Rng('v1|42|patient|7|labs.MG');
  assert.deepEqual(
    [0, 1, 2, 3, 4].map(() => r.nextU32()),
    [2408405307, 3779051496, 2782069428, 3433961977, 894221560],
  );
  assert.equal(streamKey('v1', 42, 'patient', 7, 'labs.MG'), 'v1|42|patient|7|labs.MG');
  assert.equal(rngFor('v1', 42, 'patient', 7, 'labs.MG').nextU32(), 2408405307);
});

test('streams are independent: another key gives another sequence; same key, same sequence', () => {
  const a = rngFor('v1', 42, 'patient', 7, 'labs.MG');
  const b = rngFor('v1', 42, 'patient', 7, 'labs.K');
  const c = rngFor('v1', 42, 'patient', 7, 'labs.MG');
  const sa = Array.from({ length: 50 }, () => a.nextU32());
  const sb = Array.from({ length: 50 }, () => b.nextU32());
  const sc = Array.from({ length: 50 }, () => c.nextU32());
  assert.deepEqual(sa, sc);
  assert.ok(sa.filter((x, i) => x === sb[i]).length === 0);
});

test('helpers: inclusive int range, pick, shuffle is a permutation, normal moments, chance, weighted', () => {
  const r = new Rng('helpers');
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const x = r.int(3, 7);
    assert.ok(Number.isInteger(x) && x >= 3 && x <= 7);
    seen.add(x);
  }
  assert.deepEqual([...seen].sort(), [3, 4, 5, 6, 7]);
  assert.throws(() => r.int(5, 4), RangeError);
  assert.throws(() => r.pick([]), RangeError);
  const items = Array.from({ length: 30 }, (_, i) => i);
  const sh = r.shuffle([...items]);
  assert.notDeepEqual(sh, items);
  assert.deepEqual(
    [...sh].sort((a, b) => a - b),
    items,
  );
  let sum = 0;
  let sq = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const x = r.normal(10, 2);
    sum += x;
    sq += x * x;
  }
  const mean = sum / n;
  const sd = Math.sqrt(sq / n - mean * mean);
  assert.ok(Math.abs(mean - 10) < 0.1, `mean ${mean}`);
  assert.ok(Math.abs(sd - 2) < 0.1, `sd ${sd}`);
  let hits = 0;
  for (let i = 0; i < n; i++) if (r.chance(0.25)) hits++;
  assert.ok(Math.abs(hits / n - 0.25) < 0.02);
  const w = { a: 0, b: 0 };
  for (let i = 0; i < n; i++) w[r.weighted(['a', 'b'] as const, [1, 3])]++;
  assert.ok(Math.abs(w.b / n - 0.75) < 0.02);
  for (let i = 0; i < 1000; i++) {
    const x = r.normalClipped(0, 5, -1, 1);
    assert.ok(x >= -1 && x <= 1);
  }
});
