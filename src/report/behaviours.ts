/**
 * Behaviour detectors: pure functions over (task, output, grade) that find what the study looks for in
 * trajectories. Each returns the occurrences it found with the history index and a short piece of evidence.
 */
import { taskDialect } from '../protocol/dialect.js';
import type { GradeResult, TaskOutput } from '../tasks/types.js';
import { bundleEntryCount, bundleHasNext, bundleValues, episodeSteps, numbersIn, scalars, tryJson, type Step } from './history.js';
import { FINISH_OPEN, POST_INVALID } from '../protocol/text.js';
import { hasToolCallText } from '../protocol/tools.js';
import { toolTranscript } from './transcript.js';
import type { BehaviourId, Detector, Finding, TaskInfo } from './types.js';
import { familyDetector } from './families.js';

export const BEHAVIOURS: { id: BehaviourId; title: string; description: string }[] = [
  {
    id: 'prose',
    title: 'Prose instead of / around an action',
    description:
      'An agent turn holds text other than one GET, POST or FINISH call (explanations before the call, text after the URL, the JSON or the closing parenthesis). Tools and MCP runs: a reply with text and no tool call (text beside tool calls is counted in the tool-call table; tool-call markup left in the text has its own status).',
  },
  {
    id: 'think',
    title: 'Reasoning block',
    description: 'An agent turn contains a <think> … </think> block (tools and MCP runs: also the text beside tool calls).',
  },
  { id: 'fence', title: 'Markdown fence', description: 'An agent turn wraps its call in ``` fences (the harness strips them; the grader reads the raw text).' },
  { id: 'finish-not-json', title: 'FINISH content not JSON', description: 'The episode ended with FINISH whose content does not parse as JSON.' },
  { id: 'invalid-post-json', title: 'Invalid POST JSON', description: `A POST whose body is not valid JSON (answered "${POST_INVALID}").` },
  {
    id: 'wrong-post-url',
    title: 'Wrong POST URL',
    description: 'A POST URL that is not exactly <api_base><ResourceType>: double slash, other host, query string or other path.',
  },
  {
    id: 'post-in-read-only',
    title: 'POST in a read-only task',
    description: 'A POST call, or the word POST in any agent message, in a query family (task1, 2, 4, 6, 7): the grader fails the task outright.',
  },
  {
    id: 'fabricated-action',
    title: 'Fabricated action or value',
    description: 'The answer claims an order no accepted POST supports, or reports a value that appears in no GET response.',
  },
  {
    id: 'self-contradiction',
    title: 'Self-contradiction',
    description: 'Data was retrieved, then -1 ("not available") was answered although the reference has a value.',
  },
  {
    id: 'stale-value',
    title: 'Stale or first-page value',
    description: 'The answered value appears in a GET response but is not the reference (latest) value: missing sort or paging.',
  },
  {
    id: 'wrong-patient',
    title: 'Wrong patient referenced',
    description: 'A GET or POST refers to a patient other than the one in the task (task1: the answer names another patient than the reference).',
  },
  { id: 'round-limit', title: 'Round limit', description: 'The episode used all rounds without FINISH (task limit reached).' },
  { id: 'context-limit', title: 'Context limit', description: 'The model backend reported a context-length error (agent context limit).' },
];

export const BEHAVIOUR_IDS: BehaviourId[] = BEHAVIOURS.map((b) => b.id);

const clip = (s: string, n = 160): string => {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
};

