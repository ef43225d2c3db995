/**
 * `pyJsonLoads` (JSON.parse fast path + exact fallback; plain and with `preserveFloats`) against `pyJsonLoadsExact` (the port of CPython's scanner):
 * identical values (types, -0, big ints, key order) or identical Python errors, on the recorded CPython inputs of
 * test/fixtures/tasks-python/cases.json, on the inputs where the two parsers could differ, and on FHIR Bundles.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MAX_JSON_DEPTH, PyException, PyFloat, pyEquals, pyJsonLoads, pyJsonLoadsExact } from '../src/tasks/pysem.js';

const cases = JSON.parse(readFileSync('test/fixtures/tasks-python/cases.json', 'utf8')) as {
  loads: Array<{ in: string; ok: boolean; out?: string; error?: string }>;
  eq: Array<{ a: string; b: string; eq: boolean }>;
};

/** A description of a parsed value precise enough to tell every difference that matters to Python semantics. */
function shape(v: unknown): string {
  if (v === null) return 'None';
  if (typeof v === 'bigint') return `int(${v})`;
  if (typeof v === 'number') return Object.is(v, -0) ? 'num(-0)' : `num(${String(v)})`;
  if (typeof v === 'string') return `str(${JSON.stringify(v)})`;
  if (typeof v === 'boolean') return String(v);
  if (v instanceof PyFloat) return `float(${Object.is(v.value, -0) ? '-0' : String(v.value)})`;
  if (Array.isArray(v)) return `[${v.map(shape).join(',')}]`;
  if (typeof v === 'object') {
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    return `{${Object.keys(v)
      .map((k) => `${JSON.stringify(k)}:${shape((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return `?${typeof v}`;
}

function outcome(parse: () => unknown): string {
  try {
    return `ok ${shape(parse())}`;
  } catch (e) {
    return e instanceof PyException ? `${e.pyType}: ${e.pyMessage}` : `JS ${(e as Error).name}: ${(e as Error).message}`;
  }
}

function mismatches(inputs: unknown[]): string[] {
  const bad: string[] = [];
  for (const s of inputs) {
    // both modes: plain (floats as numbers) and preserveFloats (float literals as PyFloat)
    for (const preserveFloats of [false, true]) {
      const fast = outcome(() => pyJsonLoads(s, { preserveFloats }));
      const exact = outcome(() => pyJsonLoadsExact(s, { preserveFloats }));
      if (fast !== exact)
        bad.push(`${JSON.stringify(s)?.slice(0, 120)} (preserveFloats ${preserveFloats}): fast ${fast.slice(0, 200)} vs exact ${exact.slice(0, 200)}`);
    }
  }
  return bad;
}

test('fast path = exact parser on every recorded CPython json.loads input', () => {
  const inputs = cases.loads.map((c) => c.in);
  assert.ok(inputs.length > 400);
  assert.deepEqual(mismatches(inputs), []);
  // and both agree with CPython on success vs failure (messages are checked against CPython by tasks-pyparity)
  for (const c of cases.loads) assert.equal(outcome(() => pyJsonLoads(c.in)).startsWith('ok '), c.ok, c.in);
});

test('fast path = exact parser on the == sample values (and == gives the recorded CPython answers)', () => {
  assert.deepEqual(mismatches(cases.eq.flatMap((c) => [c.a, c.b])), []);
  assert.deepEqual(
    cases.eq.filter((c) => pyEquals(pyJsonLoads(c.a), pyJsonLoads(c.b)) !== c.eq).map((c) => `${c.a} == ${c.b}`),
    [],
  );
});

test('fast path = exact parser where JSON.parse and json.loads could differ', () => {
  const nest = (n: number, open: string, close: string, inner = '1') => open.repeat(n) + inner + close.repeat(n);
  const nestObj = (n: number) => '{"a": '.repeat(n) + '1' + '}'.repeat(n);
  const inputs: unknown[] = [
    // integers: -0 and 16+ digits
    '-0',
    '[-0]',
    '{"a": -0}',
    '[-0 ]',
    '-0.0',
    '-0e0',
    '-0E+1',
    '[0, -0, 0.0, -0.0]',
    '123456789012345',
    '-123456789012345',
    '1234567890123456',
    '9007199254740991',
    '9007199254740992',
    '9007199254740993',
    '-9007199254740993',
    '12345678901234567890123',
    '[1e400, -1e400, 1e-400]',
    '100000000000000000000.5',
    '1e300',
    '[-1e16, 1e16]',
    `1${'0'.repeat(400)}`,
    `{"a": [-${'9'.repeat(400)}]}`,
    '[4503599627370496.5, -9007199254740991, 9007199254740991.0]',
    '0.1000000000000000055511151231257827021181583404541015625',
    '"1234567890123456789"',
    '"2023-11-13T10:15:00-05:00"',
    // specials, BOM, whitespace, malformed
    'NaN',
    '[NaN, Infinity, -Infinity]',
    '{"v": NaN}',
    '\ufeff{}',
    ' \t\n\r[1]\r\n',
    '\u00a0[1]',
    '[1,]',
    '{"a":1,}',
    '01',
    '1.',
    '.5',
    '"\\ud800"',
    '"\\ud83d\\ude00"',
    '"\u007f"',
    '"a\u0001"',
    '"\\x41"',
    '',
    ' ',
    '[1] [2]',
    'nul',
    'true false',
    // keys
    '{"__proto__": {"x": 1}}',
    '{"a": 1, "a": 2, "b": 3}',
    '{"2": "b", "1": "a", "x": 0}',
    '{"constructor": 1, "toString": 2}',
    // nesting at and beyond CPython's recursion limit
    nest(MAX_JSON_DEPTH, '[', ']'),
    nest(MAX_JSON_DEPTH + 1, '[', ']'),
    nest(MAX_JSON_DEPTH + 1, '[', ']', ''),
    nestObj(MAX_JSON_DEPTH),
    nestObj(MAX_JSON_DEPTH + 1),
    `[${'1,'.repeat(3000)}${nest(MAX_JSON_DEPTH + 1, '[', ']')}]`,
    nest(5000, '[', ']'),
    // not a string
    null,
    5,
    undefined,
    ['[]'],
  ];
  assert.deepEqual(mismatches(inputs), []);
  assert.equal(
    outcome(() => pyJsonLoads('[-0, 9007199254740993]')),
    'ok [num(0),int(9007199254740993)]',
  );
  assert.equal(
    outcome(() => pyJsonLoads(`1${'0'.repeat(400)}`)),
    `ok int(1${'0'.repeat(400)})`,
  );
  assert.equal(outcome(() => pyJsonLoads(nest(MAX_JSON_DEPTH + 1, '[', ']'))).split(':')[0], 'RecursionError');
});

test('fast path = exact parser on FHIR Bundles as the server renders them', () => {
  const entry = (i: number) => ({
    fullUrl: `http://localhost:8080/fhir/Observation/${i}`,
    resource: {
      resourceType: 'Observation',
      id: String(i),
      meta: { lastUpdated: '2023-11-12T08:00:00.000+00:00' },
      code: { coding: [{ system: 'http://loinc.org', code: 'GLU', display: 'Glucose' }], text: 'GLU' },
      effectiveDateTime: `2023-11-${String(1 + (i % 12)).padStart(2, '0')}T0${i % 10}:15:00+00:00`,
      valueQuantity: { value: i % 3 === 0 ? 120 : 98.5 + i / 10, unit: 'mg/dL' },
      note: i % 7 === 0 ? [{ text: 'Repeat \u2013 ré-test "stat"\n' }] : undefined,
    },
    search: { mode: 'match' },
  });
  const bundle = (n: number) => ({ resourceType: 'Bundle', type: 'searchset', total: n, entry: Array.from({ length: n }, (_, i) => entry(i)) });
  assert.deepEqual(mismatches([0, 1, 50, 2000].flatMap((n) => [JSON.stringify(bundle(n)), JSON.stringify(bundle(n), null, 2)])), []);
});
