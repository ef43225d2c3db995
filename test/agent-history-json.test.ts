import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentJsonBytes, messageJsonParts } from '../src/agent/history-json.js';
import type { HistoryItem } from '../src/tasks/types.js';

const text = (parts: Buffer[]) => Buffer.concat(parts).toString('utf8');

test('history-json: message JSON bytes equal JSON.stringify, are cached per item and follow in-place edits', () => {
  const item: HistoryItem = { role: 'user', content: 'Here is the response: {\'a\': "b"} \\ \u2019 \u2028 🙂\n' };
  assert.equal(text(messageJsonParts(item)), JSON.stringify(item));
  assert.equal(text(messageJsonParts(item, 'assistant')), JSON.stringify({ role: 'assistant', content: item.content }));
  const first = contentJsonBytes(item);
  assert.equal(contentJsonBytes(item), first, 'the same bytes object: serialised once');
  item.content = 'edited';
  assert.notEqual(contentJsonBytes(item), first);
  assert.equal(text(messageJsonParts(item)), '{"role":"user","content":"edited"}');
});

test('history-json: long contents are encoded on a worker thread to the same bytes, then served from the cache', async () => {
  const { prepareContentJson } = await import('../src/agent/history-json.js');
  const { OFF_THREAD_MIN_CHARS, encodeJsonStringOffThread } = await import('../src/agent/json-encoder.js');
  const long = 'Here is the response from the GET request:\n' + '{\n  "name": "Jos\u00e9 \u2019 \ud83d\ude42",\n  "q": "\\\\ \\"x\\""\n}\n'.repeat(2000);
  assert.ok(long.length >= OFF_THREAD_MIN_CHARS);
  const viaWorker = await encodeJsonStringOffThread(long);
  assert.ok(viaWorker, 'a long string goes to the worker');
  assert.equal(viaWorker!.toString('utf8'), JSON.stringify(long));
  assert.equal(await encodeJsonStringOffThread('short'), undefined, 'a short string is left to the caller');
  const item: HistoryItem = { role: 'user', content: long };
  await prepareContentJson(item);
  const cached = contentJsonBytes(item);
  assert.ok(cached.equals(Buffer.from(JSON.stringify(long), 'utf8')));
  await prepareContentJson(item);
  assert.equal(contentJsonBytes(item), cached, 'prepared once');
  // many at once (an episode wave): every answer reaches its own item
  const items = Array.from({ length: 40 }, (_, i) => ({ role: 'user' as const, content: `${i}:${long}` }));
  await Promise.all(items.map((it) => prepareContentJson(it)));
  for (const it of items) assert.equal(contentJsonBytes(it).toString('utf8'), JSON.stringify(it.content));
});
