/**
 * Deterministic pseudo-random numbers for worlds, task generators and the data factory.
 *
 * - `hash32(key)`: FNV-1a over the UTF-16 code units of a key string, finished with a murmur3 avalanche.
 * - `Rng`: sfc32 (128-bit state, period ≥ 2^32) seeded from four hashes of the key.
 * - Stream splitting: `rngFor('v1', seed, 'patient', i, 'labs.MG')` derives an independent stream from a key such as
 *   `"v1|42|patient|7|labs.MG"`, so adding a stream or a patient never shifts any other stream's values.
 *
 * Never use Math.random() for data: the same key always yields the same sequence on every platform.
 */

/** FNV-1a 32-bit hash of a string with a final avalanche (unsigned 32-bit result). */
export function hash32(key: string, salt = 0): number {
  let h = (0x811c9dc5 ^ salt) >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // murmur3 fmix32
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Joins key parts with `|` (the canonical stream key form, e.g. `v1|42|patient|7|labs.MG`). */
export function streamKey(...parts: Array<string | number>): string {
  return parts.map(String).join('|');
}

/** A seeded sfc32 generator with convenience helpers. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(key: string | number) {
    const k = typeof key === 'number' ? `n|${key}` : key;
    this.a = hash32(k, 0x9e3779b9);
    this.b = hash32(k, 0x243f6a88);
    this.c = hash32(k, 0xb7e15162);
    this.d = hash32(k, 0x13198a2e) | 1;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** Unsigned 32-bit integer. */
  nextU32(): number {
    let { a, b, c, d } = this;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
    return t >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [min, max] (inclusive). */
  int(min: number, max: number): number {
    if (max < min) throw new RangeError(`Rng.int: max ${max} < min ${min}`);
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** Uniform float in [min, max). */
  float(min: number, max: number): number {
    return min + this.next() * (max - min);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Rng.pick: empty array');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** One element chosen with the given non-negative weights. */
  weighted<T>(items: readonly T[], weights: readonly number[]): T {
    let total = 0;
    for (const w of weights) total += w;
    let x = this.next() * total;
    for (let i = 0; i < items.length; i++) {
      x -= weights[i]!;
      if (x < 0) return items[i]!;
    }
    return items[items.length - 1]!;
  }

  /** Normal deviate (Box–Muller, one value per call). */
  normal(mean = 0, sd = 1): number {
    let u = this.next();
    if (u < 1e-12) u = 1e-12;
    const v = this.next();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Normal deviate clipped to [lo, hi]. */
  normalClipped(mean: number, sd: number, lo: number, hi: number): number {
    const x = this.normal(mean, sd);
    return x < lo ? lo : x > hi ? hi : x;
  }

  /** Fisher–Yates shuffle in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const t = items[i]!;
      items[i] = items[j]!;
      items[j] = t;
    }
    return items;
  }

  /** A derived, independent generator (`key` appended to this generator's next output). */
  fork(key: string): Rng {
    return new Rng(`${this.nextU32()}|${key}`);
  }
}

/** The generator for a stream key built from parts, e.g. `rngFor('v1', seed, 'patient', i, 'labs.MG')`. */
export function rngFor(...parts: Array<string | number>): Rng {
  return new Rng(streamKey(...parts));
}
