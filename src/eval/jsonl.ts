/**
 * Append-only JSONL files that survive Ctrl-C and kill -9: each line is written with one write() call and fsync'd,
 * and readers tolerate (and repair) a torn last line.
 */
import { closeSync, existsSync, fdatasyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';

export class JsonlAppender {
  private fd: number;
  constructor(readonly path: string, private readonly sync = true) {
    this.fd = openSync(path, 'a');
  }
  append(value: unknown): void {
    writeSync(this.fd, JSON.stringify(value) + '\n');
    if (this.sync) fdatasyncSync(this.fd);
  }
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

export interface JsonlRead<T> {
  records: Array<{ line: number; value: T }>;
  /** Bytes of complete lines; a torn tail starts here. */
  validBytes: number;
  /** A torn last line was found (no trailing newline or not parseable). */
  torn: boolean;
}

export class JsonlError extends Error {
  constructor(readonly path: string, readonly line: number, reason: string) {
    super(`${path}:${line}: ${reason}`);
    this.name = 'JsonlError';
  }
}

/**
 * Read a JSONL file. A bad line anywhere but at the end is an error naming the line; a bad or unterminated last line
 * is a torn write (reported, not fatal) when `tolerateTornTail` is set.
 */
export function readJsonl<T = unknown>(path: string, opts: { tolerateTornTail?: boolean } = {}): JsonlRead<T> {
  if (!existsSync(path)) return { records: [], validBytes: 0, torn: false };
  const text = readFileSync(path, 'utf8');
  const records: Array<{ line: number; value: T }> = [];
  let pos = 0;
  let validBytes = 0;
  let lineNo = 0;
  while (pos < text.length) {
    lineNo++;
    const nl = text.indexOf('\n', pos);
    const last = nl < 0;
    const raw = text.slice(pos, last ? text.length : nl);
    const next = last ? text.length : nl + 1;
    const isFinal = next >= text.length;
    if (raw.trim() === '') {
      pos = next;
      if (!last) validBytes += Buffer.byteLength(raw) + 1;
      continue;
    }
    if (last && opts.tolerateTornTail) {
      // no terminating newline: the final write was cut (a line is only complete with its newline)
      return { records, validBytes, torn: true };
    }
    let value: T;
    try {
      value = JSON.parse(raw) as T;
    } catch {
      if (isFinal && opts.tolerateTornTail) return { records, validBytes, torn: true };
      throw new JsonlError(path, lineNo, 'not valid JSON');
    }
    records.push({ line: lineNo, value });
    pos = next;
    validBytes += Buffer.byteLength(raw) + 1;
  }
  return { records, validBytes, torn: false };
}

/** Cut a file back to its last complete line (after a torn write), so appends start on a clean line. */
export function truncateTo(path: string, bytes: number): void {
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
}
