/**
 * Token estimates: the memoized prefix split (`messageTokens`) counts exactly what one scan of the whole text counts,
 * on real first turns (the official prompt for tasks of every family) and on texts built to break a careless split.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { estimateChatTokens, estimateTextTokens, exceedsTokens, messageTokens } from '../src/factory/tokens.js';
import { renderPrompt } from '../src/agent/prompt.js';
import { loadTaskSet } from '../src/tasks/loader.js';

test('messageTokens = estimateTextTokens on the official prompts of every v2 task, with and without a limit', () => {
  const tasks = loadTaskSet('medagentbench-v2').tasks;
  assert.ok(tasks.length >= 300);
  const bad: string[] = [];
  for (const t of tasks) {
    const text = renderPrompt(t);
    assert.ok(text.length > 4096);
    const whole = estimateTextTokens(text);
    // twice: the second call is answered from the memoized prefix
    for (let k = 0; k < 2; k++) if (messageTokens(text) !== whole) bad.push(`${t.id}: ${messageTokens(text)} vs ${whole}`);
    for (const limit of [100, whole - 1, whole, whole + 1]) {
      if (messageTokens(text, limit) > limit !== whole > limit) bad.push(`${t.id} limit ${limit}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('messageTokens = estimateTextTokens where a split could merge or cut runs', () => {
  const body = 'word '.repeat(600);
  const texts = [
    `${body}\n\nContext: x`, // split before a letter after a blank line
    `${body}\n\n\n   Context`, // a longer whitespace run: no split inside it
    `${body}\n\n Context`, // blank line then a single space before a word
    `${body}\n\n`, // blank line at the end
    `${body}\n\n12345 67`, // digits after the split
    `${body}\n\n{"a": [1, 2]}`, // punctuation after the split
    `${body}\n\nnaïve café`, // non-ASCII letters after the split
    `${'{"k": "v"}, '.repeat(300)}\n\n}}`, // punctuation on both sides
    `${body}\n\n${body}\n\nQuestion: last`, // two blank lines: the last one is the split
    'short\n\ntext',
  ];
  for (const text of texts) {
    const whole = estimateTextTokens(text);
    assert.equal(messageTokens(text), whole, JSON.stringify(text.slice(-30)));
    assert.equal(messageTokens(text), whole, 'memoized');
  }
});

test('conversation estimates use the same counts', () => {
  const t = loadTaskSet('medagentbench-v2').tasks[0]!;
  const messages = [
    { role: 'user' as const, content: renderPrompt(t) },
    { role: 'assistant' as const, content: 'FINISH(["S6534835"])' },
  ];
  const want = 4 + messages.reduce((a, m) => a + 5 + estimateTextTokens(m.content), 0);
  assert.equal(exceedsTokens(messages, want), false);
  assert.equal(exceedsTokens([...messages], want - 1), true);
  assert.equal(estimateChatTokens([...messages]), want);
});
