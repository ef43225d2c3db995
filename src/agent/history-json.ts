/**
 * The JSON of a history message's content as UTF-8 bytes, computed once per history item. A request body re-sends
 * the whole history every round and the run log writes it again at the end of the episode; with this cache each
 * message (a FHIR response can be hundreds of kB) is serialised and encoded once. Items are checked against their
 * current content, so an item edited in place is serialised afresh.
 */
import { isAscii } from 'node:buffer';
import { asciiJsonString } from '../tasks/pysem.js';
import type { HistoryItem } from '../tasks/types.js';
import { encodeJsonStringOffThread } from './json-encoder.js';

const cache = new WeakMap<HistoryItem, { content: string; bytes: Buffer }>();

/**
 * Make sure `item`'s content bytes are cached, encoding a long content on the worker thread (`json-encoder.ts`) so the
 * event loop stays free meanwhile; `contentJsonBytes` then returns them at once.
 */
export async function prepareContentJson(item: HistoryItem): Promise<void> {
  const c = cache.get(item);
  if (c !== undefined && c.content === item.content) return;
  const content = item.content;
  const bytes = await encodeJsonStringOffThread(content);
  if (bytes !== undefined && item.content === content) cache.set(item, { content, bytes });
}

/** `Buffer.from(JSON.stringify(item.content))`, cached per item. */
export function contentJsonBytes(item: HistoryItem): Buffer {
  const c = cache.get(item);
  if (c !== undefined && c.content === item.content) return c.bytes;
  const bytes = Buffer.from(JSON.stringify(item.content), 'utf8');
  cache.set(item, { content: item.content, bytes });
  return bytes;
}

const ITEM_TAIL = Buffer.from('}');
const prefixes = new Map<string, Buffer>();

/**
 * The bytes of `JSON.stringify({role, content: item.content})` as consecutive parts (for `Buffer.concat` or one
 * write), `role` being the item's role or the one a wire format maps it to.
 */
export function messageJsonParts(item: HistoryItem, role: string = item.role): Buffer[] {
  let p = prefixes.get(role);
  if (p === undefined) {
    p = Buffer.from(`{"role":${JSON.stringify(role)},"content":`, 'utf8');
    prefixes.set(role, p);
  }
  return [p, contentJsonBytes(item), ITEM_TAIL];
}

const asciiCache = new WeakMap<HistoryItem, { content: string; bytes: Buffer }>();

/** `Buffer.from(asciiJsonString(item.content))`, cached per item: the compact bytes themselves when they are ASCII. */
export function contentAsciiJsonBytes(item: HistoryItem): Buffer {
  const bytes = contentJsonBytes(item);
  if (isAscii(bytes) && bytes.indexOf(0x7f) < 0) return bytes;
  const c = asciiCache.get(item);
  if (c !== undefined && c.content === item.content) return c.bytes;
  const ascii = Buffer.from(asciiJsonString(item.content), 'latin1');
  asciiCache.set(item, { content: item.content, bytes: ascii });
  return ascii;
}
