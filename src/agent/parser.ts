/**
 * The harness side of the text protocol: the reply parser's harness-shaped view and what Python `requests` does to a
 * URL before sending it. The protocol's strings and parsing rules live in src/protocol/text.ts.
 */
import { cleanReply, getRequestUrl, parseCleaned, splitPost, type ParseOptions } from '../protocol/text.js';
import { pyStrip } from '../tasks/pysem.js';

export {
  GET_ERROR_PREFIX,
  GET_OK_PREFIX,
  PLEASE_FINISH,
  POST_ACCEPTED,
  POST_INVALID,
  cleanReply,
  dropLastCodePoint,
  getErrorReply,
  getOkReply,
} from '../protocol/text.js';
export { pyStrip } from '../tasks/pysem.js';

/** Python `s.lstrip()`: from where `s.strip()` starts to the end. */
export function pyLstrip(s: string): string {
  const t = pyStrip(s);
  return t === '' ? '' : s.slice(s.indexOf(t));
}

/** A reply as the harness acts on it: the GET URL as sent, the POST's first line as written, the FINISH result. */
export type ParsedAction =
  | { kind: 'get'; url: string }
  | { kind: 'post' | 'put'; firstLine: string; body: string }
  | { kind: 'finish'; result: string }
  | { kind: 'invalid' };

/**
 * Classify a raw agent reply exactly as the official loop does (the canonical `Action`: protocol/text `parseAction`;
 * `put` for the `ehrgym` dialect).
 */
export function parseAction(content: string, opts: ParseOptions = {}): ParsedAction {
  const r = cleanReply(content);
  const a = parseCleaned(r, opts);
  if (a.kind === 'get') return { kind: 'get', url: getRequestUrl(a.url) };
  if (a.kind === 'post' || a.kind === 'put') return { kind: a.kind, firstLine: splitPost(r).firstLine, body: a.body };
  if (a.kind === 'finish') return { kind: 'finish', result: a.answer };
  return a;
}

// ---------------------------------------------------------------------------------------------------------------
// What Python `requests` does to a URL before sending it, and the text of its exceptions.

/** Python `repr()` of a str. */
export function pyReprStr(s: string): string {
  // fast path, the common case: printable ASCII without a backslash needs no escape under the quote Python picks
  if (PRINTABLE_ASCII.test(s) && !s.includes('\\')) {
    if (!s.includes("'")) return "'" + s + "'";
    if (!s.includes('"')) return '"' + s + '"';
  }
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (!isPrintable(c)) {
      if (c <= 0xff) out += '\\x' + c.toString(16).padStart(2, '0');
      else if (c <= 0xffff) out += '\\u' + c.toString(16).padStart(4, '0');
      else out += '\\U' + c.toString(16).padStart(8, '0');
    } else out += ch;
  }
  return out + quote;
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Approximation of Python's `str.isprintable()` for the characters a URL can realistically hold. */
function isPrintable(c: number): boolean {
  if (c >= 0x80 && c <= 0xa0) return false; // C1 controls and NBSP
  if (c === 0xad) return false;
  if (c !== 0x20 && pyStrip(String.fromCodePoint(c)) === '') return false; // whitespace other than the space
  if (c >= 0xd800 && c <= 0xdfff) return false;
  if (c === 0xfeff || (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2060 && c <= 0x2064)) return false;
  return true;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const REQUOTE_SAFE = "!#$%&'()*+,/:;=?@[]~";
const ALWAYS_SAFE = /[A-Za-z0-9_.\-~]/;

function quote(s: string, safe: string): string {
  let out = '';
  for (const ch of s) {
    if (ALWAYS_SAFE.test(ch) || safe.includes(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** requests.utils.unquote_unreserved; returns null where requests raises InvalidURL. */
function unquoteUnreserved(uri: string): string | null {
  const parts = uri.split('%');
  for (let i = 1; i < parts.length; i++) {
    const h = parts[i].slice(0, 2);
    if (h.length === 2 && /^[A-Za-z0-9]{2}$/.test(h)) {
      if (!/^[0-9A-Fa-f]{2}$/.test(h)) return null;
      const c = String.fromCharCode(parseInt(h, 16));
      parts[i] = UNRESERVED.test(c) ? c + parts[i].slice(2) : '%' + parts[i];
    } else parts[i] = '%' + parts[i];
  }
  return parts.join('');
}

/** requests.utils.requote_uri: what `requests.get(url)` actually puts on the wire for an http(s) URL. */
export function requoteUri(uri: string): string {
  const unq = unquoteUnreserved(uri);
  if (unq === null) return quote(uri, REQUOTE_SAFE.replace('%', ''));
  return quote(unq, REQUOTE_SAFE);
}

export type PreparedGet = { ok: true; url: string } | { ok: false; error: string };

/**
 * The part of `requests.PreparedRequest.prepare_url` that decides whether a GET can be sent, and the final URL.
 * Errors carry the exact exception text `str(e)` the harness would show.
 */
export function prepareGetUrl(raw: string): PreparedGet {
  const url = pyLstrip(raw);
  if (url.includes(':') && !url.toLowerCase().startsWith('http')) {
    return { ok: false, error: `No connection adapters were found for ${pyReprStr(url)}` };
  }
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/s.exec(url);
  if (!m) {
    return { ok: false, error: `Invalid URL ${pyReprStr(url)}: No scheme supplied. Perhaps you meant https://${url}?` };
  }
  const scheme = m[1].toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') {
    return { ok: false, error: `No connection adapters were found for ${pyReprStr(url)}` };
  }
  const authority = m[2];
  const host = authority.replace(/^.*@/, '').replace(/:\d*$/, '');
  if (!host) return { ok: false, error: `Invalid URL ${pyReprStr(url)}: No host supplied` };
  let rest = m[3];
  if (rest === '' || rest[0] === '?' || rest[0] === '#') rest = '/' + rest;
  return { ok: true, url: requoteUri(`${scheme}://${authority.toLowerCase()}${rest}`) };
}

/** `str(HTTPError)` as raised by `Response.raise_for_status()`. */
export function httpErrorText(status: number, reason: string, url: string): string {
  const kind = status < 500 ? 'Client Error' : 'Server Error';
  return `${status} ${kind}: ${reason} for url: ${url}`;
}
