/**
 * The official reply parser (of the upstream `start_sample`; docs/eval.md), with Python string semantics.
 *
 *   r = content.strip().replace('```tool_code', '').replace('```', '').strip()
 *   GET     → url = r[3:].strip() + '&_format=json'
 *   POST    → payload = json.loads('\n'.join(r.split('\n')[1:]))
 *   FINISH( → result = r[len('FINISH('):-1]
 *   else    → agent invalid action
 */

/** The characters Python's `str.strip()` removes (`str.isspace()`), which differ from JavaScript's `trim()`. */
const PY_WS = new Set<number>([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
  0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

export function isPySpace(code: number): boolean {
  return PY_WS.has(code);
}

/** Python `s.strip()` (no argument). All whitespace characters are in the BMP, so UTF-16 indexing is safe. */
export function pyStrip(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && PY_WS.has(s.charCodeAt(a))) a++;
  while (b > a && PY_WS.has(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Python `s.lstrip()`. */
export function pyLstrip(s: string): string {
  let a = 0;
  while (a < s.length && PY_WS.has(s.charCodeAt(a))) a++;
  return a === 0 ? s : s.slice(a);
}

/** The harness's normalisation of a raw reply. */
export function cleanReply(content: string): string {
  return pyStrip(pyStrip(content).split('```tool_code').join('').split('```').join(''));
}

/** Python `s[:-1]`: drops the last code point (not the last UTF-16 unit). */
export function dropLastCodePoint(s: string): string {
  if (s.length === 0) return s;
  const last = s.charCodeAt(s.length - 1);
  if (last >= 0xdc00 && last <= 0xdfff && s.length >= 2) {
    const prev = s.charCodeAt(s.length - 2);
    if (prev >= 0xd800 && prev <= 0xdbff) return s.slice(0, -2);
  }
  return s.slice(0, -1);
}

export type ParsedAction =
  | { kind: 'get'; url: string }
  | { kind: 'post'; firstLine: string; body: string }
  | { kind: 'finish'; result: string }
  | { kind: 'invalid' };

/** Classify a raw agent reply exactly as the official loop does. */
export function parseAction(content: string): ParsedAction {
  const r = cleanReply(content);
  if (r.startsWith('GET')) return { kind: 'get', url: pyStrip(r.slice(3)) + '&_format=json' };
  if (r.startsWith('POST')) {
    const lines = r.split('\n');
    return { kind: 'post', firstLine: lines[0], body: lines.slice(1).join('\n') };
  }
  if (r.startsWith('FINISH(')) return { kind: 'finish', result: dropLastCodePoint(r.slice('FINISH('.length)) };
  return { kind: 'invalid' };
}

// ---------------------------------------------------------------------------------------------------------------
// The official reply strings (as the upstream `start_sample` writes them), byte-exact.

export const PLEASE_FINISH = 'Please call FINISH if you have got answers for all the questions and finished all the requested tasks';
export const GET_OK_PREFIX = 'Here is the response from the GET request:\n';
export const GET_ERROR_PREFIX = 'Error in sending the GET request: ';
export const POST_ACCEPTED = `POST request accepted and executed successfully. ${PLEASE_FINISH}`;
export const POST_INVALID = 'Invalid POST request';

export function getOkReply(data: string): string {
  return `${GET_OK_PREFIX}${data}. ${PLEASE_FINISH}`;
}
export function getErrorReply(error: string): string {
  return GET_ERROR_PREFIX + error;
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
  if (PY_WS.has(c) && c !== 0x20) return false;
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
  const m = /^([A-Za-z][A-Za-z0-9+.\-]*):\/\/([^/?#]*)(.*)$/s.exec(url);
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
