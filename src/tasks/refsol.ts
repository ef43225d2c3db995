/**
 * Shared grader machinery: an exact port of the official refsol.py helpers and of `eval.py` / MedAgentBench's
 * `calculate_overall` (src/server/tasks/medagentbench/__init__.py upstream; docs/tasks.md). Family graders (task1.ts …
 * task10.ts) are built from these pieces.
 *
 *   check_has_post(results)   → checkHasPost(history)
 *   extract_posts(results)    → extractPosts(history)
 *   send_get_request(url)     → sendGetRequest(ctx, url)
 *   json.loads(send_get_request(url)['data'])  → getJsonData(ctx, url)
 */
import type { FhirTransport } from '../fhir/types.js';
import type { GradeCheck, GradeResult, GraderContext, TaskCase } from './types.js';
import {
  PyDateTime,
  PyException,
  PyFloat,
  describeError,
  hoursUs,
  pyAdd,
  pyCompare,
  pyDictGet,
  pyDiv,
  pyEquals,
  pyFromIsoFormat,
  pyGetItem,
  pyIn,
  pyIter,
  pyJsonLoads,
  pyPath,
} from './pysem.js';
import { POST_ACCEPTED_MARK, splitPost } from '../protocol/text.js';

/** Bumped whenever a grader's verdict logic changes. */
export const GRADER_VERSION = 'refsol-535cfec0/ehrgym-1';

export const NOW_ISO = '2023-11-13T10:15:00+00:00';
/** `datetime.fromisoformat("2023-11-13T10:15:00+00:00")` (aware). */
export const NOW: PyDateTime = pyFromIsoFormat(NOW_ISO);
/** `cutoff - timedelta(hours=24)` used by tasks 4, 5, 6 (inclusive, no upper bound). */
export const CUTOFF_24H: PyDateTime = NOW.plusUs(-hoursUs(24));
/** task10's one-year threshold (strictly older orders). */
export const ONE_YEAR_AGO: PyDateTime = pyFromIsoFormat('2022-11-13T10:15:00+00:00');
/** The substring extract_posts looks for in the reply after a POST (src/protocol/text.ts). */
export { POST_ACCEPTED_MARK };

// ---------------------------------------------------------------------------------------------------------------
// History helpers
// ---------------------------------------------------------------------------------------------------------------

function historyItems(history: unknown): unknown[] {
  // `for i in results.history` — None is not iterable
  return pyIter(history);
}

function attr(item: unknown, name: 'role' | 'content'): unknown {
  if (typeof item !== 'object' || item === null || !(name in item)) {
    throw new PyException('AttributeError', `object has no attribute '${name}'`);
  }
  return (item as Record<string, unknown>)[name];
}

/** `check_has_post`: any `agent` message containing `POST` anywhere (case-sensitive). */
export function checkHasPost(history: unknown): boolean {
  for (const i of historyItems(history)) {
    if (pyEquals(attr(i, 'role'), 'agent') && pyIn('POST', attr(i, 'content'))) return true;
  }
  return false;
}

/** One POST the grader saw: (url, payload) plus where it came from. */
export interface ExtractedPost {
  url: string;
  payload: unknown;
  /** Index of the agent message in the history. */
  index: number;
}

/** A POST-containing agent message extract_posts skipped, and why. */
export interface SkippedPost {
  index: number;
  reason: string;
}

/**
 * `extract_posts` with details. Raises IndexError (as Python does) when an agent message containing `POST` is the
 * last history item.
 */
export function extractPostsDetailed(history: unknown): { posts: ExtractedPost[]; skipped: SkippedPost[] } {
  const items = historyItems(history);
  const posts: ExtractedPost[] = [];
  const skipped: SkippedPost[] = [];
  items.forEach((i, idx) => {
    if (pyEquals(attr(i, 'role'), 'agent') && pyIn('POST', attr(i, 'content'))) {
      if (idx + 1 >= items.length) throw new PyException('IndexError', 'list index out of range');
      if (pyIn(POST_ACCEPTED_MARK, attr(items[idx + 1], 'content'))) {
        try {
          const { url, body } = splitPost(attr(i, 'content') as string);
          const payload = pyJsonLoads(body);
          posts.push({ url, payload, index: idx });
        } catch (e) {
          skipped.push({ index: idx, reason: describeError(e) });
        }
      } else {
        skipped.push({ index: idx, reason: `next message does not contain "${POST_ACCEPTED_MARK}"` });
      }
    }
  });
  return { posts, skipped };
}

