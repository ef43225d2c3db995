import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pyReprStr } from '../src/agent/parser.js';
import { pyReprJson } from '../src/agent/loop.js';

// Python's repr() of an ASCII str, written out from the language reference (quote choice, then escapes).
function reference(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return quote + out + quote;
}

test('pyReprStr: Python repr of ASCII strings, fast path or not (quote choice, escapes)', () => {
  assert.equal(pyReprStr('abc'), "'abc'");
  assert.equal(pyReprStr("it's"), `"it's"`);
  assert.equal(pyReprStr('say "hi"'), `'say "hi"'`);
  assert.equal(pyReprStr(`it's "x"`), `'it\\'s "x"'`);
  assert.equal(pyReprStr('a\\b'), "'a\\\\b'");
  assert.equal(pyReprStr("a\\'b"), `"a\\\\'b"`);
  assert.equal(pyReprStr(''), "''");
  assert.equal(pyReprStr('caf\u00e9 \u2019'), "'caf\u00e9 \u2019'");
  const alphabet = ['a', 'Z', '0', ' ', "'", '"', '\\', '\n', '\t', '\x01', '\x7f', '~', '{', ':'];
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  for (let i = 0; i < 3000; i++) {
    let s = '';
    for (let k = rnd(12); k > 0; k--) s += alphabet[rnd(alphabet.length)];
    assert.equal(pyReprStr(s), reference(s), JSON.stringify(s));
  }
  assert.equal(pyReprJson({ a: ["x'y", 'p"q', 1, null, true] }), `{'a': ["x'y", 'p"q', 1, None, True]}`);
});
