/**
 * The Python semantics the official MedAgentBench grader (refsol.py, CPython 3.8–3.10) depends on, ported exactly:
 *
 * - `pyJsonLoads`: CPython's `json.loads` (C scanner, strict mode): NaN/Infinity/-Infinity accepted, ASCII digits only,
 *   whitespace = space/tab/LF/CR, control characters rejected inside strings, "Extra data" after the value.
 *   Integers beyond 2^53 become `bigint` (Python ints are exact).
 * - `pyJsonDumps`: `json.dumps` with default arguments (`", "` / `": "`, `ensure_ascii`, float `repr`).
 * - `pyEquals` / `pyIn` / `pyGetItem` / `pyLen` / arithmetic and ordering: Python `==`, `in`, `[]`, `len`, `+ - * / abs`,
 *   `< <= > >=`, raising the same exception types.
 * - `pyFromIsoFormat`: `datetime.fromisoformat` as implemented in C by CPython 3.8–3.10 (`Z` rejected, `T` may be any
 *   single character, naive vs aware ordering raises `TypeError`); `pyStrptimeYmd`: `datetime.strptime(s, "%Y-%m-%d")`.
 *
 * Value model: dict = plain object, list = array, str = string, int = integral number or bigint, float = number (or
 * `PyFloat` when parsed with `preserveFloats`), bool = boolean, None = null.
 */

/** A Python exception raised by a ported operation. `pyType` is the Python class name (e.g. `KeyError`). */
export class PyException extends Error {
  constructor(
    readonly pyType: string,
    readonly pyMessage: string,
  ) {
    super(`${pyType}: ${pyMessage}`);
    this.name = 'PyException';
  }
}

const raise = (type: string, msg: string): never => {
  throw new PyException(type, msg);
};

/** A Python float kept distinct from an int (only produced with `preserveFloats`), so `2.0` prints back as `2.0`. */
export class PyFloat {
  constructor(readonly value: number) {}
  toJSON(): number {
    return this.value;
  }
  valueOf(): number {
    return this.value;
  }
  toString(): string {
    return pyFloatRepr(this.value);
  }
}

export type PyDict = { [key: string]: unknown };

export function isPyDict(x: unknown): x is PyDict {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof PyFloat) && !(x instanceof PyDateTime);
}

/** The Python type name of a value (for error messages and reports). */
export function pyTypeName(x: unknown): string {
  if (x === null || x === undefined) return 'NoneType';
  if (typeof x === 'boolean') return 'bool';
  if (typeof x === 'bigint') return 'int';
  if (x instanceof PyFloat) return 'float';
  if (typeof x === 'number') return Number.isInteger(x) ? 'int' : 'float';
  if (typeof x === 'string') return 'str';
  if (Array.isArray(x)) return 'list';
  if (x instanceof PyDateTime) return 'datetime.datetime';
  return 'dict';
}

// ---------------------------------------------------------------------------------------------------------------
// json.loads
// ---------------------------------------------------------------------------------------------------------------

export interface PyJsonLoadsOptions {
  /** Return float literals (`2.0`, `1e3`, `NaN`) as `PyFloat` so they keep their Python type. Default false. */
  preserveFloats?: boolean;
}

/**
 * Nesting depth at which CPython's scanner raises RecursionError (recursion limit 1000 minus the grader's own call
 * depth; approximate by nature).
 */
export const MAX_JSON_DEPTH = 980;

function lineCol(s: string, pos: number): string {
  let line = 1;
  let last = -1;
  for (let i = 0; i < pos; i++) {
    if (s.charCodeAt(i) === 0x0a) {
      line++;
      last = i;
    }
  }
  return `line ${line} column ${pos - last} (char ${pos})`;
}

function decodeError(msg: string, s: string, pos: number): never {
  throw new PyException('JSONDecodeError', `${msg}: ${lineCol(s, pos)}`);
}

function setKey(obj: PyDict, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

const SIMPLE_ESCAPES: Record<string, string | undefined> = Object.assign(Object.create(null), {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
});

/** The next character that ends a run of plain string characters: a quote, a backslash or a control character. */
const STRING_STOP = /["\\\x00-\x1f]/g;

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/**
 * True when a `JSON.parse` result may differ from `json.loads` on the same text. Integer literals: CPython keeps them
 * exact (`bigint` here beyond 2^53) and `-0` is int 0, while `JSON.parse` rounds to a double and keeps -0; so any
 * number beyond ±(2^53 − 1) (an infinity included: a 309+ digit integer) and any -0 sends the text to the exact parser.
 * Float literals convert identically in both (correctly rounded), so a false alarm (a float like 1e300 or -0.0) only
 * costs the exact parser. Containers nested deeper than CPython's recursion limit (`MAX_JSON_DEPTH`) too.
 */
function fastParseUnsafe(v: unknown, depth: number): boolean {
  if (typeof v === 'number') return unsafeNumber(v);
  if (typeof v !== 'object' || v === null) return false;
  if (depth >= MAX_JSON_DEPTH) return true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (typeof x === 'number' ? unsafeNumber(x) : typeof x === 'object' && x !== null && fastParseUnsafe(x, depth + 1)) return true;
    }
    return false;
  }
  for (const k in v) {
    const x = (v as PyDict)[k];
    if (typeof x === 'number' ? unsafeNumber(x) : typeof x === 'object' && x !== null && fastParseUnsafe(x, depth + 1)) return true;
  }
  return false;
}

