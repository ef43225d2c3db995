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
 *
 * Template parity (`checkTemplateParity`, per-turn exports): each trainer row, rendered through the Qwen3 chat
 * template and tokenized, is what vLLM renders from the harness's request for that turn, and its loss covers exactly
 * the assistant turn it trains (`template.ts`).
 */
import { taskDialect } from '../protocol/dialect.js';
import type { FhirTransport } from '../fhir/types.js';
import { renderPrompt } from '../agent/prompt.js';
import { parseAction, type ParsedAction } from '../agent/parser.js';
import {
  GET_ERROR_PREFIX,
  GET_OK_PREFIX,
  GET_OK_SUFFIX,
  POST_ACCEPTED,
  POST_ACCEPTED_PREFIX,
  POST_INVALID,
  PUT_ACCEPTED_PREFIX,
  PUT_ERROR_PREFIX,
  PUT_INVALID,
} from '../protocol/text.js';
import { defaultJsonLoads, sendGet } from '../agent/loop.js';
import type { CanonicalRow, ChatMessage, ToolsMessage, ToolsRow } from './types.js';
import type { ChatMessage as TranscriptMessage } from '../tasks/types.js';
import type { FunctionTool } from '../protocol/tools.js';
import { fromToolsTrainerRow, parseToolsLine } from './export-tools.js';
import { templateMessages, toolCallText } from './tools-rows.js';
import { OpenAIAgent } from '../agent/backends/openai.js';
import type { HistoryItem } from '../tasks/types.js';
import { fromTrainerRow, type ExportFormat } from './export.js';
import { checkTurnParity, type TurnParityOptions } from './template.js';
import type { ExactTokenizer } from './tokenizer.js';

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
  // the task's dialect (`taskDialect`): MedAgentBench's official prompt and actions, or the suite's (PUT updates)
  const dialect = taskDialect(task);
  if (messages[0]!.content !== renderPrompt(task, { dialect }))
    issues.push({ turn: 0, problem: 'first user turn differs from the official prompt for this task' });
  let a = 0;
  const last = messages.length - 1;
  for (let i = 1; i < messages.length; i++) {
    const m = messages[i]!;
    if (m.role !== (i % 2 === 1 ? 'assistant' : 'user')) {
      issues.push({ turn: i, problem: `expected role ${i % 2 === 1 ? 'assistant' : 'user'}, got ${m.role}` });
      return issues;
    }
    if (m.role === 'assistant') {
      const act = parseAction(m.content, { put: dialect.put });
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
    const act = parseAction(messages[i - 1]!.content, { put: dialect.put });
    if (act.kind === 'post') {
      let ok = true;
      try {
        defaultJsonLoads(act.body);
      } catch {
        ok = false;
      }
      const want = ok ? POST_ACCEPTED : POST_INVALID;
      // suite rows write live: the accepted reply names the created resource
      const live = dialect.put && ok && m.content.startsWith(POST_ACCEPTED_PREFIX);
      if (m.content !== want && !live)
        issues.push({ turn: i, problem: `POST feedback differs from the harness string (${JSON.stringify(m.content.slice(0, 60))})` });
    } else if (act.kind === 'put') {
      // suite rows: a live PUT's reply (accepted with its location, invalid, or the server's refusal)
      if (!m.content.startsWith(PUT_ACCEPTED_PREFIX) && m.content !== PUT_INVALID && !m.content.startsWith(PUT_ERROR_PREFIX))
        issues.push({ turn: i, problem: `PUT feedback does not have the harness framing (${JSON.stringify(m.content.slice(0, 60))})` });
    } else if (act.kind === 'get') {
      if (opts.fhir) {
        const want = await sendGet(opts.fhir, act.url);
        if (m.content !== want) issues.push({ turn: i, problem: `GET feedback is not byte-identical to the harness reply for ${act.url}` });
      } else {
        const okShape = m.content.startsWith(GET_OK_PREFIX) && m.content.endsWith(GET_OK_SUFFIX);
        if (!okShape && !m.content.startsWith(GET_ERROR_PREFIX)) issues.push({ turn: i, problem: 'GET feedback does not have the harness framing' });
      }
    } else {
      issues.push({ turn: i, problem: 'user turn follows an action that ends the episode' });
    }
  }
  if (opts.expected && a !== opts.expected.length) issues.push({ turn: last, problem: `row has ${a} assistant turns, recorded ${opts.expected.length}` });
  return issues;
}

