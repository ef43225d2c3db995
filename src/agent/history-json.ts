/**
 * The JSON of a history message's content as UTF-8 bytes, computed once per history item. A request body re-sends
 * the whole history every round and the run log writes it again at the end of the episode; with this cache each
 * message (a FHIR response can be hundreds of kB) is serialised and encoded once. Items are checked against their
 * current content, so an item edited in place is serialised afresh.
 */
import type { HistoryItem } from '../tasks/types.js';

const cache = new WeakMap<HistoryItem, { content: string; bytes: Buffer }>();

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

/** The bytes of `JSON.stringify(item)`: from the cache when the item is exactly `{role, content}` (strings). */
export function historyItemJsonParts(item: HistoryItem): Buffer[] {
  const keys = Object.keys(item);
  if (keys.length === 2 && keys[0] === 'role' && keys[1] === 'content' && typeof item.role === 'string' && typeof item.content === 'string') {
    return messageJsonParts(item);
  }
  return [Buffer.from(JSON.stringify(item), 'utf8')];
}
