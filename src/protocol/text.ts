/**
 * The MedAgentBench text protocol, as the official harness (`start_sample`, docs/eval.md) and grader (`refsol.py`)
 * speak it: the one home of its strings and its parsing rules, with Python string semantics.
 *
 *   r = content.strip().replace('```tool_code', '').replace('```', '').strip()
 *   GET     → url = r[3:].strip() + '&_format=json'
 *   POST    → payload = json.loads('\n'.join(r.split('\n')[1:]))
 *   FINISH( → result = r[len('FINISH('):-1]
 *   else    → agent invalid action
 *
 * The `ehrgym` dialect (src/protocol/dialect.ts) adds `PUT url\n{json}` (an update, split as a POST is); its prompt
 * says so. MedAgentBench's protocol is unchanged: there a PUT is an invalid action, as upstream.
 *
 * Pure and dependency-free apart from the Python string semantics of src/tasks/pysem.ts (a leaf), so the graders and
 * expert solvers of src/tasks import it as well as the harness (src/agent) and the report (src/report).
 */
import type { Action } from './action.js';
import { pySliceFrom, pyStrip } from '../tasks/pysem.js';

// ---------------------------------------------------------------------------------------------------------------
// The reply strings (as the upstream `start_sample` writes them), byte-exact.

export const PLEASE_FINISH = 'Please call FINISH if you have got answers for all the questions and finished all the requested tasks';
export const GET_OK_PREFIX = 'Here is the response from the GET request:\n';
export const GET_OK_SUFFIX = `. ${PLEASE_FINISH}`;
export const GET_ERROR_PREFIX = 'Error in sending the GET request: ';
/** The substring `extract_posts` looks for in the reply after a POST. */
export const POST_ACCEPTED_MARK = 'POST request accepted';
/** What every accepted POST's reply starts with (official and live mode). */
export const POST_ACCEPTED_PREFIX = `${POST_ACCEPTED_MARK} and executed successfully.`;
export const POST_ACCEPTED = `${POST_ACCEPTED_PREFIX} ${PLEASE_FINISH}`;
export const POST_INVALID = 'Invalid POST request';
/** POST mode `live` only (an ehrgym extension): the POST could not be sent or the server refused it. */
export const POST_ERROR_PREFIX = 'Error in sending the POST request: ';
/** What the harness appends to every GET URL before sending it. */
export const GET_FORMAT_SUFFIX = '&_format=json';

const PROMPT_INTRO =
  'You are an expert in using FHIR functions to assist medical professionals. You are given a question and a set of possible functions. Based on the question, you will need to make one or more function/tool calls to achieve the purpose.\n' +
  '\n' +
  '1. If you decide to invoke a GET function, you MUST put it in the format of\n' +
  'GET url?param_name1=param_value1&param_name2=param_value2...\n' +
  '\n' +
  '2. If you decide to invoke a POST function, you MUST put it in the format of\n' +
  'POST url\n' +
  '[your payload data in JSON format]\n' +
  '\n';
const FINISH_CASE =
  'If you have got answers for all the questions and finished all the requested tasks, you MUST call to finish the conversation in the format of (make sure the list is JSON loadable.)\n' +
  'FINISH([answer1, answer2, ...])\n' +
  '\n';
const ONE_CASE = (cases: string) =>
  `Your response must be in the format of one of the ${cases} cases, and you can call only one function each time. You SHOULD NOT include any other text in the response.\n\n`;
const PROMPT_TAIL =
  'Here is a list of functions in JSON format that you can invoke. Note that you should use {api_base} as the api_base.\n' +
  '{functions}\n' +
  '\n' +
  'Context: {context}\n' +
  'Question: {question}';

/** The template of `MedAgentBench_prompt` (no trailing newline after `{question}`). */
export const PROMPT_TEMPLATE = `${PROMPT_INTRO}3. ${FINISH_CASE}${ONE_CASE('three')}${PROMPT_TAIL}`;

/**
 * The text prompt of the `ehrgym` dialect (the clinical suite, src/protocol/dialect.ts): the official prompt with a
 * third case, `PUT`, for updating a resource (FINISH becomes the fourth), and the dialect's functions as `{functions}`.
 */
export const EHRGYM_PROMPT_TEMPLATE =
  PROMPT_INTRO +
  '3. If you decide to invoke a PUT function (to update an existing resource: send the whole resource as you read it, with its id, changed where needed), you MUST put it in the format of\n' +
  'PUT url\n' +
  '[your payload data in JSON format]\n' +
  '\n' +
  `4. ${FINISH_CASE}${ONE_CASE('four')}${PROMPT_TAIL}`;

/** The `ehrgym` dialect's replies to a PUT, built like the POST ones. */
export const PUT_ACCEPTED_PREFIX = 'PUT request accepted and executed successfully.';
export const PUT_ACCEPTED = `${PUT_ACCEPTED_PREFIX} ${PLEASE_FINISH}`;
export const PUT_INVALID = 'Invalid PUT request';
export const PUT_ERROR_PREFIX = 'Error in sending the PUT request: ';

