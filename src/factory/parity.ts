/**
 * Parity check: a training row must be exactly what the evaluation harness sends and expects.
 *
 *  - turn 0 is byte-identical to the official prompt rendered for the row's task (`renderPrompt`);
 *  - every assistant turn parses through the harness parser (`parseAction`) to a valid action — GET/POST for every
 *    turn but the last, FINISH for the last — and, when `expected` actions are given, to the same action;
 *  - every later user turn is byte-identical to what the harness would send at that step: the POST acceptance /
 *    invalid-POST strings for POSTs; for GETs, with a transport, the reply recomputed by the harness's own `sendGet`
 *    against the world, otherwise the reply's fixed framing (`Here is the response from the GET request:\n…. Please
 *    call FINISH …` or `Error in sending the GET request: …`).
 */
import type { FhirTransport } from '../fhir/types.js';
import { renderPrompt } from '../agent/prompt.js';
import { GET_ERROR_PREFIX, GET_OK_PREFIX, PLEASE_FINISH, POST_ACCEPTED, POST_INVALID, parseAction, type ParsedAction } from '../agent/parser.js';
import { defaultJsonLoads, sendGet } from '../agent/loop.js';
import type { CanonicalRow, ChatMessage } from './types.js';

export interface ParityIssue {
  turn: number;
  problem: string;
}

export interface ParityOptions {
  /** Recompute GET replies through the harness against this transport (addressed with the advertised api_base). */
  fhir?: FhirTransport;
  /** Actions the row must parse back to, one per assistant turn. */
  expected?: ParsedAction[];
}

function sameAction(a: ParsedAction, b: ParsedAction): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Check one conversation against the harness. Returns the issues found (empty = parity holds). */
export async function checkParity(messages: ChatMessage[], task: CanonicalRow['meta']['task'], opts: ParityOptions = {}): Promise<ParityIssue[]> {
  const issues: ParityIssue[] = [];
  if (messages.length < 2 || messages[0]!.role !== 'user') return [{ turn: 0, problem: 'conversation must start with the user prompt' }];
  if (messages[0]!.content !== renderPrompt(task)) issues.push({ turn: 0, problem: 'first user turn differs from the official prompt for this task' });
  let a = 0;
  const last = messages.length - 1;
  for (let i = 1; i < messages.length; i++) {
    const m = messages[i]!;
    if (m.role !== (i % 2 === 1 ? 'assistant' : 'user')) {
      issues.push({ turn: i, problem: `expected role ${i % 2 === 1 ? 'assistant' : 'user'}, got ${m.role}` });
      return issues;
    }
    if (m.role === 'assistant') {
      const act = parseAction(m.content);
      if (act.kind === 'invalid') issues.push({ turn: i, problem: 'assistant turn is not a GET, POST or FINISH action' });
      else if (i === last && act.kind !== 'finish') issues.push({ turn: i, problem: 'last assistant turn is not FINISH' });
      else if (i !== last && act.kind === 'finish') issues.push({ turn: i, problem: 'FINISH before the last turn' });
      if (m.content.includes('<think>')) issues.push({ turn: i, problem: 'assistant turn contains <think>' });
      if (opts.expected) {
        const want = opts.expected[a];
        if (!want || !sameAction(act, want)) issues.push({ turn: i, problem: 'assistant turn parses to a different action than the one recorded' });
      }
      a++;
      continue;
    }
    // user feedback for the previous assistant turn
    const act = parseAction(messages[i - 1]!.content);
    if (act.kind === 'post') {
      let ok = true;
      try {
        defaultJsonLoads(act.body);
      } catch {
        ok = false;
      }
      const want = ok ? POST_ACCEPTED : POST_INVALID;
      if (m.content !== want) issues.push({ turn: i, problem: `POST feedback differs from the harness string (${JSON.stringify(m.content.slice(0, 60))})` });
    } else if (act.kind === 'get') {
      if (opts.fhir) {
        const want = await sendGet(opts.fhir, act.url);
        if (m.content !== want) issues.push({ turn: i, problem: `GET feedback is not byte-identical to the harness reply for ${act.url}` });
      } else {
        const okShape = m.content.startsWith(GET_OK_PREFIX) && m.content.endsWith(`. ${PLEASE_FINISH}`);
        if (!okShape && !m.content.startsWith(GET_ERROR_PREFIX)) issues.push({ turn: i, problem: 'GET feedback does not have the harness framing' });
      }
    } else {
      issues.push({ turn: i, problem: 'user turn follows an action that ends the episode' });
    }
  }
  if (opts.expected && a !== opts.expected.length) issues.push({ turn: last, problem: `row has ${a} assistant turns, recorded ${opts.expected.length}` });
  return issues;
}
