import type { Interval, McNemar } from './types.js';

/** z for a two-sided 95% interval (the 0.975 quantile of the standard normal). */
export const Z95 = 1.959963984540054;

/** Wilson score interval for `successes` out of `n` (n = 0 gives [0, 1]). */
export function wilson(successes: number, n: number, z: number = Z95): Interval {
  if (!Number.isInteger(successes) || !Number.isInteger(n) || successes < 0 || n < 0 || successes > n) {
    throw new RangeError(`wilson: invalid counts ${successes}/${n}`);
  }
  if (n === 0) return { low: 0, high: 1 };
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return {
    low: successes === 0 ? 0 : Math.max(0, centre - half),
    high: successes === n ? 1 : Math.min(1, centre + half),
  };
}

/** Binomial coefficient C(n, k) as an exact BigInt. */
export function binomialCoefficient(n: number, k: number): bigint {
  if (k < 0 || k > n) return 0n;
  const kk = Math.min(k, n - k);
  let c = 1n;
  for (let i = 1; i <= kk; i++) c = (c * BigInt(n - kk + i)) / BigInt(i);
  return c;
}

/**
 * Exact two-sided binomial test of `k` successes in `n` trials with p = 1/2, as R's `binom.test(k, n)` and
 * the exact McNemar test: p = min(1, 2 · P(X ≤ min(k, n−k))). Computed with exact integers, then divided once.
 */
export function binomialTwoSidedHalf(k: number, n: number): number {
  if (!Number.isInteger(k) || !Number.isInteger(n) || k < 0 || n < 0 || k > n) {
    throw new RangeError(`binomial test: invalid counts ${k}/${n}`);
  }
  if (n === 0) return 1;
  const m = Math.min(k, n - k);
  let tail = 0n;
  for (let i = 0; i <= m; i++) tail += binomialCoefficient(n, i);
  const num = 2n * tail;
  const den = 1n << BigInt(n);
  if (num >= den) return 1;
  return ratio(num, den);
}

/** num/den for BigInts as a double (top 62 bits of each, then the binary exponent applied in safe steps). */
function ratio(num: bigint, den: bigint): number {
  const sn = Math.max(0, num.toString(2).length - 62);
  const sd = Math.max(0, den.toString(2).length - 62);
  let v = Number(num >> BigInt(sn)) / Number(den >> BigInt(sd));
  let e = sn - sd;
  while (e !== 0) {
    const step = Math.max(-1000, Math.min(1000, e));
    v *= 2 ** step;
    e -= step;
  }
  return v;
}

/** Exact McNemar test on paired binary outcomes (baseline vs other, same tasks). */
export function mcnemarExact(base: boolean[], other: boolean[]): McNemar {
  if (base.length !== other.length) throw new RangeError('mcnemar: runs differ in length');
  let broken = 0;
  let fixed = 0;
  for (let i = 0; i < base.length; i++) {
    if (base[i] && !other[i]) broken++;
    else if (!base[i] && other[i]) fixed++;
  }
  return { broken, fixed, pValue: binomialTwoSidedHalf(Math.min(broken, fixed), broken + fixed) };
}