export function livePutAcceptedReply(location: string): string {
  return `${PUT_ACCEPTED_PREFIX} Location: ${location}. ${PLEASE_FINISH}`;
}
export function putErrorReply(error: string): string {
  return PUT_ERROR_PREFIX + error;
}

export function getOkReply(data: string): string {
  return `${GET_OK_PREFIX}${data}${GET_OK_SUFFIX}`;
}
export function getErrorReply(error: string): string {
  return GET_ERROR_PREFIX + error;
}
/** POST mode `live`: the server accepted the POST; the official acceptance text, then where the resource lives. */
export function livePostAcceptedReply(location: string): string {
  return `${POST_ACCEPTED_PREFIX} Location: ${location}. ${PLEASE_FINISH}`;
}
export function postErrorReply(error: string): string {
  return POST_ERROR_PREFIX + error;
}

/** The data of a successful GET's reply (between the fixed prefix and suffix; the suffix optional), else undefined. */
export function getOkBody(reply: string): string | undefined {
  if (!reply.startsWith(GET_OK_PREFIX)) return undefined;
  const body = reply.slice(GET_OK_PREFIX.length);
  return body.endsWith(GET_OK_SUFFIX) ? body.slice(0, -GET_OK_SUFFIX.length) : body;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing a reply, formatting an action.

const GET = 'GET';
const POST = 'POST';
const PUT = 'PUT';
/** What a FINISH action starts with; the answer runs to the reply's last code point (the closing `)`). */
export const FINISH_OPEN = 'FINISH(';

/** The harness's normalisation of a raw reply (`r` above). */
export function cleanReply(content: string): string {
  return pyStrip(pyStrip(content).split('```tool_code').join('').split('```').join(''));
}

/** Python `s[:-1]`: drops the last code point (not the last UTF-16 unit). */
export function dropLastCodePoint(s: string): string {
  if (s.length === 0) return s;
  const last = s.charCodeAt(s.length - 1);
  if (last >= 0xdc00 && last <= 0xdfff && s.length >= 2) {
    const prev = s.charCodeAt(s.length - 2);
    if (prev >= 0xd800 && prev <= 0xdbff) return s.slice(0, -2);
  }
  return s.slice(0, -1);
}

/**
 * A POST message split as the harness and `extract_posts` split it: `r.split('\n')[0]` (the first line),
 * `r.split('\n')[0][4:].strip()` (the URL) and `'\n'.join(r.split('\n')[1:])` (the payload text). `r` is the cleaned
 * reply for the harness, the raw message for the grader (which does not check that it starts with `POST`).
 */
export function splitPost(r: string): { firstLine: string; url: string; body: string } {
  const lines = r.split('\n');
  return { firstLine: lines[0], url: pyStrip(pySliceFrom(lines[0], POST.length)), body: lines.slice(1).join('\n') };
}

/** What a dialect adds to the official loop's parsing: `put` makes `PUT url\n{json}` an update (else invalid). */
export interface ParseOptions {
  put?: boolean;
}

/** Classify an already cleaned reply (`cleanReply`) as the official loop does (and, with `put`, a PUT as an update). */
export function parseCleaned(r: string, opts: ParseOptions = {}): Action {
  if (r.startsWith(GET)) return { kind: 'get', url: pyStrip(r.slice(GET.length)) };
  if (r.startsWith(POST)) {
    const { url, body } = splitPost(r);
    return { kind: 'post', url, body };
  }
  if (opts.put && r.startsWith(PUT)) {
    const lines = r.split('\n');
    return { kind: 'put', url: pyStrip(pySliceFrom(lines[0], PUT.length)), body: lines.slice(1).join('\n') };
  }
  if (r.startsWith(FINISH_OPEN)) return { kind: 'finish', answer: dropLastCodePoint(r.slice(FINISH_OPEN.length)) };
  return { kind: 'invalid' };
}

/** Classify a raw agent reply exactly as the official loop does (and, with `put`, a PUT as an update). */
export function parseAction(content: string, opts: ParseOptions = {}): Action {
  return parseCleaned(cleanReply(content), opts);
}

/** The URL the harness sends for a GET action. */
export function getRequestUrl(url: string): string {
  return url + GET_FORMAT_SUFFIX;
}

/** The reply text an agent writes for an action (what the expert solvers send); `parseAction` reads it back. */
export function formatAction(action: Exclude<Action, { kind: 'invalid' }>): string {
  if (action.kind === 'get') return `${GET} ${action.url}`;
  if (action.kind === 'post') return `${POST} ${action.url}\n${action.body}`;
  if (action.kind === 'put') return `${PUT} ${action.url}\n${action.body}`;
  return `${FINISH_OPEN}${action.answer})`;
}
