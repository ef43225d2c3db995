import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentJsonBytes, messageJsonParts } from '../src/agent/history-json.js';
import type { HistoryItem } from '../src/tasks/types.js';

const text = (parts: Buffer[]) => Buffer.concat(parts).toString('utf8');

test('history-json: message JSON bytes equal JSON.stringify, are cached per item and follow in-place edits', () => {
  const item: HistoryItem = { role: 'user', content: "Here is the response: {'a': \"b\"} \\ \u2019 \u2028 🙂\n" };
  assert.equal(text(messageJsonParts(item)), JSON.stringify(item));
  assert.equal(text(messageJsonParts(item, 'assistant')), JSON.stringify({ role: 'assistant', content: item.content }));
  const first = contentJsonBytes(item);
  assert.equal(contentJsonBytes(item), first, 'the same bytes object: serialised once');
  item.content = 'edited';
  assert.notEqual(contentJsonBytes(item), first);
  assert.equal(text(messageJsonParts(item)), '{"role":"user","content":"edited"}');
});
