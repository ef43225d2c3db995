/**
 * JSON writers that match HAPI FHIR's output byte for byte: the pretty form (2-space indent, `"key": value`,
 * arrays rendered inline as `[ … ]` with objects opening on the same line: `[ {` … `}, {` … `} ]`) and the compact
 * form. FhirDecimal values print their original text (`4.0`).
 */
import { FhirDecimal } from './decimal.js';

const INDENTS: string[] = [''];
function indent(level: number): string {
  while (INDENTS.length <= level) INDENTS.push(INDENTS[INDENTS.length - 1] + '  ');
  return INDENTS[level];
}

function scalar(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return String(v);
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (v === null) return 'null';
  if (v instanceof FhirDecimal) return v.text;
  return undefined;
}

function normalise(v: unknown): unknown {
  if (v && typeof v === 'object' && !(v instanceof FhirDecimal) && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    return (v as { toJSON(): unknown }).toJSON();
  }
  return v;
}

/** `"key": ` for object keys seen so far (FHIR uses few distinct keys; bounded). */
const KEY_TEXT = new Map<string, string>();
function keyText(k: string): string {
  let t = KEY_TEXT.get(k);
  if (t === undefined) {
    t = JSON.stringify(k) + ': ';
    if (KEY_TEXT.size < 4096) KEY_TEXT.set(k, t);
  }
  return t;
}

/**
 * Pretty text of `v` at `level`, or undefined for values an object omits (undefined, functions, symbols; an array
 * prints them as `null`). Scalars as `scalar` writes them; `toJSON` is honoured like JSON.stringify does.
 */
function prettyValue(v: unknown, level: number): string | undefined {
  if (typeof v !== 'object' || v === null || v instanceof FhirDecimal) return scalar(v);
  if (Array.isArray(v)) return prettyArray(v, level);
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return prettyValue((v as { toJSON(): unknown }).toJSON(), level);
  return prettyObject(v as Record<string, unknown>, level);
}

function prettyArray(v: unknown[], level: number): string {
  if (v.length === 0) return '[ ]';
  let out = '[ ';
  for (let i = 0; i < v.length; i++) {
    if (i > 0) out += ', ';
    out += prettyValue(v[i], level) ?? 'null';
  }
  return out + ' ]';
}

function prettyObject(v: Record<string, unknown>, level: number): string {
  const inner = indent(level + 1);
  let out = '{';
  let first = true;
  for (const k in v) {
    const s = prettyValue(v[k], level + 1);
    if (s === undefined) continue;
    out += (first ? '\n' : ',\n') + inner + keyText(k) + s;
    first = false;
  }
  return first ? '{ }' : out + '\n' + indent(level) + '}';
}

/** HAPI pretty form of `v`, as if it started on a line indented by `level` steps. */
export function pretty(v: unknown, level = 0): string {
  return prettyValue(v, level) ?? 'null';
}

/** Compact JSON (like JSON.stringify) that keeps FhirDecimal text. */
export function compact(v: unknown): string {
  v = normalise(v);
  const s = scalar(v);
  if (s !== undefined || v === undefined || typeof v !== 'object') return s ?? 'null';
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out += ',';
      const item = normalise(v[i]);
      out += item === undefined || typeof item === 'function' ? 'null' : compact(item);
    }
    return out + ']';
  }
  let out = '{';
  let first = true;
  for (const k in v as Record<string, unknown>) {
    const val = normalise((v as Record<string, unknown>)[k]);
    if (val === undefined || typeof val === 'function' || typeof val === 'symbol') continue;
    out += (first ? '' : ',') + JSON.stringify(k) + ':' + compact(val);
    first = false;
  }
  return out + '}';
}

export function writeJson(v: unknown, prettyPrint: boolean): string {
  return prettyPrint ? pretty(v, 0) : compact(v);
}

/**
 * How deeply `text` (JSON) nests objects and arrays, counted in one pass without recursion (brackets inside strings
 * do not count); stops early, returning `max + 1`, once the depth exceeds `max`. Lets a server refuse a body that
 * would make a recursive walk overflow the stack before `JSON.parse` builds it.
 */
export function jsonDepth(text: string, max = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > max) return deepest;
      }
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}

/**
 * Canonical JSON text of a value: object keys sorted, keys whose value is undefined left out (as JSON.stringify does),
 * no whitespace. Equal texts mean equal JSON values whatever the key order.
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
