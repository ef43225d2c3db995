/**
 * Token-length estimates for dataset cards and `sequence_len` choices, without downloading a tokenizer.
 *
 * Approximation of Qwen3's byte-level BPE (the Qwen2 tokenizer):
 *  - text is pre-split like Qwen2's pre-tokenizer regex: contractions, letter runs (with one leading non-letter),
 *    single digits (Qwen splits numbers digit by digit), punctuation runs, whitespace runs;
 *  - a letter run counts ceil(len / 6) tokens (common English and FHIR words are one token), a punctuation run
 *    ceil(len / 2), a whitespace run 1, a digit 1, a non-ASCII character 1 per UTF-8 byte pair;
 *  - each message adds the ChatML frame `<|im_start|>{role}\n … <|im_end|>\n` (5 tokens) and the final assistant turn
 *    the empty think block `<think>\n\n</think>\n\n` (4 tokens) as the stock Qwen3 template renders it.
 * It is an estimate (typically within ±15 % of the real tokenizer on FHIR JSON); use it for statistics and
 * length buckets, not for exact truncation.
 */
import type { ChatMessage } from './types.js';

export const TOKENIZER_APPROXIMATION =
  'Qwen2/Qwen3 pre-tokenizer classes: letter runs ceil(len/6) (non-ASCII letters 1 each), 1 per digit, 1 per ' +
  'whitespace run, punctuation runs ceil(len/2); ChatML frame 5 per message + 4 for the empty think block';

const enum C {
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

/** True when the conversation is estimated above `max` tokens (stops counting early; long rows are common). */
export function exceedsTokens(messages: ChatMessage[], max: number): boolean {
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