/** A digit then `.digit` or an exponent: the mark of every JSON float literal. */
const MAY_HOLD_FLOAT = /\d\.\d|\d[eE]/;

const unsafeNumber = (x: number): boolean => !(x <= Number.MAX_SAFE_INTEGER && x >= -Number.MAX_SAFE_INTEGER) || (x === 0 && 1 / x < 0);

/**
 * Python `json.loads(s)`. Raises `PyException` (`TypeError` for a non-str argument, `JSONDecodeError` otherwise).
 *
 * Without `preserveFloats` the text is parsed by `JSON.parse` whenever that gives the same value as CPython, and by
 * the exact port `pyJsonLoadsExact` otherwise: when `JSON.parse` throws (NaN/Infinity/-Infinity, a BOM, or any
 * malformed text: the exact parser then produces CPython's error and message), and when the parsed value holds a
 * number that may come from an integer literal Python reads differently (beyond ±(2^53 − 1), or -0) or nests deeper
 * than CPython's recursion limit. Everything else is the same by construction: both grammars are strict RFC 8259 JSON
 * (same whitespace, escapes, control-character rule and number syntax), both build plain objects with the last
 * duplicate key winning in its first position (an own `__proto__` key included), decimal-to-double conversion is
 * correctly rounded in both, and smaller integers are exact doubles. With `preserveFloats` (float literals become
 * `PyFloat`) the same holds for text without a float literal (every float literal has a digit followed by `.` and a
 * digit, or by an exponent `e`/`E`: text without either holds none, and a match inside a string only costs the exact
 * parser); text that may hold one goes to the exact parser.
 */
export function pyJsonLoads(s: unknown, opts: PyJsonLoadsOptions = {}): unknown {
  if (typeof s !== 'string' || (opts.preserveFloats && MAY_HOLD_FLOAT.test(s))) return pyJsonLoadsExact(s, opts);
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    return pyJsonLoadsExact(s, opts);
  }
  return fastParseUnsafe(v, 0) ? pyJsonLoadsExact(s, opts) : v;
}