// ---- template parity (per-turn rows through the Qwen3 chat template) ---------------------------------------------

/** The messages the evaluation harness puts in its chat request for the turn after `history` (OpenAI backend). */
let requestAgent: OpenAIAgent | undefined;

export function harnessMessages(history: ChatMessage[]): Array<{ role: string; content: string }> {
  // the request body is built without any network use (loopback address, never contacted)
  const agent = (requestAgent ??= new OpenAIAgent({
    model: 'parity',
    baseUrls: ['http://127.0.0.1:1/v1'],
    extra: { chat_template_kwargs: { enable_thinking: false } },
  }));
  const items: HistoryItem[] = history.map((m) => ({ role: m.role === 'assistant' ? 'agent' : 'user', content: m.content }));
  return (JSON.parse(agent.requestBody(items).toString('utf8')) as { messages: Array<{ role: string; content: string }> }).messages;
}

/**
 * Indices of the messages a trainer puts loss on in one per-turn row of `format` (as exported: OpenAI `weight: 1`,
 * TRL the completion, axolotl assistant turns without `train: false` under `roles_to_train: [assistant]`,
 * LLaMA-Factory the last turn under `mask_history: true`).
 */
export function trainedTurns(row: Record<string, unknown>, format: ExportFormat): number[] {
  const list = (k: string) => (Array.isArray(row[k]) ? (row[k] as Array<Record<string, unknown>>) : []);
  switch (format) {
    case 'openai':
      return list('messages').flatMap((m, i) => (m.role === 'assistant' && m.weight === 1 ? [i] : []));
    case 'trl':
      return list('completion').map((_, i) => list('prompt').length + i);
    case 'axolotl':
      return list('messages').flatMap((m, i) => (m.role === 'assistant' && m.train !== false ? [i] : []));
    case 'llamafactory':
      return list('conversations').length ? [list('conversations').length - 1] : [];
  }
}

/** The request the evaluation harness sends for the turn after `prefix` of a tools conversation (OpenAI backend). */
export function harnessToolsRequest(prefix: ToolsMessage[], tools: FunctionTool[]): { messages: TranscriptMessage[]; tools: FunctionTool[] } {
  const agent = (requestAgent ??= new OpenAIAgent({
    model: 'parity',
    baseUrls: ['http://127.0.0.1:1/v1'],
    extra: { chat_template_kwargs: { enable_thinking: false } },
  }));
  const body = JSON.parse(JSON.stringify(agent.toolsRequestParams({ messages: prefix as TranscriptMessage[], history: [], tools }))) as {
    messages: TranscriptMessage[];
    tools: FunctionTool[];
  };
  return { messages: body.messages, tools: body.tools };
}

/**
 * Template parity of every per-turn trainer row of a tools export: each row, rendered through the Qwen3 chat template
 * with its tools (arguments as the template prints them), is what vLLM renders from the harness's request for that
 * turn (its messages with null content as "" and arguments parsed, its `tools`); the trained text is exactly the
 * corpus row's tool call of that turn as the template renders it (`<tool_call>…</tool_call><|im_end|>\n`) and the
 * row puts loss on that turn only.
 */
