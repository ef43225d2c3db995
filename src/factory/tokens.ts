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

const PRETOKEN = /'(?:s|t|re|ve|m|ll|d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|\s*[\r\n]+|\s+(?!\S)|\s+|[^\s\p{L}\p{N}]+/gu;

export const TOKENIZER_APPROXIMATION =
  'Qwen2/Qwen3 pre-tokenizer split; letters ceil(len/6), punctuation ceil(len/2), 1 per digit/whitespace run; ' +
  'ChatML frame 5 per message + 4 for the empty think block';

export function estimateTextTokens(text: string): number {
  let n = 0;
  for (const m of text.matchAll(PRETOKEN)) {
    const s = m[0];
    if (/^\s+$/.test(s)) n += 1;
    else if (/\p{N}/u.test(s)) n += 1;
    else if (/\p{L}/u.test(s)) {
      // eslint-disable-next-line no-control-regex
      const nonAscii = s.replace(/[\x00-\x7f]/g, '').length;
      n += Math.max(1, Math.ceil((s.length - nonAscii) / 6)) + nonAscii;
    } else n += Math.max(1, Math.ceil(s.length / 2));
  }
  return n;
}

export function estimateChatTokens(messages: ChatMessage[]): number {
  let n = 0;
  for (const m of messages) n += 5 + estimateTextTokens(m.content);
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