/** Python `json.loads(s)`, always by the exact port of CPython's scanner (the reference for `pyJsonLoads`). */
export function pyJsonLoadsExact(s: unknown, opts: PyJsonLoadsOptions = {}): unknown {
  if (typeof s !== 'string') {
    raise('TypeError', `the JSON object must be str, bytes or bytearray, not ${pyTypeName(s)}`);
  }
  const text = s as string;
  if (text.startsWith('\ufeff')) decodeError('Unexpected UTF-8 BOM (decode using utf-8-sig)', text, 0);
  const preserve = !!opts.preserveFloats;
  const n = text.length;
  const float = (v: number): unknown => (preserve ? new PyFloat(v) : v);
  const skip = (i: number) => {
    for (;;) {
      const c = text.charCodeAt(i); // NaN past the end
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return i;
    }
  };

  const scanString = (start: number): [string, number] => {
    // start = index after the opening quote
    let out = '';
    let i = start;
    for (;;) {
      STRING_STOP.lastIndex = i;
      const stop = STRING_STOP.exec(text);
      const j0 = stop ? stop.index : n;
      if (j0 < n && text.charCodeAt(j0) < 0x20) decodeError('Invalid control character at', text, j0);
      let j = j0;
      if (j >= n) decodeError('Unterminated string starting at', text, start - 1);
      out += text.slice(i, j);
      if (text.charCodeAt(j) === 0x22) return [out, j + 1];
      // backslash
      j++;
      if (j >= n) decodeError('Unterminated string starting at', text, start - 1);
      const e = text[j];
      if (e !== 'u') {
        const rep = SIMPLE_ESCAPES[e];
        if (rep === undefined) decodeError('Invalid \\escape', text, j - 1);
        out += rep;
        i = j + 1;
        continue;
      }
      const hex4 = (p: number): number => {
        const h = text.slice(p, p + 4);
        if (h.length !== 4 || !/^[0-9a-fA-F]{4}$/.test(h)) decodeError('Invalid \\uXXXX escape', text, p - 1);
        return parseInt(h, 16);
      };
      let cp = hex4(j + 1);
      let next = j + 5;
      if (cp >= 0xd800 && cp <= 0xdbff && text[next] === '\\' && text[next + 1] === 'u') {
        const lo = hex4(next + 2);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          cp = 0x10000 + (((cp - 0xd800) << 10) | (lo - 0xdc00));
          next += 6;
        }
      }
      out += cp > 0xffff ? String.fromCodePoint(cp) : String.fromCharCode(cp);
      i = next;
    }
  };

  const scanNumber = (i: number): [unknown, number] | null => {
    let j = i;
    if (text.charCodeAt(j) === 0x2d) j++;
    if (j >= n || !isDigit(text.charCodeAt(j))) return null;
    if (text.charCodeAt(j) === 0x30) j++;
    else while (j < n && isDigit(text.charCodeAt(j))) j++;
    let isFloat = false;
    if (text.charCodeAt(j) === 0x2e && j + 1 < n && isDigit(text.charCodeAt(j + 1))) {
      j += 2;
      while (j < n && isDigit(text.charCodeAt(j))) j++;
      isFloat = true;
    }
    if (text.charCodeAt(j) === 0x65 || text.charCodeAt(j) === 0x45) {
      let k = j + 1;
      if (text.charCodeAt(k) === 0x2b || text.charCodeAt(k) === 0x2d) k++;
      if (k < n && isDigit(text.charCodeAt(k))) {
        while (k < n && isDigit(text.charCodeAt(k))) k++;
        j = k;
        isFloat = true;
      }
    }
    const lex = text.slice(i, j);
    if (isFloat) return [float(Number(lex)), j];
    const v = Number(lex);
    if (Number.isSafeInteger(v)) return [v === 0 ? 0 : v, j];
    return [BigInt(lex), j];
  };

  const scanValue = (i: number): [unknown, number] => {
    if (i >= n) decodeError('Expecting value', text, i);
    const c = text[i];
    if (c === '"') return scanString(i + 1);
    if (c === '{') return scanObject(i + 1);
    if (c === '[') return scanArray(i + 1);
    if (c === 'n' && text.startsWith('null', i)) return [null, i + 4];
    if (c === 't' && text.startsWith('true', i)) return [true, i + 4];
    if (c === 'f' && text.startsWith('false', i)) return [false, i + 5];
    const num = scanNumber(i);
    if (num) return num;
    if (c === 'N' && text.startsWith('NaN', i)) return [float(NaN), i + 3];
    if (c === 'I' && text.startsWith('Infinity', i)) return [float(Infinity), i + 8];
    if (c === '-' && text.startsWith('-Infinity', i)) return [float(-Infinity), i + 9];
    return decodeError('Expecting value', text, i);
  };

  let depth = 0;
  const enter = (what: string) => {
    if (++depth > MAX_JSON_DEPTH) raise('RecursionError', `maximum recursion depth exceeded while decoding a JSON ${what} from a unicode string`);
  };

  const scanObject = (start: number): [PyDict, number] => {
    enter('object');
    const obj: PyDict = {};
    let i = skip(start);
    if (text[i] === '}') return (depth--, [obj, i + 1]);
    for (;;) {
      if (text[i] !== '"') decodeError('Expecting property name enclosed in double quotes', text, i);
      const [key, afterKey] = scanString(i + 1);
      i = skip(afterKey);
      if (text[i] !== ':') decodeError("Expecting ':' delimiter", text, i);
      i = skip(i + 1);
      const [val, afterVal] = scanValue(i);
      setKey(obj, key, val);
      i = skip(afterVal);
      if (text[i] === '}') return (depth--, [obj, i + 1]);
      if (text[i] !== ',') decodeError("Expecting ',' delimiter", text, i);
      i = skip(i + 1);
    }
  };

  const scanArray = (start: number): [unknown[], number] => {
    enter('array');
    const arr: unknown[] = [];
    let i = skip(start);
    if (text[i] === ']') return (depth--, [arr, i + 1]);
    for (;;) {
      const [val, afterVal] = scanValue(i);
      arr.push(val);
      i = skip(afterVal);
      if (text[i] === ']') return (depth--, [arr, i + 1]);
      if (text[i] !== ',') decodeError("Expecting ',' delimiter", text, i);
      i = skip(i + 1);
    }
  };

  const [value, end] = scanValue(skip(0));
  const after = skip(end);
  if (after !== n) decodeError('Extra data', text, after);
  return value;
}

// ---------------------------------------------------------------------------------------------------------------
// float repr and json.dumps
// ---------------------------------------------------------------------------------------------------------------

/** Python `repr(float)`: shortest round-trip digits, exponent form when exp < -4 or exp >= 16, `.0` for integers. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mant, expStr] = Math.abs(x).toExponential().split('e');
  const digits = mant.replace('.', '');
  const exp = Number(expStr);
  if (exp >= -4 && exp < 16) {
    if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
    const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
    const frac = digits.slice(exp + 1);
    return `${sign}${intPart}.${frac === '' ? '0' : frac}`;
  }
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const e = Math.abs(exp).toString().padStart(2, '0');
  return `${sign}${m}e${exp < 0 ? '-' : '+'}${e}`;
}

/**
 * A JSON string literal as Python's `json.dumps` writes it by default (`ensure_ascii`): every character outside
 * printable ASCII (space to `~`) escaped. `JSON.stringify` already escapes the control characters the same way; DEL
 * and non-ASCII code units then become `\uXXXX` (lower-case hex; characters beyond the BMP as their surrogate pair).
 */