export function checkToolsTemplateParity(
  splits: Record<string, ToolsRow[]>,
  files: Record<string, string>,
  format: ExportFormat,
  tok: ExactTokenizer,
  tools: FunctionTool[],
): TemplateParityReport {
  return eachPerTurnLine(splits, files, (r, t, raw, where, report) => {
    let row: ReturnType<typeof fromToolsTrainerRow>;
    try {
      row = fromToolsTrainerRow(parseToolsLine(raw), format, 'per-turn');
    } catch (e) {
      report.issues.push(`${where}: ${(e as Error).message}`);
      return;
    }
    const conv = row.messages;
    const last = conv[conv.length - 1]!;
    if (row.trained.length !== 1 || row.trained[0] !== conv.length - 1)
      report.issues.push(`${where}: loss on turns [${row.trained.join(', ')}], expected only the last turn (${conv.length - 1})`);
    if (last.role !== 'assistant') {
      report.issues.push(`${where}: the trained turn is not an assistant tool call`);
      return;
    }
    const sent = harnessToolsRequest(r.messages.slice(0, t), tools);
    const canonical = r.messages[t] as Extract<ToolsMessage, { role: 'assistant' }>;
    let res: ReturnType<typeof checkTurnParity>;
    try {
      res = checkTurnParity(
        { prompt: templateMessages(conv.slice(0, -1)), completion: templateMessages([last])[0]! },
        templateMessages(sent.messages),
        tok,
        // the trained text must be the call the graded episode made at this turn (the corpus row's), as rendered
        { tools: row.tools, harnessTools: sent.tools, trainedText: canonical.tool_calls.map((c) => toolCallText(c.function)).join('\n') },
      );
    } catch (e) {
      report.issues.push(`${where}: ${(e as Error).message}`);
      return;
    }
    report.promptTokens += res.promptTokens;
    report.trainedTokens += res.trainedTokens;
    for (const p of res.problems) report.issues.push(`${where}: ${p}`);
  });
}

/**
 * Walk every assistant turn of every row of `splits` beside the per-turn trainer lines of `files` (one line per
 * assistant turn, in order): a missing line is an issue, every present one is counted and handed to `check` with
 * where it is (`<split>.jsonl line N (<row id> turn T)`); lines beyond the rows' turns are an issue.
 */
function eachPerTurnLine<R extends { messages: ReadonlyArray<{ role: string }>; meta: { row_id: string } }>(
  splits: Record<string, R[]>,
  files: Record<string, string>,
  check: (row: R, turn: number, raw: string, where: string, report: TemplateParityReport) => void,
): TemplateParityReport {
  const report: TemplateParityReport = { checked: 0, issues: [], promptTokens: 0, trainedTokens: 0 };
  for (const [name, rows] of Object.entries(splits)) {
    const lines = (files[`${name}.jsonl`] ?? '').split('\n').filter((l) => l !== '');
    let li = 0;
    for (const r of rows) {
      for (let t = 0; t < r.messages.length; t++) {
        if (r.messages[t]!.role !== 'assistant') continue;
        const where = `${name}.jsonl line ${li + 1} (${r.meta.row_id} turn ${t})`;
        const raw = lines[li++];
        if (raw === undefined) {
          report.issues.push(`${where}: missing (the export has ${lines.length} lines)`);
          continue;
        }
        report.checked++;
        check(r, t, raw, where, report);
      }
    }
    if (li < lines.length) report.issues.push(`${name}.jsonl: ${lines.length - li} lines beyond the canonical rows' assistant turns`);
  }
  return report;
}

export interface TemplateParityReport {
  checked: number;
  issues: string[];
  promptTokens: number;
  trainedTokens: number;
}

/**
 * Template parity of every per-turn trainer row of an export against the harness: see `checkTurnParity`. Also
 * requires each row to put loss on exactly one turn, its last (the assistant turn it trains). Issues name the split,
 * the line of the trainer file, the canonical row id and the turn.
 */
export function checkTemplateParity(
  splits: Record<string, CanonicalRow[]>,
  files: Record<string, string>,
  format: ExportFormat,
  tok: ExactTokenizer,
  opts: TurnParityOptions = {},
): TemplateParityReport {
  return eachPerTurnLine(splits, files, (r, t, raw, where, report) => {
    let line: Record<string, unknown>;
    let conv: ChatMessage[];
    try {
      line = JSON.parse(raw) as Record<string, unknown>;
      conv = fromTrainerRow(line, format, 'per-turn');
    } catch (e) {
      report.issues.push(`${where}: ${(e as Error).message}`);
      return;
    }
    const trained = trainedTurns(line, format);
    if (trained.length !== 1 || trained[0] !== conv.length - 1)
      report.issues.push(`${where}: loss on turns [${trained.join(', ')}], expected only the last turn (${conv.length - 1})`);
    const res = checkTurnParity({ prompt: conv.slice(0, -1), completion: conv[conv.length - 1]! }, harnessMessages(r.messages.slice(0, t)), tok, opts);
    report.promptTokens += res.promptTokens;
    report.trainedTokens += res.trainedTokens;
    for (const p of res.problems) report.issues.push(`${where}: ${p}`);
  });
}
