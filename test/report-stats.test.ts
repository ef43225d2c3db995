import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binomialCoefficient, binomialTwoSidedHalf, mcnemarExact, wilson } from '../src/report/stats.js';

const close = (a: number, b: number, eps = 1e-4): void => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

test('wilson interval matches published values', () => {
  // 5/10: (0.2366, 0.7634); 0/10: (0, 0.2775); 10/10: (0.7225, 1) — standard Wilson 95% tables
  const a = wilson(5, 10);
  close(a.low, 0.2366);
  close(a.high, 0.7634);
  const b = wilson(0, 10);
  assert.equal(b.low, 0);
  close(b.high, 0.2775);
  const c = wilson(10, 10);
  close(c.low, 0.7225);
  assert.equal(c.high, 1);
  // 174/300 (GPT-4o-mini third-party run): 0.5235 .. 0.6345
  const d = wilson(174, 300);
  close(d.low, 0.5235);
  close(d.high, 0.6345);
  assert.deepEqual(wilson(0, 0), { low: 0, high: 1 });
  assert.throws(() => wilson(3, 2), RangeError);
});

test('binomial coefficients are exact', () => {
  assert.equal(binomialCoefficient(10, 3), 120n);
  assert.equal(binomialCoefficient(300, 150).toString().length, 89);
  assert.equal(binomialCoefficient(300, 150), (binomialCoefficient(300, 150 - 1) * 151n) / 150n);
  assert.equal(binomialCoefficient(5, 7), 0n);
});

test('exact two-sided binomial (McNemar) p-values equal R binom.test', () => {
  assert.equal(binomialTwoSidedHalf(1, 10), 22 / 1024); // 0.021484375
  assert.equal(binomialTwoSidedHalf(9, 10), 22 / 1024);
  assert.equal(binomialTwoSidedHalf(0, 5), 0.0625);
  assert.equal(binomialTwoSidedHalf(0, 3), 0.25);
  assert.equal(binomialTwoSidedHalf(2, 12), 158 / 4096); // 0.03857421875
  assert.equal(binomialTwoSidedHalf(5, 10), 1);
  assert.equal(binomialTwoSidedHalf(0, 0), 1);
  assert.equal(binomialTwoSidedHalf(0, 1), 1);
  // 40 vs 60 discordant: R binom.test(40, 100)$p.value = 0.05688793
  close(binomialTwoSidedHalf(40, 100), 0.05688793, 1e-8);
  // beyond the double range of 2^n: 2 * sum_{i<=10} C(1000,i) / 2^1000 = 4.9667e-278 (exact rational, Python)
  close(binomialTwoSidedHalf(10, 1000) / 4.9666775829792705e-278, 1, 1e-12);
});

test('mcnemarExact counts fixed and broken pairs', () => {
  const base = [true, true, false, false, false, true];
  const other = [true, false, true, true, false, true];
  assert.deepEqual(mcnemarExact(base, other), { broken: 1, fixed: 2, pValue: 1 });
  const b2 = Array.from({ length: 12 }, (_, i) => i < 2);
  const o2 = Array.from({ length: 12 }, (_, i) => i >= 2);
  assert.deepEqual(mcnemarExact(b2, o2), { broken: 2, fixed: 10, pValue: 158 / 4096 });
});