export function asciiJsonString(s: string): string {
  const j = JSON.stringify(s);
  return /[^\x20-\x7e]/.test(j) ? j.replace(/[^\x20-\x7e]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')) : j;
}

export interface PyJsonDumpsOptions {
  /** `indent=`: newlines and this many spaces per level, `,` between items (default: one line, `, ` and `: `). */
  indent?: number;
  /** `ensure_ascii=` (default true): false writes non-ASCII as it is, escaping as `JSON.stringify` does. */
  ensureAscii?: boolean;
}

/**
 * Python `json.dumps(value, indent=…, ensure_ascii=…)` (defaults: Python's), `value` nested `level` deep. Plain
 * integral numbers print as ints, other numbers and `PyFloat` as float `repr` (`NaN`, `Infinity`, `-Infinity` for the
 * specials).
 */
export function pyJsonDumps(value: unknown, opts: PyJsonDumpsOptions = {}, level = 0): string {
  const floatText = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : pyFloatRepr(v));
  const str = opts.ensureAscii === false ? (x: string) => JSON.stringify(x) : asciiJsonString;
  if (value === null || value === undefined) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof PyFloat) return floatText(value.value);
  if (typeof value === 'number') return Number.isInteger(value) ? String(value === 0 ? 0 : value) : floatText(value);
  if (typeof value === 'string') return str(value);
  if (typeof value !== 'object') throw new TypeError(`pyJsonDumps: unsupported value of type ${typeof value}`);
  const items = Array.isArray(value)
    ? value.map((v) => pyJsonDumps(v, opts, level + 1))
    : Object.keys(value).map((k) => `${str(k)}: ${pyJsonDumps((value as PyDict)[k], opts, level + 1)}`);
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  if (opts.indent === undefined || items.length === 0) return open + items.join(', ') + close;
  const inner = '\n' + ' '.repeat(opts.indent * (level + 1));
  return open + inner + items.join(',' + inner) + '\n' + ' '.repeat(opts.indent * level) + close;
}

// ---------------------------------------------------------------------------------------------------------------
// Equality, membership, indexing
// ---------------------------------------------------------------------------------------------------------------

type Num = number | bigint;

/** The numeric value of a Python bool/int/float, or undefined for any other type. */
export function pyNumber(x: unknown): Num | undefined {
  if (typeof x === 'boolean') return x ? 1 : 0;
  if (typeof x === 'number' || typeof x === 'bigint') return x;
  if (x instanceof PyFloat) return x.value;
  return undefined;
}

/** Python `a == b` for JSON-like values. */
export function pyEquals(a: unknown, b: unknown): boolean {
  const na = pyNumber(a);
  const nb = pyNumber(b);
  if (na !== undefined || nb !== undefined) {
    if (na === undefined || nb === undefined) return false;
    // biome-ignore lint/suspicious/noDoubleEquals: number/bigint mixes compare by value
    return na == nb; // exact for number/bigint mixes; NaN never equal
  }
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null);
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!itemEquals(a[i], b[i])) return false;
    return true;
  }
  if (a instanceof PyDateTime || b instanceof PyDateTime) {
    return a instanceof PyDateTime && b instanceof PyDateTime && PyDateTime.compare(a, b, '==');
  }
  if (isPyDict(a) && isPyDict(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    for (const k of ka) {
      if (!Object.hasOwn(b, k)) return false;
      if (!itemEquals(a[k], b[k])) return false;
    }
    return true;
  }
  return false;
}

const isNaNValue = (x: unknown) => (typeof x === 'number' && Number.isNaN(x)) || (x instanceof PyFloat && Number.isNaN(x.value));

/**
 * Element comparison inside lists and dicts: CPython checks identity first, and `json.loads` returns one shared
 * float object for every `NaN`, so `[NaN] == [NaN]` is True for parsed values while `NaN == NaN` is False.
 */
function itemEquals(a: unknown, b: unknown): boolean {
  return (isNaNValue(a) && isNaNValue(b)) || pyEquals(a, b);
}

/** Python `x in container`: substring for str, element for list, key for dict; anything else raises TypeError. */
export function pyIn(x: unknown, container: unknown): boolean {
  if (typeof container === 'string') {
    if (typeof x !== 'string') raise('TypeError', `'in <string>' requires string as left operand, not ${pyTypeName(x)}`);
    return container.includes(x as string);
  }
  if (Array.isArray(container)) return container.some((e) => itemEquals(x, e));
  if (isPyDict(container)) {
    if (Array.isArray(x) || isPyDict(x)) raise('TypeError', `unhashable type: '${pyTypeName(x)}'`);
    return typeof x === 'string' && Object.hasOwn(container, x);
  }
  return raise('TypeError', `argument of type '${pyTypeName(container)}' is not iterable`);
}

/** Python `len(x)` (code points for str). */
export function pyLen(x: unknown): number {
  if (typeof x === 'string') return Array.from(x).length;
  if (Array.isArray(x)) return x.length;
  if (isPyDict(x)) return Object.keys(x).length;
  return raise('TypeError', `object of type '${pyTypeName(x)}' has no len()`);
}