/** `extract_posts`: the ordered (url, payload) list. */
export function extractPosts(history: unknown): ExtractedPost[] {
  return extractPostsDetailed(history).posts;
}

// ---------------------------------------------------------------------------------------------------------------
// Server access
// ---------------------------------------------------------------------------------------------------------------

export type GetResponse = { status_code: number; data: unknown } | { error: string };

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  412: 'Precondition Failed',
  422: 'Unprocessable Entity',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/**
 * `send_get_request(url)`: `{status_code, data}` where data is parsed JSON only when the Content-Type is exactly
 * `application/json` (otherwise the text), or `{error}` on a transport error or HTTP 4xx/5xx.
 */
export async function sendGetRequest(ctx: FhirTransport | GraderContext, url: string): Promise<GetResponse> {
  const fhir = typeof ctx === 'function' ? ctx : ctx.fhir;
  let res;
  try {
    res = await fhir({ method: 'GET', url });
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
  if (res.status >= 400) {
    const kind = res.status < 500 ? 'Client' : 'Server';
    return { error: `${res.status} ${kind} Error: ${REASONS[res.status] ?? ''} for url: ${url}` };
  }
  if (res.contentType === 'application/json') {
    try {
      return { status_code: res.status, data: pyJsonLoads(res.body) };
    } catch (e) {
      return { error: describeError(e) };
    }
  }
  return { status_code: res.status, data: res.body };
}

/** `json.loads(send_get_request(url)['data'])` — KeyError on a request error, TypeError on parsed data. */
export async function getJsonData(ctx: FhirTransport | GraderContext, url: string): Promise<unknown> {
  const r = await sendGetRequest(ctx, url);
  if (!('data' in r)) throw new PyException('KeyError', "'data'");
  return pyJsonLoads(r.data);
}

/** The grader's lab query URL. */
export function labUrl(apiBase: string, mrn: unknown, code: string): string {
  return `${apiBase}Observation?patient=${String(mrn)}&code=${code}&_count=5000&_format=json`;
}

/** `case_data['eval_MRN']` (KeyError when absent). */
export function evalMrn(task: TaskCase): string {
  return pyGetItem(task, 'eval_MRN') as string;
}

/** The lab graders' read: `get_res = json.loads(send_get_request(<labUrl>)['data'])` for `case_data['eval_MRN']`. */
export async function getLabHistory(ctx: GraderContext, task: TaskCase, code: string): Promise<unknown> {
  return getJsonData(ctx.fhir, labUrl(ctx.apiBase, evalMrn(task), code));
}

// ---------------------------------------------------------------------------------------------------------------
// Reference scans (the exact loops of tasks 4, 5, 6, 7, 9, 10)
// ---------------------------------------------------------------------------------------------------------------

export interface LatestScan {
  /** `last_value` (None → null). */
  value: unknown;
  /** `last_meas`. */
  meas: PyDateTime | null;
  /** The raw `effectiveDateTime` of the chosen entry (task10's `last_time`). */
  time: unknown;
  /** Number of entries scanned. */
  entries: number;
}

/**
 * `ref_sol = [last_value if last_value is not None else -1]` of a latest-value scan (tasks 4 and 7), with the
 * branch (`data_present` / `data_absent`) and the reading's time.
 */
export function latestReference(s: LatestScan): { ref: unknown[]; branch: string; time: unknown } {
  return { ref: [s.value !== null ? s.value : -1], branch: s.value !== null ? 'data_present' : 'data_absent', time: s.time };
}

/**
 * The "latest value" loop: iterate `get_res.get('entry', [])` in server order; parse effectiveDateTime, read
 * valueQuantity.value; optionally keep only `effective_time >= since`; replace only on a strictly later time.
 */
export function scanLatest(getRes: unknown, since?: PyDateTime): LatestScan {
  let lastMeas: PyDateTime | null = null;
  let lastValue: unknown = null;
  let lastTime: unknown = null;
  const entries = pyIter(pyDictGet(getRes, 'entry', []));
  for (const i of entries) {
    const effectiveTime = pyFromIsoFormat(pyPath(i, 'resource', 'effectiveDateTime'));
    const value = pyPath(i, 'resource', 'valueQuantity', 'value');
    if (since === undefined || pyCompare(effectiveTime, '>=', since)) {
      if (lastMeas === null || pyCompare(effectiveTime, '>', lastMeas)) {
        lastMeas = effectiveTime;
        lastTime = pyPath(i, 'resource', 'effectiveDateTime');
        lastValue = value;
      }
    }
  }
  return { value: lastValue, meas: lastMeas, time: lastTime, entries: entries.length };
}

export interface MeanScan {
  /** `glu_sum/glu_count`, or -1 when no value qualified. */
  mean: unknown;
  count: number;
  values: unknown[];
}

/** task6's loop: sum and count every value with `effective_time >= since`. */
export function scanMean(getRes: unknown, since: PyDateTime): MeanScan {
  let sum: unknown = 0;
  let count = 0;
  const values: unknown[] = [];
  for (const i of pyIter(pyDictGet(getRes, 'entry', []))) {
    const effectiveTime = pyFromIsoFormat(pyPath(i, 'resource', 'effectiveDateTime'));
    const value = pyPath(i, 'resource', 'valueQuantity', 'value');
    if (pyCompare(effectiveTime, '>=', since)) {
      sum = pyAdd(sum, value);
      count += 1;
      values.push(value);
    }
  }
  // glu_sum starts as 0. (float): the mean is always a float
  return { mean: count !== 0 ? pyDiv(sum, count) : -1, count, values };
}

// ---------------------------------------------------------------------------------------------------------------
// Grade recording
// ---------------------------------------------------------------------------------------------------------------

/** One Python `assert` inside a grader's try block. */
export interface AssertSpec {
  name: string;
  /** Evaluates the inspected value (may raise, as Python's subscripting does). */
  actual: () => unknown;
  expected?: unknown;
  /** The test (default: `actual == expected`). May raise. */
  test?: (actual: unknown) => boolean;
  note?: string;
}

/** Collects the named checks of one grading run. */
export class Grading {
  readonly checks: GradeCheck[] = [];
  branch?: string;
  reference?: unknown;

  add(name: string, pass: boolean, expected?: unknown, actual?: unknown, note?: string): boolean {
    const c: GradeCheck = { name, pass };
    if (expected !== undefined) c.expected = reportValue(expected);
    if (actual !== undefined) c.actual = reportValue(actual);
    if (note !== undefined) c.note = note;
    this.checks.push(c);
    return pass;
  }

  /** A `try: assert …; assert … except: return False` block: stops at the first failing or raising assert. */
  asserts(specs: AssertSpec[]): boolean {
    for (const s of specs) {
      let actual: unknown;
      try {
        actual = s.actual();
      } catch (e) {
        return this.add(s.name, false, s.expected, undefined, describeError(e));
      }
      let pass: boolean;
      try {
        pass = s.test ? s.test(actual) : pyEquals(actual, s.expected);
      } catch (e) {
        return this.add(s.name, false, s.expected, actual, describeError(e));
      }
      if (!this.add(s.name, pass, s.expected, actual, s.note)) return false;
    }
    return true;
  }

  /**
   * The final answer block: `try: l = json.loads(results.result); if <accept(l)>: return True; return False
   * except: return False`.
   */
  answer(result: unknown, accept: (parsed: unknown) => boolean, expected: unknown, name = 'answer'): boolean {
    let parsed: unknown;
    try {
      parsed = pyJsonLoads(result);
    } catch (e) {
      return this.add(name, false, expected, result, describeError(e));
    }
    try {
      return this.add(name, accept(parsed), expected, parsed);
    } catch (e) {
      return this.add(name, false, expected, parsed, describeError(e));
    }
  }

  /**
   * `posts = extract_posts(results); if len(posts) != count: return False` (check `post_count`, with the skipped
   * POSTs as a note). Returns the posts, or null when the grader returns False.
   */
  postCount(history: unknown, count: number): ExtractedPost[] | null {
    const { posts, skipped } = extractPostsDetailed(history);
    const note = skipped.length ? `skipped: ${JSON.stringify(skipped)}` : undefined;
    return this.add('post_count', posts.length === count, count, posts.length, note) ? posts : null;
  }

  /**
   * The one-POST prologue of the action graders: `posts = extract_posts(results); if len(posts) != 1: return False;
   * url, payload = posts[0]; if url != want: return False` (checks `post_count`, `post_url`). Returns the POST, or
   * null when the grader returns False.
   */
  onePost(history: unknown, want: string): ExtractedPost | null {
    const posts = this.postCount(history, 1);
    if (!posts) return null;
    const [post] = posts;
    return this.add('post_url', post.url === want, want, post.url) ? post : null;
  }

  /** `check_has_post` used as a guard ("no POST allowed"). Returns true when the grader may continue. */
  noPost(history: unknown, name = 'no_post'): boolean {
    const has = checkHasPost(history);
    return this.add(name, !has, false, has, has ? 'an agent message contains "POST"' : undefined);
  }

  result(correct: boolean, exception?: string): GradeResult {
    const r: GradeResult = { correct, checks: this.checks };
    if (this.branch !== undefined) r.branch = this.branch;
    if (this.reference !== undefined) r.reference = reportValue(this.reference);
    if (exception !== undefined) r.exception = exception;
    return r;
  }
}

/**
 * A JSON-safe copy of a value for reports: Python ints beyond 2^53 (bigint) become their decimal string, PyFloat a
 * number; everything else is kept.
 */
export function reportValue(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof PyFloat) return v.value;
  if (Array.isArray(v)) return v.some(needsCopy) ? v.map(reportValue) : v;
  if (v !== null && typeof v === 'object' && !(v instanceof PyDateTime)) {
    const o = v as Record<string, unknown>;
    if (!Object.values(o).some(needsCopy)) return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o)) Object.defineProperty(out, k, { value: reportValue(o[k]), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

function needsCopy(v: unknown): boolean {
  if (typeof v === 'bigint' || v instanceof PyFloat) return true;
  if (Array.isArray(v)) return v.some(needsCopy);
  if (v !== null && typeof v === 'object' && !(v instanceof PyDateTime)) return Object.values(v as object).some(needsCopy);
  return false;
}

/**
 * Runs a ported grader body. The body returns Python's return value (`true` only for `return True`); exceptions that
 * escape the body (those `eval.py` catches) give `correct: false` with `exception` set.
 */
export async function runGrader(body: (g: Grading) => Promise<boolean | null> | boolean | null): Promise<GradeResult> {
  const g = new Grading();
  try {
    const v = await body(g);
    return g.result(v === true);
  } catch (e) {
    return g.result(false, describeError(e));
  }
}

/** The `{"reference": "Patient/<MRN>"}` dict graders compare `subject` with. */
export function subjectOf(mrn: string): { reference: string } {
  return { reference: `Patient/${mrn}` };
}

/** `==` check helper for asserts on a payload path. */
export function eqAt(name: string, payload: unknown, path: Array<string | number>, expected: unknown): AssertSpec {
  return { name, actual: () => pyPath(payload, ...path), expected };
}

/** `needle in payload[path]` helper. */
export function inAt(name: string, payload: unknown, path: Array<string | number>, needle: string): AssertSpec {
  return {
    name,
    actual: () => pyPath(payload, ...path),
    expected: `contains ${JSON.stringify(needle)}`,
    test: (a) => pyIn(needle, a),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// calculate_overall / eval.py
// ---------------------------------------------------------------------------------------------------------------

/** `payload['subject'] == {'reference': f"Patient/{case_data['eval_MRN']}"}` (left side evaluated first). */
export function subjectAssert(payload: unknown, task: TaskCase): AssertSpec {
  return {
    name: 'subject',
    actual: () => pyPath(payload, 'subject'),
    expected: task.eval_MRN !== undefined ? subjectOf(task.eval_MRN) : undefined,
    test: (a) => pyEquals(a, subjectOf(evalMrn(task))),
  };
}
