/**
 * Append-only JSONL files that survive Ctrl-C and kill -9: each line is written with one write() call and fsync'd,
 * and readers tolerate (and repair) a torn last line.
 */
import { closeSync, existsSync, fdatasync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';

const NEWLINE = Buffer.from('\n');

/**
 * Appends one JSON value per line. Each line goes to the file with a single write() before `append` returns, so a
 * killed process (Ctrl-C, kill -9) never loses a line it appended, at worst the tail of the one being written.
 * Durability against power loss: every line is fdatasync'd; syncs run off the event loop and are grouped
 * (one in flight, the next covers every line written meanwhile). `flush()` resolves when all lines are synced.
 */
export class JsonlAppender {
  private fd: number;
  private written = 0;
  private synced = 0;
  private syncing = false;
  private waiters: Array<{ upTo: number; resolve: () => void; reject: (e: unknown) => void }> = [];
  private failure: unknown;

  constructor(
    readonly path: string,
    private readonly sync = true,
  ) {
    this.fd = openSync(path, 'a');
  }

  append(value: unknown): void {
    this.appendText(JSON.stringify(value));
  }

  /** Append one line of already-serialised JSON (no newline inside). */
  appendText(json: string): void {
    if (this.failure) throw this.failure;
    writeSync(this.fd, json + '\n');
    this.written++;
    if (this.sync) this.kick();
    else this.synced = this.written;
  }

  /**
   * Append one line given as consecutive parts of already-serialised JSON (strings, or their UTF-8 bytes): each part
   * is encoded on its own (a part with characters beyond Latin-1 does not slow the others down) and the line still
   * goes out in one write().
   */
  appendParts(parts: Array<string | Buffer>): void {
    if (this.failure) throw this.failure;
    const bufs = new Array<Buffer>(parts.length + 1);
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      bufs[i] = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
    }
    bufs[parts.length] = NEWLINE;
    writeSync(this.fd, Buffer.concat(bufs));
    this.written++;
    if (this.sync) this.kick();
    else this.synced = this.written;
  }

  private kick(): void {
    if (this.syncing || this.synced === this.written || this.fd < 0) return;
    this.syncing = true;
    const upTo = this.written;
    fdatasync(this.fd, (err) => {
      this.syncing = false;
      if (err) {
        this.failure = err;
        for (const w of this.waiters.splice(0)) w.reject(err);
        return;
      }
      this.synced = upTo;
      this.waiters = this.waiters.filter((w) => (w.upTo <= upTo ? (w.resolve(), false) : true));
      this.kick();
    });
  }

  /** Resolves when every line appended so far is on disk. */
  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.synced >= this.written) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ upTo: this.written, resolve, reject });
      this.kick();
    });
  }

  async close(): Promise<void> {
    if (this.fd < 0) return;
    await this.flush();
    closeSync(this.fd);
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
  /** `detail`: the JSON parser's own message, for callers that show it. */
  constructor(
    readonly path: string,
    readonly line: number,
    reason: string,
    readonly detail = '',
  ) {
    super(`${path}:${line}: ${reason}`);
    this.name = 'JsonlError';
  }
}

/**
 * The JSON values of JSONL `text` (read from `path`) in order, with their 1-based line numbers; blank lines are
 * skipped. Parsing is lazy: a line that is not JSON throws a JsonlError when the iteration reaches it, so a caller that
 * checks each value reports the first bad line, whichever way it is bad.
 */
export function* jsonlValues<T = unknown>(text: string, path: string): Generator<{ line: number; value: T }> {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    if (raw.trim() === '') continue;
    let value: T;
    try {
      value = JSON.parse(raw) as T;
    } catch (e) {
      throw new JsonlError(path, i + 1, 'not valid JSON', (e as Error).message);
    }
    yield { line: i + 1, value };
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
