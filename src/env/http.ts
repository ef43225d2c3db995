/**
 * Request-body helpers shared by the environment's HTTP surfaces: a bounded JSON body read with Python `json.loads`
 * semantics (floats kept as written, so a tool's arguments reach the FHIR session as the client wrote them), and a
 * small validator that reports problems the way FastAPI/Pydantic do (`422 {detail: [{type, loc, msg, input}]}`).
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { PyFloat, pyJsonLoads } from '../tasks/pysem.js';

/** Largest request body any surface accepts (413 beyond). */
export const MAX_BODY_BYTES = 1024 * 1024;

export type BodyResult = { ok: true; value: unknown; text: string } | { ok: false; status: 413 | 422; body: unknown };

/**
 * Python `json.loads` of a request body or message, floats kept as written (`pyJsonLoads` with `preserveFloats`:
 * JSON.parse when the text holds no float literal, else the exact port). Throws PyException on invalid JSON.
 */
export function parseJsonText(text: string): unknown {
  return pyJsonLoads(text, { preserveFloats: true });
}

/** The body's bytes, at most MAX_BODY_BYTES (undefined beyond). */
async function bodyBytes(c: Context): Promise<Uint8Array | undefined> {
  // on a Node server the body is read from the IncomingMessage itself: building a fetch Request to read it costs more
  // than the rest of a tool call
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming || typeof incoming.on !== 'function') {
    const buf = new Uint8Array(await c.req.arrayBuffer());
    return buf.byteLength > MAX_BODY_BYTES ? undefined : buf;
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    incoming.on('data', (d: Buffer) => {
      size += d.length;
      if (size <= MAX_BODY_BYTES) parts.push(d);
    });
    incoming.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(parts)));
    incoming.on('error', reject);
  });
}

/** Read a request body of at most MAX_BODY_BYTES and parse it as JSON (empty body → `{}` when `emptyIsObject`). */
export async function readJsonBody(c: Context, opts: { emptyIsObject?: boolean } = {}): Promise<BodyResult> {
  const declared = Number(c.req.header('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) return tooLarge();
  const buf = await bodyBytes(c);
  if (buf === undefined) return tooLarge();
  const text = new TextDecoder().decode(buf);
  if (text.trim() === '' && opts.emptyIsObject) return { ok: true, value: {}, text: '{}' };
  try {
    return { ok: true, value: parseJsonText(text), text };
  } catch (e) {
    return {
      ok: false,
      status: 422,
      body: { detail: [{ type: 'json_invalid', loc: ['body', 0], msg: 'JSON decode error', input: {}, ctx: { error: (e as Error).message } }] },
    };
  }
}

function tooLarge(): BodyResult {
  return { ok: false, status: 413, body: { detail: `Request body too large (limit ${MAX_BODY_BYTES} bytes)` } };
}

export type FieldKind = 'str' | 'int' | 'object' | 'any';

export interface FieldSpec {
  kind: FieldKind;
  required?: boolean;
  /** null is accepted (Optional[...]). */
  nullable?: boolean;
}

export interface Issue {
  type: string;
  loc: Array<string | number>;
  msg: string;
  input: unknown;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof PyFloat);
}

/** A JSON value as plain JSON (PyFloat → number, bigint → number or string), for echoing inputs back. */
export function plain(v: unknown): unknown {
  if (v instanceof PyFloat) return v.value;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (Array.isArray(v)) return v.map(plain);
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** An integer as JSON gives it (a Python int), or undefined. */
export function intValue(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/** Validate a body against a model with `extra="forbid"`; the issues Pydantic would list (empty when valid). */
export function validateModel(body: unknown, fields: Record<string, FieldSpec>): Issue[] {
  if (!isPlainObject(body))
    return [{ type: 'model_attributes_type', loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', input: plain(body) }];
  const issues: Issue[] = [];
  for (const [name, spec] of Object.entries(fields)) {
    const has = Object.hasOwn(body, name);
    const v = body[name];
    if (!has) {
      if (spec.required) issues.push({ type: 'missing', loc: ['body', name], msg: 'Field required', input: plain(body) });
      continue;
    }
    if (v === null && (spec.nullable || !spec.required)) continue;
    if (spec.kind === 'str' && typeof v !== 'string')
      issues.push({ type: 'string_type', loc: ['body', name], msg: 'Input should be a valid string', input: plain(v) });
    if (spec.kind === 'int' && intValue(v) === undefined)
      issues.push({ type: 'int_type', loc: ['body', name], msg: 'Input should be a valid integer', input: plain(v) });
    if (spec.kind === 'object' && !isPlainObject(v))
      issues.push({ type: 'dict_type', loc: ['body', name], msg: 'Input should be a valid dictionary', input: plain(v) });
  }
  for (const k of Object.keys(body)) {
    if (!Object.hasOwn(fields, k)) issues.push({ type: 'extra_forbidden', loc: ['body', k], msg: 'Extra inputs are not permitted', input: plain(body[k]) });
  }
  return issues;
}
