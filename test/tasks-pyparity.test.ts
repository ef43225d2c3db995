/**
 * pysem against recorded CPython behaviour (test/fixtures/tasks-python/gen.py → cases.json): json.loads results and
 * exact error messages on 470 hand-written and mutated inputs, float repr on 500+ random doubles, == on 1,444 pairs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PyException, PyFloat, isPyDict, pyEquals, pyFloatRepr, pyJsonDumps, pyJsonLoads } from '../src/tasks/pysem.js';

const cases = JSON.parse(readFileSync('test/fixtures/tasks-python/cases.json', 'utf8')) as {
  loads: Array<{ in: string; ok: boolean; out?: string; error?: string }>;
  floats: Array<{ bits: string; repr: string }>;
  eq: Array<{ a: string; b: string; eq: boolean }>;
};

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isPyDict(v)) {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) Object.defineProperty(o, k, { value: sortKeys(v[k]), enumerable: true, writable: true, configurable: true });
    return o;
  }
  return v;
}

test('json.loads: same values and same error messages as CPython', () => {
  const bad: string[] = [];
  for (const c of cases.loads) {
    let got: string;
    try {
      got = `ok ${pyJsonDumps(sortKeys(pyJsonLoads(c.in, { preserveFloats: true })))}`;
    } catch (e) {
      got = e instanceof PyException ? `${e.pyType}: ${e.pyMessage}` : `JS ${(e as Error).message}`;
    }
    const want = c.ok ? `ok ${c.out}` : c.error!;
    if (got !== want) bad.push(`${JSON.stringify(c.in)}: got ${got}, want ${want}`);
  }
  assert.deepEqual(bad, []);
  assert.ok(cases.loads.length > 400);
});

test('float repr: identical to CPython on random doubles', () => {
  const bad: string[] = [];
  const view = new DataView(new ArrayBuffer(8));
  for (const c of cases.floats) {
    view.setBigUint64(0, BigInt(`0x${c.bits}`));
    const x = view.getFloat64(0);
    if (pyFloatRepr(x) !== c.repr) bad.push(`${c.bits}: ${pyFloatRepr(x)} vs ${c.repr}`);
    if (pyJsonDumps(new PyFloat(x)) !== c.repr) bad.push(`dumps ${c.bits}`);
  }
  assert.deepEqual(bad, []);
});

test('==: identical to CPython on every pair of sample values', () => {
  const bad = cases.eq.filter((c) => pyEquals(pyJsonLoads(c.a), pyJsonLoads(c.b)) !== c.eq).map((c) => `${c.a} == ${c.b}`);
  assert.deepEqual(bad, []);
});
