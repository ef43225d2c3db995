/**
 * AgentBench's run files, byte for byte (`src/assigner.py`):
 *
 *   runs.jsonl / error.jsonl   one `json.dumps(record)` per line: Python's defaults, so non-ASCII is escaped
 *                              (`ensure_ascii`) and the separators are `", "` and `": "`;
 *   overall.json               `json.dumps(overall, indent=4, ensure_ascii=False)`, no final newline.
 *
 * Values keep their Python types: the per-status fractions, the average history length and the success rate are
 * floats (`1.0`, `0.0`), the total, the longest and shortest history and the indices are ints. Message contents are
 * written from the bytes serialised once per message (`src/agent/history-json.ts`), so a long run never re-encodes its
 * FHIR responses. One difference is deliberate: `raw_results` is in task order (AgentBench lists them as they
 * finished), so the file does not depend on concurrency.
 */
import { contentAsciiJsonBytes, contentJsonBytes } from '../agent/history-json.js';
import { PyFloat, pyJsonDumps } from '../tasks/pysem.js';
import type { HistoryItem, TaskOutput } from '../tasks/types.js';
import type { AgentBenchOverall } from './score.js';

export type Chunk = string | Buffer;

function isMessage(item: HistoryItem): boolean {
  const keys = Object.keys(item);
  return keys.length === 2 && keys[0] === 'role' && keys[1] === 'content' && typeof item.role === 'string' && typeof item.content === 'string';
}

/** Python `json.dumps(item)` of one history item, as parts. */
export function pyHistoryItemParts(item: HistoryItem): Chunk[] {
  if (!isMessage(item)) return [pyJsonDumps(item)];
  return [`{"role": ${pyJsonDumps(item.role)}, "content": `, contentAsciiJsonBytes(item), '}'];
}

/** A runs.jsonl line (without its newline) as parts: `json.dumps({"index", "error", "info", "output", "time"})`. */
export function runsLineParts(index: number, output: TaskOutput, time: { timestamp: number; str: string }, trial?: number): Chunk[] {
  const parts: Chunk[] = [
    `{"index": ${pyJsonDumps(index)}, ${trial !== undefined ? `"trial": ${pyJsonDumps(trial)}, ` : ''}"error": null, "info": null, "output": {"index": ${pyJsonDumps(output.index)}, "status": ${pyJsonDumps(output.status)}, "result": ${pyJsonDumps(output.result)}, "history": `,
  ];
  const h = output.history;
  if (h === null || h === undefined) parts.push('null');
  else {
    parts.push('[');
    for (let i = 0; i < h.length; i++) {
      if (i > 0) parts.push(', ');
      parts.push(...pyHistoryItemParts(h[i]));
    }
    parts.push(']');
  }
  // tools / mcp runs: the native transcript after the official fields (AgentBench readers ignore it)
  if (output.messages !== undefined) parts.push(`, "messages": ${pyJsonDumps(output.messages)}`);
  if (output.recoveredToolCalls !== undefined) parts.push(`, "recoveredToolCalls": ${pyJsonDumps(output.recoveredToolCalls)}`);
  parts.push(`}, "time": ${pyJsonDumps(time)}}`);
  return parts;
}

/** An error.jsonl line (without its newline): `json.dumps(record)`, keys in the record's order. */
export function errorLine(record: Record<string, unknown>): string {
  return pyJsonDumps(record);
}

/** Python `json.dumps(value, indent=4, ensure_ascii=False)` of a JSON value nested `level` deep. */
export function pyDumpsIndented(value: unknown, level: number): string {
  return pyJsonDumps(value, { indent: 4, ensureAscii: false }, level);
}

/** Keys of `validation` that are ints in AgentBench's file; every other value is a float. */
const INT_VALIDATION_KEYS = new Set(['max_history_length', 'min_history_length']);

/** One raw_results entry (nested 3 deep) as chunks. */
function* outputChunks(o: TaskOutput): Generator<Chunk> {
  const i4 = '\n' + ' '.repeat(16);
  const i5 = '\n' + ' '.repeat(20);
  const i6 = '\n' + ' '.repeat(24);
  yield `{${i4}"index": ${pyDumpsIndented(o.index, 4)},${i4}"status": ${pyDumpsIndented(o.status, 4)},${i4}"result": ${pyDumpsIndented(o.result, 4)},${i4}"history": `;
  const h = o.history;
  if (h === null || h === undefined) yield 'null';
  else if (h.length === 0) yield '[]';
  else {
    for (let i = 0; i < h.length; i++) {
      yield (i === 0 ? '[' : ',') + i5;
      const item = h[i];
      if (isMessage(item)) {
        yield `{${i6}"role": ${JSON.stringify(item.role)},${i6}"content": `;
        yield contentJsonBytes(item);
        yield `${i5}}`;
      } else yield pyDumpsIndented(item, 5);
    }
    yield `${i4}]`;
  }
  yield '\n' + ' '.repeat(12) + '}';
}

/** overall.json as chunks (write them one after the other): AgentBench's bytes for `overall`. */
export function* overallChunks(overall: AgentBenchOverall): Generator<Chunk> {
  const validation: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(overall.validation)) validation[k] = INT_VALIDATION_KEYS.has(k) ? v : new PyFloat(v);
  yield `{\n    "total": ${pyDumpsIndented(overall.total, 1)},\n    "validation": ${pyDumpsIndented(validation, 1)},\n    "custom": {\n        "success rate": ${pyJsonDumps(new PyFloat(overall.custom['success rate']))},\n        "raw_results": `;
  const raw = overall.custom.raw_results;
  if (raw.length === 0) yield '[]';
  else {
    for (let i = 0; i < raw.length; i++) {
      yield (i === 0 ? '[' : ',') + '\n' + ' '.repeat(12);
      yield* outputChunks(raw[i]);
    }
    yield '\n        ]';
  }
  yield '\n    }\n}';
}

/** overall.json as one string (small runs, tests). */
export function overallText(overall: AgentBenchOverall): string {
  let s = '';
  for (const c of overallChunks(overall)) s += typeof c === 'string' ? c : c.toString('utf8');
  return s;
}
