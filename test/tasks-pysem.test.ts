import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PyDateTime,
  PyException,
  PyFloat,
  pyCompare,
  pyEquals,
  pyFloatRepr,
  pyFromIsoFormat,
  pyGetItem,
  pyIn,
  pyJsonDumps,
  pyJsonLoads,
  pyLen,
  pyStrip,
  pyStrptimeYmd,
  pySub,
  pyAbs,
} from '../src/tasks/pysem.js';

const raisesPy = (fn: () => unknown, type: string, msg?: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof PyException && e.pyType === type && (!msg || msg.test(e.pyMessage)));

test('json.loads: values, NaN/Infinity, big ints, surrogate pairs', () => {
  const v = pyJsonLoads(' [1, 2.0, -0, 1e400, NaN, -Infinity, "\\ud83d\\ude00", 12345678901234567890] ') as unknown[];
  assert.equal(v[0], 1);
  assert.equal(v[1], 2);
  assert.ok(Object.is(v[2], 0));
  assert.equal(v[3], Infinity);
  assert.ok(Number.isNaN(v[4] as number));
  assert.equal(v[5], -Infinity);
  assert.equal(v[6], '😀');
  assert.equal(v[7], 12345678901234567890n);
  assert.deepEqual(pyJsonLoads('{"a": {"b": [true, false, null]}}'), { a: { b: [true, false, null] } });
  // duplicate keys: last wins; __proto__ is an ordinary key
  assert.deepEqual(pyJsonLoads('{"a": 1, "a": 2}'), { a: 2 });
  const proto = pyJsonLoads('{"__proto__": 1}') as Record<string, unknown>;
  assert.deepEqual(Object.keys(proto), ['__proto__']);
});

test('json.loads: the same errors as CPython', () => {
  const cases: Array<[string, RegExp]> = [
    ['01', /^Extra data: line 1 column 2 \(char 1\)$/],
    ['1.', /^Extra data: line 1 column 2 \(char 1\)$/],
    ['[1,]', /^Expecting value: line 1 column 4 \(char 3\)$/],
    ['{"a":1,}', /^Expecting property name enclosed in double quotes: line 1 column 8 \(char 7\)$/],
    ['"\t"', /^Invalid control character at: line 1 column 2 \(char 1\)$/],
    ['\ufeff1', /^Unexpected UTF-8 BOM/],
    ['-NaN', /^Expecting value: line 1 column 1 \(char 0\)$/],
    ['[1 2]', /^Expecting ',' delimiter: line 1 column 4 \(char 3\)$/],
    ['{"a" 1}', /^Expecting ':' delimiter: line 1 column 6 \(char 5\)$/],
    ['"\\x"', /^Invalid \\escape: line 1 column 2 \(char 1\)$/],
    ["['a']", /^Expecting value/],
    ['', /^Expecting value: line 1 column 1 \(char 0\)$/],
    ['[1]\n]', /^Extra data: line 2 column 1 \(char 4\)$/],
    ['\u00a0[1]', /^Expecting value/], // NBSP is not JSON whitespace
    ['"abc', /^Unterminated string starting at/],
  ];
  for (const [s, re] of cases) raisesPy(() => pyJsonLoads(s), 'JSONDecodeError', re);
  assert.deepEqual(pyJsonLoads('\n\t [1] \r\n'), [1]);
  raisesPy(() => pyJsonLoads({ error: 'x' }), 'TypeError', /not dict/);
  raisesPy(() => pyJsonLoads(null), 'TypeError', /not NoneType/);
  assert.equal(pyJsonLoads('1e5'), 100000);
});