/** Python `obj[key]` for dict/list/str. */
export function pyGetItem(obj: unknown, key: string | number): unknown {
  if (isPyDict(obj)) {
    if (typeof key === 'string' && Object.hasOwn(obj, key)) return obj[key];
    return raise('KeyError', typeof key === 'string' ? `'${key}'` : String(key));
  }
  if (Array.isArray(obj) || typeof obj === 'string') {
    const what = Array.isArray(obj) ? 'list' : 'string';
    if (typeof key !== 'number') {
      return raise('TypeError', `${what === 'list' ? 'list' : 'string'} indices must be integers${what === 'list' ? ' or slices' : ''}, not str`);
    }
    const seq: unknown[] = Array.isArray(obj) ? obj : Array.from(obj as string);
    const i = key < 0 ? seq.length + key : key;
    if (i < 0 || i >= seq.length) return raise('IndexError', `${what} index out of range`);
    return seq[i];
  }
  return raise('TypeError', `'${pyTypeName(obj)}' object is not subscriptable`);
}

/** Chained `obj[k1][k2]…`. */
export function pyPath(obj: unknown, ...keys: Array<string | number>): unknown {
  let cur = obj;
  for (const k of keys) cur = pyGetItem(cur, k);
  return cur;
}

/** Python `d.get(key, default)` (AttributeError when `d` is not a dict). */
export function pyDictGet(obj: unknown, key: string, dflt: unknown): unknown {
  if (!isPyDict(obj)) return raise('AttributeError', `'${pyTypeName(obj)}' object has no attribute 'get'`);
  return Object.hasOwn(obj, key) ? obj[key] : dflt;
}

/** Python `iter(x)` as an array: list elements, dict keys, str characters. */
export function pyIter(x: unknown): unknown[] {
  if (Array.isArray(x)) return x;
  if (typeof x === 'string') return Array.from(x);
  if (isPyDict(x)) return Object.keys(x);
  return raise('TypeError', `'${pyTypeName(x)}' object is not iterable`);
}

// Python str.isspace() characters
const PY_SPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
  0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

/** Python `s.strip()` (no arguments). Raises AttributeError for a non-str. */
export function pyStrip(s: unknown): string {
  if (typeof s !== 'string') return raise('AttributeError', `'${pyTypeName(s)}' object has no attribute 'strip'`);
  let a = 0;
  let b = s.length;
  while (a < b && PY_SPACE.has(s.charCodeAt(a))) a++;
  while (b > a && PY_SPACE.has(s.charCodeAt(b - 1))) b--;
  return s.slice(a, b);
}

/** Python `s.lower()`. Raises AttributeError for a non-str. */
export function pyLower(s: unknown): string {
  if (typeof s !== 'string') return raise('AttributeError', `'${pyTypeName(s)}' object has no attribute 'lower'`);
  return s.toLowerCase();
}

/** Python `s[start:]` on code points. */
export function pySliceFrom(s: string, start: number): string {
  // fast path for ASCII/BMP-only strings
  if (!/[\ud800-\udfff]/.test(s)) return s.slice(start);
  return Array.from(s).slice(start).join('');
}

// ---------------------------------------------------------------------------------------------------------------
// Arithmetic and ordering
// ---------------------------------------------------------------------------------------------------------------

function needNum(x: unknown, op: string, other: unknown, left: boolean): Num {
  const v = pyNumber(x);
  if (v === undefined) {
    const [l, r] = left ? [x, other] : [other, x];
    return raise('TypeError', `unsupported operand type(s) for ${op}: '${pyTypeName(l)}' and '${pyTypeName(r)}'`);
  }
  return v;
}

function toFloat(v: Num): number {
  if (typeof v === 'number') return v;
  const f = Number(v);
  if (!Number.isFinite(f)) raise('OverflowError', 'int too large to convert to float');
  return f;
}

function arith(a: unknown, b: unknown, op: '+' | '-' | '*'): Num {
  const x = needNum(a, op, b, true);
  const y = needNum(b, op, a, false);
  if (typeof x === 'bigint' && typeof y === 'bigint') return op === '+' ? x + y : op === '-' ? x - y : x * y;
  if (typeof x === 'bigint' || typeof y === 'bigint') {
    // int op float: Python converts the int to float unless the other side is an exact int
    const xi = typeof x === 'number' && Number.isInteger(x) && !(a instanceof PyFloat) && typeof a !== 'boolean' ? BigInt(x) : x;
    const yi = typeof y === 'number' && Number.isInteger(y) && !(b instanceof PyFloat) && typeof b !== 'boolean' ? BigInt(y) : y;
    if (typeof xi === 'bigint' && typeof yi === 'bigint') return op === '+' ? xi + yi : op === '-' ? xi - yi : xi * yi;
    const fx = toFloat(x);
    const fy = toFloat(y);
    return op === '+' ? fx + fy : op === '-' ? fx - fy : fx * fy;
  }
  return op === '+' ? x + y : op === '-' ? x - y : x * y;
}

export const pyAdd = (a: unknown, b: unknown): Num => arith(a, b, '+');
export const pySub = (a: unknown, b: unknown): Num => arith(a, b, '-');
export const pyMul = (a: unknown, b: unknown): Num => arith(a, b, '*');

/** Python true division `a / b`. */
export function pyDiv(a: unknown, b: unknown): number {
  const x = toFloat(needNum(a, '/', b, true));
  const y = toFloat(needNum(b, '/', a, false));
  if (y === 0) return raise('ZeroDivisionError', 'float division by zero');
  return x / y;
}