/** Remove `<think>` blocks (an unclosed one runs to the end) and Markdown fence markers with their language tag. */
export function stripThinkAndFences(content: string): string {
  return content
    .replace(/<think>[\s\S]*?<\/think>/gi, '')
    .replace(/<think>[\s\S]*$/i, '')
    .replace(/```[A-Za-z_]*[ \t]*\n?/g, '')
    .trim();
}

/** End index (exclusive) of the first JSON value in `text` starting at `from` (brackets and strings balanced). */
function jsonValueEnd(text: string, from: number): number {
  let i = from;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  const open = text[i];
  if (open !== '{' && open !== '[') {
    // scalar: up to the next whitespace
    const m = /^\S*/.exec(text.slice(i));
    return i + (m ? m[0].length : 0);
  }
  let depth = 0;
  let inString = false;
  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return text.length;
}

/** Index just after the `)` that closes `FINISH(` (strings and brackets balanced), or -1. */
function finishEnd(s: string): number {
  let depth = 0;
  let inString = false;
  for (let i = FINISH_OPEN.length; i < s.length; i++) {
    const ch = s[i]!;
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '(' || ch === '[' || ch === '{') depth++;
    else if (ch === ']' || ch === '}') depth--;
    else if (ch === ')') {
      if (depth === 0) return i + 1;
      depth--;
    }
  }
  return -1;
}

/** What, in one agent message, is text other than the call itself (undefined when the message is a clean call). */
export function extraText(content: string): string | undefined {
  const s = stripThinkAndFences(content);
  if (s === '') return undefined;
  const m = /^(GET|POST|FINISH\()/.exec(s);
  if (!m) return s;
  if (m[1] === 'GET') {
    // Later lines are extra text. On the URL line a space may belong to the URL (`name=Peter Stafford` is sent as
    // is), so only words without URL syntax after it count as prose.
    const nl = s.indexOf('\n');
    const line = (nl >= 0 ? s.slice(0, nl) : s).slice(3).trim();
    const later = nl >= 0 ? s.slice(nl + 1).trim() : '';
    const ws = line.search(/\s/);
    const tail = ws >= 0 ? line.slice(ws).trim() : '';
    const sentence = tail !== '' && !/[=&?/]/.test(tail) && tail.split(/\s+/).length >= 2 ? tail : '';
    const extra = [sentence, later].filter(Boolean).join('\n');
    return extra === '' ? undefined : extra;
  }
  if (m[1] === 'POST') {
    const nl = s.indexOf('\n');
    const first = (nl >= 0 ? s.slice(0, nl) : s).slice(4).trim();
    const ws = first.search(/\s/);
    if (ws >= 0) return first.slice(ws).trim();
    if (nl < 0) return undefined;
    const body = s.slice(nl + 1);
    const end = jsonValueEnd(body, 0);
    const tail = body.slice(end).trim();
    return tail === '' ? undefined : tail;
  }
  const end = finishEnd(s);
  if (end < 0) return undefined; // unbalanced FINISH: reported as finish-not-json
  const tail = s.slice(end).trim();
  return tail === '' ? undefined : tail;
}

/** An episode's steps, parsed in its task's dialect (a suite task's `PUT` is an action). */
const agentSteps = (output: TaskOutput, task: Pick<TaskInfo, 'id'>): Step[] => episodeSteps(output, { put: taskDialect(task.id).put });

export const detectProse: Detector = (task, output) =>
  agentSteps(output, task).flatMap((st) => {
    if (st.toolError !== undefined) return []; // a tool error: the item records the call, not text the model wrote (so for think and fence)
    if (st.textReply) {
      // tools / mcp: any text in place of a tool call (markup a server left unparsed has a status of its own)
      const text = stripThinkAndFences(st.content);
      return text === '' || hasToolCallText(text) ? [] : [{ behaviour: 'prose' as const, turn: st.turn, evidence: clip(text) }];
    }
    const extra = extraText(st.content);
    return extra === undefined ? [] : [{ behaviour: 'prose' as const, turn: st.turn, evidence: clip(extra) }];
  });

/** A reasoning tag. */
export const THINK = /<\/?think>/i;

export const detectThink: Detector = (task, output) => {
  const found: Finding[] = agentSteps(output, task)
    .filter((st) => st.toolError === undefined && THINK.test(st.content))
    .map((st) => ({ behaviour: 'think' as const, turn: st.turn, evidence: clip(st.content) }));
  // tools / mcp: the text beside a reply's tool calls is not in the history (a reply without calls is)
  for (const t of toolTranscript(output)?.turns ?? []) {
    if (t.calls.length === 0 || t.content === null || !THINK.test(t.content)) continue;
    found.push({ behaviour: 'think', turn: t.calls.find((c) => c.turn !== undefined)?.turn ?? -1, evidence: clip(t.content) });
  }
  return found.sort((a, b) => a.turn - b.turn);
};

export const detectFence: Detector = (task, output) =>
  agentSteps(output, task)
    .filter((st) => st.toolError === undefined && st.content.includes('```'))
    .map((st) => ({ behaviour: 'fence' as const, turn: st.turn, evidence: clip(st.content) }));

/** The FINISH step that ended the episode, if it ended with FINISH. */
function finishStep(output: TaskOutput, task: Pick<TaskInfo, 'id'>): Step | undefined {
  const all = agentSteps(output, task);
  const last = all[all.length - 1];
  return last && last.action.kind === 'FINISH' ? last : undefined;
}

export const detectFinishNotJson: Detector = (task, output) => {
  const fin = finishStep(output, task);
  if (!fin) return [];
  const result = typeof output.result === 'string' ? output.result : (fin.action.result ?? '');
  return tryJson(result).ok ? [] : [{ behaviour: 'finish-not-json', turn: fin.turn, evidence: clip(`FINISH(${result})`) }];
};

export const detectInvalidPostJson: Detector = (task, output) =>
  agentSteps(output, task)
    .filter((st) => st.action.kind === 'POST')
    .filter((st) => (st.reply !== undefined ? st.reply.startsWith(POST_INVALID) : !tryJson(st.action.body ?? '').ok))
    .map((st) => ({ behaviour: 'invalid-post-json' as const, turn: st.turn, evidence: clip(st.action.body ?? '') }));

/** Why a POST URL is not `<apiBase><Type>`, or undefined when it is. */
export function postUrlProblem(url: string, apiBase: string): string | undefined {
  const rest = url.startsWith(apiBase) ? url.slice(apiBase.length) : undefined;
  if (rest !== undefined && /^[A-Z][A-Za-z]*$/.test(rest)) return undefined;
  const problems: string[] = [];
  if (url.includes('?')) problems.push('query string');
  let host: string | undefined;
  let baseHost: string | undefined;
  try {
    host = new URL(url).host;
    baseHost = new URL(apiBase).host;
  } catch {
    /* not an absolute URL */
  }
  if (host === undefined) problems.push('not an absolute URL');
  else if (host !== baseHost) problems.push(`other host (${host})`);
  const path = url.replace(/^[a-z]+:\/\//i, '').split('?')[0]!;
  if (path.includes('//')) problems.push('double slash');
  if (problems.length === 0) problems.push('other path');
  return problems.join(', ');
}

export const detectWrongPostUrl: Detector = (task, output) =>
  agentSteps(output, task).flatMap((st) => {
    if (st.action.kind !== 'POST') return [];
    const problem = postUrlProblem(st.action.url ?? '', task.apiBase);
    return problem ? [{ behaviour: 'wrong-post-url' as const, turn: st.turn, evidence: `${problem}: ${clip(st.action.url ?? '', 120)}` }] : [];
  });

/**
 * POST in a query family: a POST call, or the word `POST` anywhere in an agent message (the grader's
 * `check_has_post` matches the substring, so `FINISH(["no POST needed"])` fails the task too).
 */
export const detectPostInReadOnly: Detector = (task, output) =>
  task.kind !== 'query'
    ? []
    : agentSteps(output, task)
        .filter((st) => st.action.kind === 'POST' || st.content.includes('POST'))
        .map((st) => ({
          behaviour: 'post-in-read-only' as const,
          turn: st.turn,
          evidence: st.action.kind === 'POST' ? clip(st.action.r, 120) : `the word POST trips the grader's check_has_post: ${clip(st.content, 100)}`,
        }));

/** The parsed FINISH answer of a completed episode. */
function answerOf(output: TaskOutput): { raw: string; json?: unknown; parsed: boolean } | undefined {
  if (output.status !== 'completed' || typeof output.result !== 'string') return undefined;
  const p = tryJson(output.result);
  return p.ok ? { raw: output.result, json: p.value, parsed: true } : { raw: output.result, parsed: false };
}

const CLAIM = /\b(ordered|placed|submitted|created|recorded|prescribed|referred|requested|scheduled|documented)\b/gi;
const NEGATION = /\b(no|not|never|without|nothing|n't)\b(\W+\w+){0,2}\W*$/i;

/** A claim in free text that an order/record was made (past-tense verb not negated just before it). */
export function claimsAction(text: string): string | undefined {
  for (const m of text.matchAll(CLAIM)) {
    const before = text.slice(Math.max(0, m.index! - 40), m.index!);
    if (!NEGATION.test(before) && !/n't\s*$/i.test(before)) return m[0];
  }
  return undefined;
}

/** The family's answer is a value read from the record, not computed (`detector.retrievedValue`). */
const retrievedValue = (family: string): boolean => familyDetector(family)?.retrievedValue === true;

const isMinusOne = (v: unknown): boolean => v === -1 || v === '-1';

function firstOf(v: unknown): unknown {
  return Array.isArray(v) ? v[0] : v;
}

export const detectFabricated: Detector = (task, output) => {
  const ans = answerOf(output);
  if (!ans) return [];
  const all = agentSteps(output, task);
  const fin = all[all.length - 1]!;
  const found: Finding[] = [];
  const acceptedPosts = all.filter((st) => st.action.kind === 'POST' && st.postAccepted);
  const answerText = ans.parsed
    ? scalars(ans.json)
        .filter((x): x is string => typeof x === 'string')
        .join(' ')
    : ans.raw;
  const claim = claimsAction(answerText);
  if (claim && acceptedPosts.length === 0) {
    found.push({ behaviour: 'fabricated-action', turn: fin.turn, evidence: `answer says "${claim}" but no POST was accepted: ${clip(ans.raw, 120)}` });
  }
  // Values: numbers and strings of the answer that no GET response contains.
  const gets = all.filter((st) => st.action.kind === 'GET' && st.getBody !== undefined);
  const values: Array<number | string> = ans.parsed ? scalars(ans.json) : numbersIn(ans.raw);
  const given = `${task.instruction ?? ''}\n${task.context ?? ''}`;
  const candidates = values.filter((v) => {
    if (isMinusOne(v)) return false;
    if (typeof v === 'string') return /^\S+$/.test(v) && /\d/.test(v) && !given.includes(v); // identifiers and times, not prose
    return !numbersIn(given).includes(v);
  });
  if (candidates.length === 0) return found;
  if (gets.length === 0) {
    found.push({ behaviour: 'fabricated-action', turn: fin.turn, evidence: `answer ${clip(ans.raw, 80)} with no successful GET` });
    return found;
  }
  if (!retrievedValue(task.family)) return found;
  const seenNumbers = new Set<number>();
  for (const g of gets) {
    const nums = g.getJson !== undefined ? scalars(g.getJson).filter((x): x is number => typeof x === 'number') : numbersIn(g.getBody!);
    nums.forEach((n) => seenNumbers.add(n));
  }
  const unsupported = candidates.filter((v) => (typeof v === 'number' ? !seenNumbers.has(v) : !gets.some((g) => g.getBody!.includes(v))));
  if (unsupported.length > 0) {
    found.push({
      behaviour: 'fabricated-action',
      turn: fin.turn,
      evidence: `answer reports ${unsupported.map((v) => JSON.stringify(v)).join(', ')}, found in no GET response`,
    });
  }
  return found;
};

export const detectSelfContradiction: Detector = (task, output, grade) => {
  const ans = answerOf(output);
  if (!ans || !ans.parsed || !isMinusOne(firstOf(ans.json))) return [];
  if (grade.reference === undefined || grade.reference === null) return [];
  const ref = firstOf(grade.reference);
  if (ref === undefined || isMinusOne(ref)) return [];
  const retrieving = agentSteps(output, task).find(
    (st) =>
      st.action.kind === 'GET' &&
      st.getJson !== undefined &&
      (bundleEntryCount(st.getJson) > 0 || !['Bundle', 'OperationOutcome'].includes(String((st.getJson as { resourceType?: unknown }).resourceType))),
  );
  if (!retrieving) return [];
  const vals = bundleValues(retrieving.getJson);
  const shown =
    vals.length > 0
      ? `values ${vals
          .slice(0, 3)
          .map((v) => v.value)
          .join(', ')}${vals.length > 3 ? ', …' : ''}`
      : `${bundleEntryCount(retrieving.getJson)} entries`;
  return [
    {
      behaviour: 'self-contradiction',
      turn: retrieving.turn,
      evidence: `GET returned ${shown}; answered ${clip(ans.raw, 40)}; reference ${JSON.stringify(grade.reference)}`,
    },
  ];
};

/** The family's answer is the latest reading of a code (`detector.latestValue`). */
const latestValue = (family: string): boolean => familyDetector(family)?.latestValue === true;

export const detectStaleValue: Detector = (task, output, grade) => {
  if (grade.correct || !latestValue(task.family)) return [];
  const ans = answerOf(output);
  if (!ans || !ans.parsed) return [];
  const a = firstOf(ans.json);
  if (typeof a !== 'number' || a === -1) return [];
  if (grade.reference === undefined || grade.reference === null) return [];
  const ref = firstOf(grade.reference);
  if (ref === a) return [];
  for (const st of agentSteps(output, task)) {
    if (st.action.kind !== 'GET' || st.getJson === undefined) continue;
    const vals = bundleValues(st.getJson);
    const hit = vals.find((v) => v.value === a);
    if (!hit) continue;
    const url = st.action.url ?? '';
    const why: string[] = [];
    if (!/[?&]_sort=/.test(url)) why.push('no _sort');
    if (bundleHasNext(st.getJson)) why.push('more pages not read');
    return [
      {
        behaviour: 'stale-value',
        turn: st.turn,
        evidence: `answered ${a}${hit.time ? ` (${hit.time})` : ''}, reference ${JSON.stringify(grade.reference)}${why.length ? `; ${why.join(', ')}` : ''}`,
      },
    ];
  }
  return [];
};

/** Patient ids a GET URL refers to. */
export function patientsInUrl(url: string): string[] {
  const out: string[] = [];
  for (const m of url.matchAll(/[?&](?:patient|subject|identifier|_id)=([^&\s]+)/gi)) {
    let v = m[1]!;
    try {
      v = decodeURIComponent(v);
    } catch {
      /* keep raw */
    }
    v = v.replace(/^Patient\//, '');
    if (v.includes('|')) v = v.slice(v.lastIndexOf('|') + 1);
    out.push(v);
  }
  for (const m of url.matchAll(/\/Patient\/([^/?&\s]+)/g)) out.push(m[1]!);
  return out;
}

const MRN_RE = /^S\d{7}$/;

export const detectWrongPatient: Detector = (task, output, grade) => {
  if (familyDetector(task.family)?.answerIsMrn) {
    // the answer names a patient other than the reference one
    const ans = answerOf(output);
    const a = ans?.parsed ? firstOf(ans.json) : undefined;
    const ref = firstOf(grade.reference);
    if (typeof a === 'string' && MRN_RE.test(a) && typeof ref === 'string' && a !== ref) {
      const fin = agentSteps(output, task).pop()!;
      return [{ behaviour: 'wrong-patient', turn: fin.turn, evidence: `answered ${a}; reference ${JSON.stringify(grade.reference)}` }];
    }
  }
  if (!task.mrn) return [];
  const found: Finding[] = [];
  for (const st of agentSteps(output, task)) {
    if (st.action.kind === 'GET') {
      const other = patientsInUrl(st.action.url ?? '').filter((p) => p !== task.mrn);
      if (other.length) found.push({ behaviour: 'wrong-patient', turn: st.turn, evidence: `GET for ${other.join(', ')}; task patient ${task.mrn}` });
    } else if (st.action.kind === 'POST' && st.payload && typeof st.payload === 'object') {
      const ref = (st.payload as { subject?: { reference?: unknown } }).subject?.reference;
      if (typeof ref === 'string' && ref !== `Patient/${task.mrn}`) {
        found.push({ behaviour: 'wrong-patient', turn: st.turn, evidence: `POST subject ${ref}; task patient ${task.mrn}` });
      }
    }
  }
  return found;
};

export const detectRoundLimit: Detector = (_task, output) =>
  output.status === 'task limit reached' ? [{ behaviour: 'round-limit', turn: -1, evidence: 'no FINISH within the round limit' }] : [];

export const detectContextLimit: Detector = (_task, output) =>
  output.status === 'agent context limit' ? [{ behaviour: 'context-limit', turn: -1, evidence: 'the model reported a context-length error' }] : [];

export const DETECTORS: Record<BehaviourId, Detector> = {
  prose: detectProse,
  think: detectThink,
  fence: detectFence,
  'finish-not-json': detectFinishNotJson,
  'invalid-post-json': detectInvalidPostJson,
  'wrong-post-url': detectWrongPostUrl,
  'post-in-read-only': detectPostInReadOnly,
  'fabricated-action': detectFabricated,
  'self-contradiction': detectSelfContradiction,
  'stale-value': detectStaleValue,
  'wrong-patient': detectWrongPatient,
  'round-limit': detectRoundLimit,
  'context-limit': detectContextLimit,
};

/** Run every detector on one episode; findings in behaviour order, then history order. */
export function detectAll(task: TaskInfo, output: TaskOutput, grade: GradeResult): Finding[] {
  return BEHAVIOUR_IDS.flatMap((id) => DETECTORS[id](task, output, grade));
}
