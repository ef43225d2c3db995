/**
 * Canonical serialisation helpers: stable JSON, JSONL I/O, the normalized-conversation content hash.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { CanonicalRow, ChatMessage } from './types.js';
import { JsonlError, jsonlValues } from '../eval/jsonl.js';

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** JSON with object keys sorted recursively (arrays keep their order). */
export function stableStringify(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value as Record<string, unknown>).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** Collapse whitespace runs to one space and trim. */
export function normalizeWhitespace(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/**
 * Normalize one turn for hashing: whitespace collapsed; an assistant POST has its JSON body re-serialised with sorted
 * keys (so key order and indentation do not make two identical demonstrations look different).
 */
export function normalizeTurn(m: ChatMessage): string {
  if (m.role === 'assistant') {
    const t = m.content.trim();
    if (t.startsWith('POST')) {
      const nl = t.indexOf('\n');
      if (nl > 0) {
        const head = normalizeWhitespace(t.slice(0, nl));
        try {
          return `${head}\n${stableStringify(JSON.parse(t.slice(nl + 1)))}`;
        } catch {
          /* not JSON: fall through to plain normalization */
        }
      }
    }
  }
  return normalizeWhitespace(m.content);
}

/**
 * sha256 over the normalized conversation: role + content of every turn, in order. Assistant turns (the trainable
 * text, which models format freely) are normalized (`normalizeTurn`); user turns are the harness's own byte-exact
 * strings (prompt, FHIR responses, reply templates) and are hashed as they are.
 */
export function contentHash(messages: ChatMessage[]): string {
  const h = createHash('sha256');
  for (const m of messages) {
    h.update(m.role);
    h.update('\u0000');
    h.update(m.role === 'assistant' ? normalizeTurn(m) : m.content);
    h.update('\u0001');
  }
  return h.digest('hex');
}

/** One canonical row as a JSONL line (messages first, then meta; meta keys in a fixed order). */
export function rowToLine(row: CanonicalRow): string {
  return JSON.stringify({ messages: row.messages.map((m) => ({ role: m.role, content: m.content })), meta: row.meta });
}

export function toJsonl(lines: unknown[]): string {
  return lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l)) + '\n').join('');
}

/** Parse a JSONL file; throws an Error naming the file and line on bad JSON. */
export function readJsonl<T = unknown>(file: string): T[] {
  try {
    return [...jsonlValues<T>(readFileSync(file, 'utf8'), file)].map((r) => r.value);
  } catch (e) {
    if (e instanceof JsonlError) throw new Error(`${file}:${e.line}: not valid JSON (${e.detail})`);
    throw e;
  }
}

/** Validate the shape of a canonical row read from disk; returns a reason string or null. */
export function checkRowShape(row: unknown): string | null {
  if (!row || typeof row !== 'object') return 'row is not an object';
  const r = row as Partial<CanonicalRow>;
  if (!Array.isArray(r.messages) || r.messages.length < 2) return 'messages missing or too short';
  for (const [i, m] of r.messages.entries()) {
    if (!m || (m.role !== 'user' && m.role !== 'assistant') || typeof m.content !== 'string') {
      return `message ${i} is not {role: user|assistant, content: string}`;
    }
    if (m.role !== (i % 2 === 0 ? 'user' : 'assistant')) return `message ${i} breaks user/assistant alternation`;
  }
  if (r.messages[r.messages.length - 1]!.role !== 'assistant') return 'last message is not an assistant turn';
  if (!r.meta || typeof r.meta !== 'object') return 'meta missing';
  if (typeof r.meta.task_family !== 'string' || !r.meta.task) return 'meta.task_family / meta.task missing';
  return null;
}