/** Python `abs(x)`. */
export function pyAbs(a: unknown): Num {
  const v = pyNumber(a);
  if (v === undefined) return raise('TypeError', `bad operand type for abs(): '${pyTypeName(a)}'`);
  if (typeof v === 'bigint') return v < 0n ? -v : v;
  return Math.abs(v);
}

export type CmpOp = '<' | '<=' | '>' | '>=';

/** `x op y` for an ordering operator. */
function ordered<T extends number | bigint>(x: T, op: CmpOp, y: T): boolean {
  switch (op) {
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
  }
}

/** Python ordering comparison for numbers (bool/int/float) and str; anything else raises TypeError. */
export function pyCompare(a: unknown, op: CmpOp, b: unknown): boolean {
  if (a instanceof PyDateTime && b instanceof PyDateTime) return PyDateTime.compare(a, b, op);
  const x = pyNumber(a);
  const y = pyNumber(b);
  if (x !== undefined && y !== undefined) {
    return ordered(x, op, y);
  }
  if (typeof a === 'string' && typeof b === 'string') {
    const ca = Array.from(a).map((c) => c.codePointAt(0)!);
    const cb = Array.from(b).map((c) => c.codePointAt(0)!);
    let c = 0;
    for (let i = 0; i < Math.min(ca.length, cb.length) && c === 0; i++) c = ca[i] - cb[i];
    if (c === 0) c = ca.length - cb.length;
    return ordered(c, op, 0);
  }
  return raise('TypeError', `'${op}' not supported between instances of '${pyTypeName(a)}' and '${pyTypeName(b)}'`);
}

// ---------------------------------------------------------------------------------------------------------------
// datetime
// ---------------------------------------------------------------------------------------------------------------

const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isLeap = (y: number) => y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
const daysInMonth = (y: number, m: number) => (m === 2 && isLeap(y) ? 29 : DAYS_IN_MONTH[m]);

/** Proleptic Gregorian ordinal (datetime.toordinal): 0001-01-01 is day 1. */
function toOrdinal(y: number, m: number, d: number): number {
  const yy = y - 1;
  let days = yy * 365 + Math.floor(yy / 4) - Math.floor(yy / 100) + Math.floor(yy / 400);
  for (let i = 1; i < m; i++) days += daysInMonth(y, i);
  return days + d;
}

/** A Python `datetime.datetime` (naive when `utcoffsetUs` is null). */
export class PyDateTime {
  constructor(
    readonly year: number,
    readonly month: number,
    readonly day: number,
    readonly hour = 0,
    readonly minute = 0,
    readonly second = 0,
    readonly microsecond = 0,
    /** UTC offset in microseconds, or null for a naive datetime. */
    readonly utcoffsetUs: bigint | null = null,
  ) {
    if (!(year >= 1 && year <= 9999)) raise('ValueError', `year ${year} is out of range`);
    if (!(month >= 1 && month <= 12)) raise('ValueError', 'month must be in 1..12');
    if (!(day >= 1 && day <= daysInMonth(year, month))) raise('ValueError', 'day is out of range for month');
    if (!(hour >= 0 && hour <= 23)) raise('ValueError', 'hour must be in 0..23');
    if (!(minute >= 0 && minute <= 59)) raise('ValueError', 'minute must be in 0..59');
    if (!(second >= 0 && second <= 59)) raise('ValueError', 'second must be in 0..59');
    if (!(microsecond >= 0 && microsecond <= 999999)) raise('ValueError', 'microsecond must be in 0..999999');
    if (utcoffsetUs !== null && (utcoffsetUs <= -86_400_000_000n || utcoffsetUs >= 86_400_000_000n)) {
      raise('ValueError', 'offset must be a timedelta strictly between -timedelta(hours=24) and timedelta(hours=24).');
    }
  }

  get aware(): boolean {
    return this.utcoffsetUs !== null;
  }

  /** Microseconds since 0001-01-01T00:00 of the local fields. */
  localUs(): bigint {
    const days = BigInt(toOrdinal(this.year, this.month, this.day));
    const secs = BigInt(this.hour * 3600 + this.minute * 60 + this.second);
    return (days * 86400n + secs) * 1_000_000n + BigInt(this.microsecond);
  }

  private cachedKey?: bigint;

  /** Comparison key: local time for naive values, UTC for aware ones. */
  key(): bigint {
    if (this.cachedKey === undefined) this.cachedKey = this.localUs() - (this.utcoffsetUs ?? 0n);
    return this.cachedKey;
  }

  /** `self + timedelta(microseconds=us)` (keeps the tzinfo). */
  plusUs(us: bigint): PyDateTime {
    const total = this.localUs() + us;
    const dayUs = 86_400_000_000n;
    let days = Number(total / dayUs);
    let rem = Number(total % dayUs);
    if (rem < 0) {
      rem += 86_400_000_000;
      days -= 1;
    }
    // ordinal → y/m/d
    let y = Math.floor((days - 1) / 365.2425) + 1;
    while (toOrdinal(y + 1, 1, 1) <= days) y++;
    while (toOrdinal(y, 1, 1) > days) y--;
    let m = 1;
    while (m < 12 && toOrdinal(y, m + 1, 1) <= days) m++;
    const d = days - toOrdinal(y, m, 1) + 1;
    const micro = rem % 1_000_000;
    const secs = (rem - micro) / 1_000_000;
    if (y < 1 || y > 9999) raise('OverflowError', 'date value out of range');
    return new PyDateTime(y, m, d, Math.floor(secs / 3600), Math.floor((secs % 3600) / 60), secs % 60, micro, this.utcoffsetUs);
  }