test('json.loads preserveFloats keeps float type; float repr and json.dumps match Python', () => {
  const v = pyJsonLoads('[2.0, 3, 1e16]', { preserveFloats: true }) as unknown[];
  assert.ok(v[0] instanceof PyFloat);
  assert.equal(v[1], 3);
  assert.equal(pyJsonDumps(v), '[2.0, 3, 1e+16]');
  const reprs: Array<[number, string]> = [
    [2.0, '2.0'],
    [1e16, '1e+16'],
    [1e15, '1000000000000000.0'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [89.88888888888889, '89.88888888888889'],
    [39.99999999999999, '39.99999999999999'],
    [1.5e-7, '1.5e-07'],
    [123456789012345678, '1.2345678901234568e+17'],
    [-0, '-0.0'],
    [1e22, '1e+22'],
    [5e-324, '5e-324'],
  ];
  for (const [x, r] of reprs) assert.equal(pyFloatRepr(x), r, String(x));
  assert.equal(
    pyJsonDumps([new PyFloat(1), 'caf\u00e9\u2019', { a: null, b: true }, new PyFloat(NaN), '\x7f']),
    '[1.0, "caf\\u00e9\\u2019", {"a": null, "b": true}, NaN, "\\u007f"]',
  );
});

test('== : int/float by value, bools as ints, exact dict key sets, big ints exact', () => {
  assert.ok(pyEquals([60], [60.0]));
  assert.ok(pyEquals([60], pyJsonLoads('[60.0]')));
  assert.ok(pyEquals(pyJsonLoads('[true]'), [1]));
  assert.ok(pyEquals(pyJsonLoads('[false]'), [0]));
  assert.ok(!pyEquals(pyJsonLoads('[true]'), [2]));
  assert.ok(!pyEquals(pyJsonLoads('["60"]'), [60]));
  assert.ok(pyEquals({ value: 1, unit: 'g' }, pyJsonLoads('{"unit": "g", "value": 1.0}')));
  assert.ok(!pyEquals({ value: 1, unit: 'g' }, { value: 1, unit: 'g', system: 'http://unitsofmeasure.org' }));
  assert.ok(pyEquals([NaN], [NaN])); // json.loads shares one NaN object; containers compare identity first
  assert.ok(!pyEquals(NaN, NaN));
  assert.ok(!pyEquals(pyJsonLoads('[9007199254740993]'), [9007199254740992]));
  assert.ok(pyEquals(pyJsonLoads('[100000000000000000000]'), [1e20]));
  assert.ok(pyEquals(new PyFloat(2), 2));
  assert.ok(!pyEquals(null, 0));
  assert.ok(!pyEquals([], {}));
});

test('in / [] / len / arithmetic raise like Python', () => {
  assert.ok(pyIn('POST', 'xx POST yy'));
  assert.ok(!pyIn('POST', 'post'));
  assert.ok(pyIn('a', ['a', 'b']));
  assert.ok(pyIn('a', { a: 1 }));
  assert.ok(!pyIn(1, { '1': 1 }));
  raisesPy(() => pyIn('x', 5), 'TypeError', /argument of type 'int' is not iterable/);
  raisesPy(() => pyIn(5, 'abc'), 'TypeError', /requires string as left operand, not int/);
  raisesPy(() => pyIn(['a'], { a: 1 }), 'TypeError', /unhashable/);
  raisesPy(() => pyGetItem([{ text: 'x' }], 'text'), 'TypeError', /list indices must be integers/);
  raisesPy(() => pyGetItem({}, 'a'), 'KeyError');
  raisesPy(() => pyGetItem([], 0), 'IndexError');
  raisesPy(() => pyGetItem(null, 'a'), 'TypeError', /NoneType/);
  assert.equal(pyGetItem('ab', 1), 'b');
  assert.equal(pyLen('😀'), 1);
  raisesPy(() => pyLen(5), 'TypeError');
  raisesPy(() => pySub('5', 1), 'TypeError', /unsupported operand/);
  assert.equal(pySub(true, 1), 0);
  assert.equal(pyAbs(pySub(89.9, 89.88888888888889)) < 0.1, true);
  raisesPy(() => pyCompare('1.8', '>', 1.9), 'TypeError', /not supported between instances of 'str' and 'float'/);
  raisesPy(() => pyCompare(null, '>=', 3.5), 'TypeError');
  assert.equal(pyStrip('\x1c oral \u3000'), 'oral');
  assert.equal(pyStrip('\ufefforal'), '\ufefforal');
});

test('datetime.fromisoformat: CPython 3.8–3.10 C parser', () => {
  const a = pyFromIsoFormat('2023-11-13T10:15:00+00:00');
  assert.ok(a.aware);
  assert.equal(a.isoformat(), '2023-11-13T10:15:00+00:00');
  // accepted forms
  for (const s of [
    '2023-11-13',
    '2023-11-13T10',
    '2023-11-13T10:15',
    '2023-11-13 10:15:00',
    '2023-11-13x10:15:00.123',
    '2023-11-13T10:15:00.123456-05:30',
    '2023-11-13T10:15:00+01:00:30',
    '2023-11-13T10:+00:00',
    '2023-11-13\u00e910:15',
    '2023-11-13T10:15:00 +00:00', // the C parser swallows one character before the offset
  ]) {
    assert.doesNotThrow(() => pyFromIsoFormat(s), s);
  }
  // rejected forms (ValueError)
  for (const s of [
    '2023-11-13T10:15:00Z',
    '2023-11-13T10:15:00.000Z',
    '2023-11-13T',
    '2023-11-13T1015',
    '2023-11-13T10:15:00:00',
    '2023-11-13T10:15:00+0000',
    '2023-11-13T10:15:00.12+00:00',
    '2023/11/13',
    '2023-11-1',
    '2023-02-30',
    '2023-11-13T24:00:00',
    '2023-11-13T10:15:00+24:00',
    ' 2023-11-13',
  ]) {
    raisesPy(() => pyFromIsoFormat(s), 'ValueError', undefined);
  }
  raisesPy(() => pyFromIsoFormat(20231113), 'TypeError');
  // a zero-second offset is UTC even with microseconds (tzinfo_from_isoformat_results ignores them)
  assert.ok(PyDateTime.compare(pyFromIsoFormat('2023-11-13T10:15:00+00:00:00.500000'), a, '=='));
  // aware comparisons are by instant; naive vs aware ordering raises; equality is False
  const b = pyFromIsoFormat('2023-11-13T05:15:00-05:00');
  assert.ok(PyDateTime.compare(a, b, '=='));
  const naive = pyFromIsoFormat('2023-11-13T10:15:00');
  assert.ok(!naive.aware);
  raisesPy(() => pyCompare(naive, '>=', a), 'TypeError', /can't compare offset-naive and offset-aware datetimes/);
  assert.ok(!pyEquals(naive, a));
  // timedelta arithmetic
  assert.equal(a.plusUs(-86_400_000_000n).isoformat(), '2023-11-12T10:15:00+00:00');
  assert.equal(pyFromIsoFormat('2024-03-01T00:00:00+00:00').plusUs(-1n).isoformat(), '2024-02-29T23:59:59.999999+00:00');
});

test('datetime.strptime(s, "%Y-%m-%d")', () => {
  const d = pyStrptimeYmd('1963-01-29');
  assert.deepEqual([d.year, d.month, d.day], [1963, 1, 29]);
  const e = pyStrptimeYmd('1963-1-9');
  assert.deepEqual([e.year, e.month, e.day], [1963, 1, 9]);
  assert.deepEqual([pyStrptimeYmd('1963-10- 5').day], [5]);
  raisesPy(() => pyStrptimeYmd('1963-01-29T00:00'), 'ValueError', /unconverted data remains/);
  raisesPy(() => pyStrptimeYmd('1963-02-30'), 'ValueError');
  raisesPy(() => pyStrptimeYmd('63-01-29'), 'ValueError', /does not match format/);
  raisesPy(() => pyStrptimeYmd(null), 'TypeError');
});

test('json.loads: deep nesting raises RecursionError like CPython (limit ~1000 frames)', () => {
  assert.deepEqual(pyJsonLoads('['.repeat(500) + ']'.repeat(500)) !== undefined, true);
  raisesPy(() => pyJsonLoads('['.repeat(5000) + ']'.repeat(5000)), 'RecursionError', /while decoding a JSON array/);
  raisesPy(() => pyJsonLoads('{"a": '.repeat(5000) + '1' + '}'.repeat(5000)), 'RecursionError', /JSON object/);
});
