/**
 * A cache of model replies keyed by the full request (`--reply-cache FILE`): re-running an eval (another protocol
 * option, a fixed grader, a lost run folder) answers every request it has seen from the file instead of the model.
 *
 * The file is JSON Lines, one `{"key": <sha256 of the request body's JSON>, "completion": <the chat completion>}` per
 * model call, appended as replies arrive (a torn last line from a killed run is ignored). The key covers everything
 * the request sends (model, sampling settings, `--extra`, messages, tools, tool_choice) and nothing else: the API key
 * and the base URL are not part of it, and nothing but the request's hash and the reply is written. It grows by one
 * line per distinct request (a 300-task run: a few thousand lines, the size of the replies); it is read whole at start.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, truncateSync } from 'node:fs';
import { dirname } from 'node:path';
import { createHash } from 'node:crypto';

export class ReplyCache {
  private readonly entries = new Map<string, unknown>();
  hits = 0;
  misses = 0;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    if (!existsSync(path)) return;
    const buf = readFileSync(path);
    // a run killed while appending leaves a line without its newline: cut it off so the next append starts clean
    const end = buf.lastIndexOf(0x0a) + 1;
    if (end < buf.length) truncateSync(path, end);
    const lines = buf.subarray(0, end).toString('utf8').split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let rec: { key?: unknown; completion?: unknown };
      try {
        rec = JSON.parse(line);
      } catch {
        throw new Error(`${path}:${i + 1}: not a reply-cache line (invalid JSON)`);
      }
      if (typeof rec?.key !== 'string' || rec.completion === undefined) throw new Error(`${path}:${i + 1}: not a reply-cache line (key, completion)`);
      this.entries.set(rec.key, rec.completion);
    });
  }

  /** The key of a request body (its JSON text as sent). */
  static key(body: unknown): string {
    return createHash('sha256').update(JSON.stringify(body)).digest('hex');
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): unknown {
    const v = this.entries.get(key);
    if (v === undefined) this.misses++;
    else this.hits++;
    return v;
  }

  put(key: string, completion: unknown): void {
    if (this.entries.has(key)) return;
    this.entries.set(key, completion);
    appendFileSync(this.path, `${JSON.stringify({ key, completion })}\n`);
  }
}