  /** Python datetime comparison: naive vs aware ordering raises TypeError; `==` is False across kinds. */
  static compare(a: PyDateTime, b: PyDateTime, op: CmpOp | '=='): boolean {
    if (a.aware !== b.aware) {
      if (op === '==') return false;
      return raise('TypeError', "can't compare offset-naive and offset-aware datetimes");
    }
    const x = a.key();
    const y = b.key();
    return op === '==' ? x === y : ordered(x, op, y);
  }

  /** `isoformat()` (for reports). */
  isoformat(): string {
    const p = (v: number, w = 2) => String(v).padStart(w, '0');
    let s = `${p(this.year, 4)}-${p(this.month)}-${p(this.day)}T${p(this.hour)}:${p(this.minute)}:${p(this.second)}`;
    if (this.microsecond) s += `.${p(this.microsecond, 6)}`;
    if (this.utcoffsetUs !== null) {
      let off = this.utcoffsetUs;
      const sign = off < 0n ? '-' : '+';
      if (off < 0n) off = -off;
      const totalSec = Number(off / 1_000_000n);
      const us = Number(off % 1_000_000n);
      s += `${sign}${p(Math.floor(totalSec / 3600))}:${p(Math.floor((totalSec % 3600) / 60))}`;
      if (totalSec % 60 || us) s += `:${p(totalSec % 60)}`;
      if (us) s += `.${p(us, 6)}`;
    }
    return s;
  }

  toJSON(): string {
    return this.isoformat();
  }
}

const CANONICAL_ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})([+-])(\d{2}):(\d{2})$/;

/**
 * `datetime.fromisoformat(s)` exactly as CPython 3.8–3.10's C implementation (`_datetimemodule.c`): works on the
 * UTF-8 bytes, date `YYYY-MM-DD`, any single separator character, `HH[:MM[:SS[.fff[fff]]]]`, optional
 * `±HH:MM[:SS[.ffffff]]`. No `Z`. Raises TypeError for a non-str and ValueError for an invalid string.
 */
export function pyFromIsoFormat(input: unknown): PyDateTime {
  if (typeof input !== 'string') return raise('TypeError', 'fromisoformat: argument must be str');
  // Fast path for the form servers emit (`YYYY-MM-DDTHH:MM:SS±HH:MM`): the C parser's result is read off directly.
  const m = CANONICAL_ISO.exec(input);
  if (m) {
    const num = (i: number) => Number(m[i]);
    const off = (num(8) * 3600 + num(9) * 60) * (m[7] === '-' ? -1 : 1);
    return new PyDateTime(num(1), num(2), num(3), num(4), num(5), num(6), 0, BigInt(off) * 1_000_000n);
  }
  let s = input;
  const invalid = (): never => raise('ValueError', `Invalid isoformat string: ${pyRepr(input)}`);
  // _sanitize_isoformat_str: a surrogate at code point 10 is replaced with 'T'
  const cps = Array.from(s);
  if (cps.length > 10) {
    const c10 = cps[10].codePointAt(0)!;
    if (c10 >= 0xd800 && c10 <= 0xdfff) {
      cps[10] = 'T';
      s = cps.join('');
    }
  }
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s)) invalid(); // not UTF-8 encodable
  const bytes = new TextEncoder().encode(s);
  const len0 = bytes.length;
  const at = (i: number) => (i < bytes.length ? bytes[i] : 0);

  const parseDigits = (p: number, num: number): [number, number] | null => {
    let v = 0;
    for (let i = 0; i < num; i++) {
      const t = at(p++) - 0x30;
      if (t < 0 || t > 9) return null;
      v = v * 10 + t;
    }
    return [v, p];
  };

  // parse_isoformat_date
  let year = 0;
  let month = 0;
  let day = 0;
  let rv: number;
  {
    let p = 0;
    rv = 0;
    const y = parseDigits(p, 4);
    if (!y) rv = -1;
    else {
      [year, p] = y;
      if (at(p++) !== 0x2d) rv = -2;
      else {
        const m = parseDigits(p, 2);
        if (!m) rv = -1;
        else {
          [month, p] = m;
          if (at(p++) !== 0x2d) rv = -2;
          else {
            const d = parseDigits(p, 2);
            if (!d) rv = -1;
            else day = d[0];
          }
        }
      }
    }
  }

  let hour = 0;
  let minute = 0;
  let second = 0;
  let microsecond = 0;
  let tzoffset = 0;
  let tzusec = 0;

  // parse_hh_mm_ss_ff(tstr, tstr_end) → [rv, h, m, s, us]
  const parseHms = (start: number, end: number): [number, number, number, number, number] => {
    let p = start;
    const vals = [0, 0, 0];
    let us = 0;
    for (let i = 0; i < 3; i++) {
      const r = parseDigits(p, 2);
      if (!r) return [-3, vals[0], vals[1], vals[2], us];
      vals[i] = r[0];
      p = r[1];
      const c = at(p++);
      if (p >= end) return [c !== 0 ? 1 : 0, vals[0], vals[1], vals[2], us];
      else if (c === 0x3a) continue;
      else if (c === 0x2e) break;
      else return [-4, vals[0], vals[1], vals[2], us];
    }
    const lenRemains = end - p;
    if (!(lenRemains === 6 || lenRemains === 3)) return [-3, vals[0], vals[1], vals[2], us];
    const r = parseDigits(p, lenRemains);
    if (!r) return [-3, vals[0], vals[1], vals[2], us];
    us = r[0];
    p = r[1];
    if (lenRemains === 3) us *= 1000;
    return [at(p) !== 0 ? 1 : 0, vals[0], vals[1], vals[2], us];
  };

  if (rv === 0 && len0 > 10) {
    let p = 0;
    const b10 = at(10);
    if ((b10 & 0x80) === 0) p += 11;
    else {
      switch (b10 & 0xf0) {
        case 0xe0:
          p += 13;
          break;
        case 0xf0:
          p += 14;
          break;
        default:
          p += 12;
      }
    }
    const len = len0 - p;
    // parse_isoformat_time(p, len)
    const pEnd = p + len;
    let tzPos = p;
    do {
      const c = at(tzPos);
      if (c === 0x2b || c === 0x2d) break;
    } while (++tzPos < pEnd);
    const [r1, h, mi, se, us] = parseHms(p, tzPos);
    hour = h;
    minute = mi;
    second = se;
    microsecond = us;
    if (r1 < 0) rv = r1;
    else if (tzPos === pEnd) rv = r1 === 1 ? -5 : 0;
    else {
      const tzlen = pEnd - tzPos;
      if (!(tzlen === 6 || tzlen === 9 || tzlen === 16)) rv = -5;
      else {
        const tzsign = at(tzPos) === 0x2d ? -1 : 1;
        const [r2, th, tm, ts, tus] = parseHms(tzPos + 1, pEnd);
        tzoffset = tzsign * (th * 3600 + tm * 60 + ts);
        tzusec = tzsign * tus;
        rv = r2 ? -5 : 1;
      }
    }
  }
  if (rv < 0) invalid();
  let offset: bigint | null = null;
  // tzinfo_from_isoformat_results: an offset of 0 seconds is UTC even when microseconds were given
  if (rv === 1) offset = tzoffset === 0 ? 0n : BigInt(tzoffset) * 1_000_000n + BigInt(tzusec);
  return new PyDateTime(year, month, day, hour, minute, second, microsecond, offset);
}

/** Python-style `repr()` of a str (single quotes unless the string contains one and no double quote). */
export function pyRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === q) out += '\\' + q;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + q;
}

function unicodeDigitValue(ch: string): number {
  // Nd characters come in contiguous runs of ten (Unicode stability policy): value = offset within the run.
  let cp = ch.codePointAt(0)!;
  const start = cp;
  while (cp > 0 && /\p{Nd}/u.test(String.fromCodePoint(cp - 1))) cp--;
  return (start - cp) % 10;
}

/**
 * `datetime.strptime(s, "%Y-%m-%d")` (CPython `_strptime`): `%Y` = 4 digits, `%m` = `1[0-2]|0[1-9]|[1-9]`,
 * `%d` = `3[01]|[12]\d|0[1-9]|[1-9]| [1-9]`, whole string must match; `\d` is any Unicode decimal digit.
 */
export function pyStrptimeYmd(s: unknown): PyDateTime {
  if (typeof s !== 'string') return raise('TypeError', `strptime() argument 1 must be str, not ${pyTypeName(s)}`);
  const m = /^(\p{Nd}\p{Nd}\p{Nd}\p{Nd})-(1[0-2]|0[1-9]|[1-9])-(3[01]|[12]\p{Nd}|0[1-9]|[1-9]| [1-9])/u.exec(s);
  if (!m) return raise('ValueError', `time data ${pyRepr(s)} does not match format '%Y-%m-%d'`);
  if (m[0].length !== s.length) return raise('ValueError', `unconverted data remains: ${s.slice(m[0].length)}`);
  const num = (t: string) => Array.from(t.trim()).reduce((acc, ch) => acc * 10 + unicodeDigitValue(ch), 0);
  const year = num(m[1]);
  const month = num(m[2]);
  const day = num(m[3]);
  if (year < 1) return raise('ValueError', `year ${year} is out of range`);
  return new PyDateTime(year, month, day);
}

/** `timedelta(hours=h)` in microseconds. */
export const hoursUs = (h: number): bigint => BigInt(h) * 3_600_000_000n;

/** A short description of any thrown value, Python style when it is a PyException. */
export function describeError(e: unknown): string {
  if (e instanceof PyException) return `${e.pyType}: ${e.pyMessage}`;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
