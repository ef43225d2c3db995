/**
 * The FHIR HTTP API over a FhirStore (Hono app; `startFhirServer` listens with @hono/node-server).
 *
 * Routes (all under `/fhir`, optionally prefixed by `/_session/{id}`):
 *   GET  /fhir/metadata                      CapabilityStatement
 *   GET  /fhir/{Type}?params                 search → searchset Bundle (HAPI shape, paging via _getpages)
 *   GET  /fhir?_getpages=…&_getpagesoffset=… next pages
 *   GET  /fhir/{Type}/{id}                   read
 *   POST /fhir/{Type}                        create (201, Location) in the request's session
 *   DELETE /fhir/_session/{id}               drop a session (204)
 *
 * Sessions: `/fhir/_session/{id}/…` (links then use that base) or header `X-Ehrgym-Session: {id}` (links stay on
 * the plain base). Requests naming no session read and write the session `default`; the base is never written.
 * Links use the request's own origin (or X-Forwarded-Host/-Proto when present) + `/fhir`.
 */
import { serve } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FhirError, operationOutcome, type OutcomeIssue } from './errors.js';
import { compact, pretty } from './json.js';
import { parseSearch, type ParsedQuery } from './query.js';
import { R4_RESOURCE_TYPES } from './resource-types.js';
import { GENERIC_PARAMS, PARAM_DOCS, SEARCH_PARAMS, paramsFor } from './search-params.js';
import { DEFAULT_SESSION, SESSION_ID_RE, type FhirStore } from './store.js';
import { strictIssues } from './strict.js';
import type { Resource } from './types.js';

export const FHIR_CONTENT_TYPE = 'application/fhir+json;charset=utf-8';
export const SESSION_HEADER = 'X-Ehrgym-Session';
/** Largest accepted request body (bytes). */
export const MAX_BODY_BYTES = 1024 * 1024;
/** HAPI's default page size. */
export const DEFAULT_PAGE_SIZE = 20;

export interface FhirAppOptions {
  /** Validate POSTed resources as FHIR R4 (422 with an OperationOutcome on failure). Default false (compat). */
  strict?: boolean;
  /** How many `_getpages` searches to remember (oldest forgotten first → 410). Default 10,000. */
  pagingCacheSize?: number;
  /**
   * Budget (bytes) of the cache of pretty-printed base resources used in searchsets; base resources are
   * immutable, so their text can be reused. Oldest entries are evicted first. Default 64 MiB; 0 disables.
   */
  renderCacheChars?: number;
  /**
   * Budget (bytes) of the search response cache: a pretty-printed searchset is kept per (session, base, URL) when
   * the session has written nothing of that type, since the answer then depends on the immutable base only
   * (like HAPI's reuse of identical searches). Oldest first out. Default 64 MiB; 0 disables.
   */
  responseCacheBytes?: number;
}

/** One page of a searchset: where it is served, which matches it holds (`handles[offset, offset + count)`), its links. */
interface SearchPage {
  base: string;
  id: string;
  type: string;
  handles: number[];
  offset: number;
  count: number;
  total: number;
  self: string;
  next?: string;
  prev?: string;
  session: string;
  totalMode?: ParsedQuery['totalMode'];
}

interface PagedSearch {
  resourceType: string;
  pairs: Array<[string, string]>;
  session: string;
}

/**
 * HAPI's `UrlUtil.escapeUrlParam` (Guava `PercentEscaper("-_.*", plusForSpace=false)`): letters, digits and `-_.*`
 * stay, everything else is UTF-8 percent-encoded with uppercase hex (a space is `%20`).
 */
export function hapiEscapeParam(s: string): string {
  return encodeURIComponent(s).replace(/[!'()~]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** Parameters sorted by name (values of one name keep their order), as HAPI's TreeSet of names does. */
function sortPairs(pairs: Array<[string, string]>): Array<[string, string]> {
  let sorted = true;
  for (let i = 1; i < pairs.length && sorted; i++) if (pairs[i - 1][0] > pairs[i][0]) sorted = false;
  if (sorted) return pairs; // already in order (the usual case): the stable sort would keep it as is
  return pairs
    .map((p, i) => [p, i] as const)
    .sort(([a, i], [b, j]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : i - j))
    .map(([p]) => p);
}

/** HAPI's self-link query: sorted names, names and values escaped. */
function hapiQuery(pairs: Array<[string, string]>): string {
  const sorted = sortPairs(pairs);
  let out = '';
  for (let i = 0; i < sorted.length; i++) {
    const [k, v] = sorted[i];
    out += (i ? '&' : '') + escapeParam(k) + '=' + escapeParam(v);
  }
  return out;
}

/** Characters `hapiEscapeParam` leaves as they are. */
const UNRESERVED = /^[A-Za-z0-9\-_.*]*$/;
function escapeParam(s: string): string {
  return UNRESERVED.test(s) ? s : hapiEscapeParam(s);
}

/** A UUID-shaped deterministic id. */
export function uuidFrom(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const BUNDLE_END = Buffer.from(' ]\n}');

const SAFE_ID = /^[A-Za-z0-9\-.]+$/;

const SESSION_HEADER_LC = SESSION_HEADER.toLowerCase();

/**
 * A request header (`name` in lower case). Under @hono/node-server the Node request's own header object is read
 * directly (values of repeated headers joined with `, `, as `Headers.get` does), which spares building a fetch
 * `Headers` per request; otherwise the fetch request's headers.
 */
function header(c: Context, name: string): string | undefined {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming?.headers) {
    const v = incoming.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }
  return c.req.header(name);
}

/** A request as the FHIR handler sees it: the Hono app builds one per HTTP request, in-process transports directly. */
export interface FhirRequest {
  method: string;
  /** Absolute URL (its origin is the one links in responses use, unless X-Forwarded-Host says otherwise). */
  url: string;
  /** A header by lower-case name. */
  header(name: string): string | undefined;
  /** The body's bytes; rejects with a 413 FhirError beyond `limit` bytes. */
  body(limit: number): Promise<Uint8Array>;
}

/** The handler's answer: status, body (none for 204) and headers (`content-type` always set), names in lower case. */
export interface FhirReply {
  status: number;
  body: string | Uint8Array;
  headers: Record<string, string>;
}

/** Answers one FHIR request; never rejects (errors are OperationOutcome replies). */
export type FhirHandler = (req: FhirRequest) => Promise<FhirReply>;

function respond(status: number, body: string | Uint8Array, headers: Record<string, string> = {}): FhirReply {
  return { status, body: status === 204 ? '' : body, headers: { 'content-type': FHIR_CONTENT_TYPE, ...headers } };
}

function errorResponse(err: FhirError, prettyPrint = true): FhirReply {
  const o = operationOutcome(err);
  return respond(err.status, prettyPrint ? pretty(o) : compact(o), err.headers);
}

/** A reply as a fetch Response. */
function toFetchResponse(r: FhirReply): Response {
  return new Response(r.status === 204 ? null : (r.body as BodyInit), { status: r.status, headers: r.headers });
}

/** Build the Hono app serving `store` (frozen here if it is not already). */
export function createFhirApp(store: FhirStore, opts: FhirAppOptions = {}): Hono {
  return honoApp(createFhirHandler(store, opts));
}

/** The Hono app over a handler. */
export function honoApp(handle: FhirHandler): Hono {
  const app = new Hono();
  app.all('*', async (c) =>
    toFetchResponse(
      await handle({
        method: c.req.method,
        url: c.req.url,
        header: (name) => header(c, name),
        body: (limit) => readLimited(c.req.raw, limit),
      }),
    ),
  );
  return app;
}

/** The FHIR API over `store` (frozen here if it is not already) as a handler, for the Hono app and in-process use. */
export function createFhirHandler(store: FhirStore, opts: FhirAppOptions = {}): FhirHandler {
  store.freeze();
  const strict = opts.strict ?? false;
  const cacheSize = opts.pagingCacheSize ?? 10_000;
  const paged = new Map<string, PagedSearch>();
  const capabilityCache = new Map<string, string>();
  const renderBudget = opts.renderCacheChars ?? 64 * 1024 * 1024;
  const rendered = new Map<string, Array<Buffer | undefined>>();
  const renderOrder: Array<[Array<Buffer | undefined>, number] | undefined> = [];
  let renderHead = 0;
  let renderBytes = 0;
  const responseBudget = opts.responseCacheBytes ?? 64 * 1024 * 1024;
  const responses = new Map<string, { body: Uint8Array | string; paging?: [string, PagedSearch] }>();
  let responseBytes = 0;
  const cacheResponse = (key: string, v: { body: Uint8Array | string; paging?: [string, PagedSearch] }) => {
    const size = typeof v.body === 'string' ? v.body.length : v.body.byteLength;
    if (size > responseBudget / 16) return;
    responses.set(key, v);
    responseBytes += size + key.length;
    while (responseBytes > responseBudget) {
      const [k, old] = responses.entries().next().value as [string, { body: Uint8Array | string }];
      responses.delete(k);
      responseBytes -= (typeof old.body === 'string' ? old.body.length : old.body.byteLength) + k.length;
    }
  };
  const ENTRY_MID = '",\n    "resource": ';
  const ENTRY_END = ',\n    "search": {\n      "mode": "match"\n    }\n  }';

  /**
   * UTF-8 bytes of a searchset entry from the id in its fullUrl on: `1234",\n    "resource": {…},\n    "search": …}`.
   * Base resources are immutable, so their bytes are cached (bounded, oldest evicted first).
   */
  const makeTail = (type: string, h: number, session: string): Buffer => {
    const id = store.idOf(type, h, session);
    const idText = SAFE_ID.test(id) ? id : JSON.stringify(id).slice(1, -1);
    return Buffer.from(idText + ENTRY_MID + pretty(store.resourceOf(type, h, session), 2) + ENTRY_END);
  };
  const entryTail = (type: string, h: number, session: string): Buffer => {
    if (h < 0 || renderBudget === 0) return makeTail(type, h, session);
    // One slot per base position of the type (an array lookup per entry; the texts themselves stay bounded).
    let m = rendered.get(type);
    if (!m) {
      // Filled element by element so V8 keeps fast (not dictionary) elements for large types.
      m = [];
      for (let i = store.count(type); i > 0; i--) m.push(undefined);
      rendered.set(type, m);
    }
    let b = m[h];
    if (b !== undefined) return b;
    b = makeTail(type, h, session);
    m[h] = b;
    renderOrder.push([m, h]);
    renderBytes += b.length;
    while (renderBytes > renderBudget && renderHead < renderOrder.length) {
      const [om, oh] = renderOrder[renderHead]!;
      renderOrder[renderHead++] = undefined;
      const old = om[oh];
      if (old !== undefined) {
        renderBytes -= old.length;
        om[oh] = undefined;
      }
    }
    if (renderHead > 4096 && renderHead * 2 > renderOrder.length) {
      renderOrder.splice(0, renderHead);
      renderHead = 0;
    }
    return b;
  };

  // Search ids (a SHA-256 of the query) and the constant bytes around entries, remembered (bounded) per key.
  const searchIds = new Map<string, string>();
  const searchId = (session: string, type: string, pairs: Array<[string, string]>): string => {
    const keyPairs = sortPairs(pairs).filter(([k]) => k !== '_format' && k !== '_pretty');
    const key = `${session}\u0000${type}\u0000${JSON.stringify(keyPairs)}`;
    let id = searchIds.get(key);
    if (id === undefined) {
      id = uuidFrom(key);
      if (searchIds.size >= 4096) searchIds.clear();
      searchIds.set(key, id);
    }
    return id;
  };
  const entryPrefixes = new Map<string, [Buffer, Buffer]>();
  /** `{\n    "fullUrl": "{base}/{type}/` and the same preceded by `, `. */
  const entryPrefix = (base: string, type: string): [Buffer, Buffer] => {
    const key = `${base}/${type}/`;
    let p = entryPrefixes.get(key);
    if (p === undefined) {
      const first = Buffer.from(`{\n    "fullUrl": ${JSON.stringify(key).slice(0, -1)}`);
      p = [first, Buffer.concat([Buffer.from(', '), first])];
      if (entryPrefixes.size >= 1024) entryPrefixes.clear();
      entryPrefixes.set(key, p);
    }
    return p;
  };

  const remember = (id: string, p: PagedSearch) => {
    if (paged.has(id)) paged.delete(id);
    paged.set(id, p);
    if (paged.size > cacheSize) paged.delete(paged.keys().next().value as string);
  };

  const handler: FhirHandler = async (req) => {
    try {
      return await handle(req);
    } catch (e) {
      if (e instanceof FhirError) return errorResponse(e);
      const msg = e instanceof Error ? e.message : String(e);
      return errorResponse(new FhirError(500, `Internal error: ${msg}`));
    }
  };

  async function handle(c: FhirRequest): Promise<FhirReply> {
    const url = new URL(c.url);
    const method = c.method;
    const path = url.pathname;
    if (path !== '/fhir' && !path.startsWith('/fhir/')) throw new FhirError(404, `Not found: ${path} (the FHIR base is /fhir)`);
    let segs: string[] = [];
    for (const s of path.slice(5).split('/')) {
      if (s === '') continue;
      if (!s.includes('%')) {
        segs.push(s);
        continue;
      }
      try {
        segs.push(decodeURIComponent(s));
      } catch {
        throw new FhirError(400, `Malformed URL path segment "${s}"`);
      }
    }
    const fwdHost = c.header('x-forwarded-host');
    const fwdProto = c.header('x-forwarded-proto');
    const origin = fwdHost ? `${fwdProto ?? url.protocol.replace(':', '')}://${fwdHost}` : url.origin;
    let base = `${origin}/fhir`;
    let session = DEFAULT_SESSION;
    if (segs[0] === '_session') {
      const sid = segs[1];
      if (sid === undefined || !SESSION_ID_RE.test(sid)) {
        throw new FhirError(400, `Invalid session id "${sid ?? ''}" (expected [A-Za-z0-9_.-]{1,64})`);
      }
      session = sid;
      base = `${origin}/fhir/_session/${sid}`;
      segs = segs.slice(2);
      if (segs.length === 0 && method === 'DELETE') {
        store.dropSession(sid);
        return respond(204, '');
      }
    } else {
      const h = c.header(SESSION_HEADER_LC);
      if (h !== undefined && h !== '') {
        if (!SESSION_ID_RE.test(h)) throw new FhirError(400, `Invalid ${SESSION_HEADER} header "${h}" (expected [A-Za-z0-9_.-]{1,64})`);
        session = h;
      }
    }
    const pairs = [...url.searchParams] as Array<[string, string]>;
    const prettyParam = url.searchParams.get('_pretty');
    const prettyPrint = prettyParam !== 'false';
    const out = (status: number, v: unknown, headers?: Record<string, string>) => respond(status, prettyPrint ? pretty(v) : compact(v), headers);

    if (segs.length === 0) {
      if (method !== 'GET') throw methodNotAllowed(method, 'GET');
      if (url.searchParams.has('_getpages')) return getPage(url, base, session, out, prettyPrint);
      throw new FhirError(
        400,
        'This is the base URL of the FHIR server. Unable to handle this request, as it does not contain a resource type or operation name.',
      );
    }
    if (segs.length === 1 && segs[0] === 'metadata') {
      if (method !== 'GET') throw methodNotAllowed(method, 'GET');
      let body = capabilityCache.get(base + prettyPrint);
      if (!body) {
        const cs = capabilityStatement(store, strict);
        body = prettyPrint ? pretty(cs) : compact(cs);
        capabilityCache.set(base + prettyPrint, body);
      }
      return respond(200, body);
    }
    const type = segs[0];
    if (!R4_RESOURCE_TYPES.has(type)) {
      throw new FhirError(404, `Unknown resource type '${type}' - Server knows how to handle: [${[...R4_RESOURCE_TYPES].sort().join(', ')}]`);
    }
    if (segs.length === 1) {
      if (method === 'GET') {
        const cacheKey =
          responseBudget > 0 && prettyPrint && !store.sessionHasType(session, type) ? `${session}\u0000${base}\u0000${type}\u0000${url.search}` : undefined;
        const hit = cacheKey === undefined ? undefined : responses.get(cacheKey);
        if (hit) {
          if (hit.paging) remember(hit.paging[0], hit.paging[1]);
          return respond(200, hit.body);
        }
        return search(type, pairs, base, session, out, prettyPrint, cacheKey);
      }
      if (method === 'POST') return create(c, type, base, session, out);
      throw methodNotAllowed(method, 'GET, POST');
    }
    if (segs.length === 2) {
      if (method !== 'GET') throw methodNotAllowed(method, 'GET');
      const r = store.read(type, segs[1], session);
      if (!r) throw new FhirError(404, `Resource ${type}/${segs[1]} is not known`);
      const headers: Record<string, string> = {};
      if (typeof r.meta?.versionId === 'string') headers.etag = `W/"${r.meta.versionId}"`;
      return out(200, r, headers);
    }
    throw new FhirError(404, `Not found: ${path}`);
  }

  function methodNotAllowed(method: string, allow: string): FhirError {
    return new FhirError(405, `HTTP method ${method} is not allowed here (allowed: ${allow})`, undefined, { allow });
  }

  function search(
    type: string,
    pairs: Array<[string, string]>,
    base: string,
    session: string,
    out: (s: number, v: unknown) => FhirReply,
    prettyPrint: boolean,
    cacheKey?: string,
  ): FhirReply {
    const q = parseSearch(type, pairs);
    const result = store.search(type, q, session);
    const count = q.summaryCount ? 0 : (q.count ?? DEFAULT_PAGE_SIZE);
    const selfUrl = `${base}/${type}${pairs.length ? '?' : ''}${hapiQuery(pairs)}`;
    const bundleId = searchId(session, type, pairs);
    const hasNext = count > 0 && result.total > count;
    const paging: PagedSearch = { resourceType: type, pairs, session };
    if (hasNext) remember(bundleId, paging);
    const next = hasNext ? nextUrl(base, bundleId, count, count, pairs) : undefined;
    const page: SearchPage = {
      base,
      id: bundleId,
      type,
      handles: result.handles,
      offset: 0,
      count,
      total: result.total,
      self: selfUrl,
      next,
      session,
      totalMode: q.totalMode,
    };
    if (prettyPrint) {
      const body = bundleText(page);
      if (cacheKey !== undefined) cacheResponse(cacheKey, { body, ...(hasNext ? { paging: [bundleId, paging] as [string, PagedSearch] } : {}) });
      return respond(200, body);
    }
    return out(200, bundle(page));
  }

  /** HAPI's paging link: `_format` echoed (first value, spaces back to `+`), `_pretty=true` when pretty-printing. */
  function nextUrl(base: string, id: string, offset: number, count: number, pairs: Array<[string, string]>): string {
    const fmt = pairs.find(([k]) => k === '_format');
    const prettyPrint = pairs.find(([k]) => k === '_pretty')?.[1] !== 'false';
    return `${base}?_getpages=${hapiEscapeParam(id)}&_getpagesoffset=${offset}&_count=${count}${fmt ? `&_format=${hapiEscapeParam(fmt[1].replace(/ /g, '+'))}` : ''}${prettyPrint ? '&_pretty=true' : ''}&_bundletype=searchset`;
  }

  function bundle({ base, id, type, handles, offset, count, total, self, next, prev, session, totalMode }: SearchPage): Record<string, unknown> {
    const b: Record<string, unknown> = { resourceType: 'Bundle', id, meta: { lastUpdated: store.clock }, type: 'searchset' };
    if (totalMode === 'accurate' || (!next && totalMode !== 'none')) b.total = total;
    const link = [{ relation: 'self', url: self }];
    if (next) link.push({ relation: 'next', url: next });
    if (prev) link.push({ relation: 'previous', url: prev });
    b.link = link;
    const end = Math.min(handles.length, offset + count);
    if (end > offset) {
      const entry = new Array(end - offset);
      for (let i = offset; i < end; i++) {
        const h = handles[i];
        entry[i - offset] = {
          fullUrl: `${base}/${type}/${store.idOf(type, h, session)}`,
          resource: store.resourceOf(type, h, session),
          search: { mode: 'match' },
        };
      }
      b.entry = entry;
    }
    return b;
  }

  /** Same bytes as `pretty(bundle(...))` in UTF-8, assembled from cached entry bytes. */
  function bundleText(page: SearchPage): string | Uint8Array {
    const { base, type, handles, offset, count, session } = page;
    // The bundle without entries (count 0), pretty-printed; the entries are spliced in from cached bytes.
    const head = pretty(bundle({ ...page, count: 0 }));
    const end = Math.min(handles.length, offset + count);
    if (end <= offset) return head;
    const n = end - offset;
    const [first, later] = entryPrefix(base, type);
    const parts: Buffer[] = new Array(2 * n + 2);
    parts[0] = Buffer.from(head.slice(0, -2) + ',\n  "entry": [ ');
    let size = parts[0].length + first.length + (n - 1) * later.length + BUNDLE_END.length;
    for (let i = 0; i < n; i++) {
      const t = entryTail(type, handles[offset + i], session);
      parts[2 * i + 1] = i === 0 ? first : later;
      parts[2 * i + 2] = t;
      size += t.length;
    }
    parts[2 * n + 1] = BUNDLE_END;
    return Buffer.concat(parts, size);
  }

  function getPage(url: URL, base: string, session: string, out: (s: number, v: unknown) => FhirReply, prettyPrint: boolean): FhirReply {
    const sp = url.searchParams;
    const id = sp.get('_getpages') ?? '';
    const p = paged.get(id);
    if (!p || p.session !== session) {
      throw new FhirError(410, `Search ID "${id}" does not exist and may have expired`);
    }
    const num = (name: string, dflt: number) => {
      const v = sp.get(name);
      if (v === null) return dflt;
      if (!/^\d{1,9}$/.test(v)) throw new FhirError(400, `Invalid ${name} value: "${v}"`);
      return Number(v);
    };
    const q = parseSearch(p.resourceType, p.pairs);
    const offset = num('_getpagesoffset', 0);
    const count = num('_count', q.count ?? DEFAULT_PAGE_SIZE);
    const result = store.search(p.resourceType, q, session);
    const self = `${base}?${hapiQuery([...sp] as Array<[string, string]>)}`;
    const hasNext = count > 0 && result.total > offset + count;
    const next = hasNext ? nextUrl(base, id, offset + count, count, p.pairs) : undefined;
    const prev = offset > 0 ? nextUrl(base, id, Math.max(0, offset - count), count, p.pairs) : undefined;
    const page: SearchPage = {
      base,
      id,
      type: p.resourceType,
      handles: result.handles,
      offset,
      count,
      total: result.total,
      self,
      next,
      prev,
      session,
      totalMode: q.totalMode,
    };
    return prettyPrint ? respond(200, bundleText(page)) : out(200, bundle(page));
  }

  async function create(
    c: FhirRequest,
    type: string,
    base: string,
    session: string,
    out: (s: number, v: unknown, h?: Record<string, string>) => FhirReply,
  ): Promise<FhirReply> {
    const declared = Number(c.header('content-length') ?? '0');
    if (declared > MAX_BODY_BYTES) throw new FhirError(413, `Request body too large (limit ${MAX_BODY_BYTES} bytes)`);
    const buf = await c.body(MAX_BODY_BYTES);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
    } catch {
      throw new FhirError(400, 'Request body is not valid UTF-8');
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new FhirError(400, `Failed to parse request body as JSON resource: ${(e as Error).message}`);
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new FhirError(400, 'Request body must be a JSON object (a FHIR resource)');
    const r = body as Resource;
    if (r.resourceType !== type) {
      throw new FhirError(400, `Resource type in body (${JSON.stringify(r.resourceType ?? null)}) does not match the URL (${type})`);
    }
    if (strict) {
      const issues: OutcomeIssue[] = strictIssues(r);
      if (issues.length) throw new FhirError(422, `Resource failed FHIR R4 validation (${issues.length} issues)`, issues);
    }
    const stored = store.create(r, session);
    const loc = `${base}/${type}/${stored.id}/_history/1`;
    return out(201, stored, { location: loc, 'content-location': loc, etag: 'W/"1"' });
  }

  return handler;
}

async function readLimited(req: Request, limit: number): Promise<Uint8Array> {
  if (!req.body) return new Uint8Array();
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new FhirError(413, `Request body too large (limit ${limit} bytes)`);
    }
    chunks.push(value);
  }
  const buf = new Uint8Array(size);
  let o = 0;
  for (const ch of chunks) {
    buf.set(ch, o);
    o += ch.byteLength;
  }
  return buf;
}

/** The CapabilityStatement: exactly the interactions and search parameters this server supports. */
export function capabilityStatement(store: FhirStore, strict: boolean): Record<string, unknown> {
  const kindType: Record<string, string> = { id: 'token', reference: 'reference', token: 'token', string: 'string', date: 'date' };
  const resource = [...R4_RESOURCE_TYPES].sort().map((type) => {
    const defs = paramsFor(type);
    const docs = PARAM_DOCS[type] ?? {};
    return {
      type,
      interaction: [{ code: 'read' }, { code: 'search-type' }, { code: 'create' }],
      versioning: 'no-version',
      searchParam: Object.entries(defs)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([name, d]) => ({
          name,
          type: kindType[d.kind],
          ...(docs[name] ? { documentation: docs[name] } : {}),
        })),
    };
  });
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: store.clock,
    publisher: 'ehrgym',
    kind: 'instance',
    software: { name: 'ehrgym FHIR server' },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        documentation: `Search results: _count (default ${DEFAULT_PAGE_SIZE}), _sort on date parameters (prefix - for descending), _summary=count, paging via _getpages. Writes are kept per session; ${strict ? 'strict FHIR R4 validation' : 'compat mode: bodies stored as sent'}.`,
        resource,
      },
    ],
  };
}

export interface StartedFhirServer {
  /** Base URL with trailing slash, e.g. `http://127.0.0.1:41234/fhir/`. */
  url: string;
  port: number;
  host: string;
  app: Hono;
  close(): Promise<void>;
}

/** Listen on `host` (default 127.0.0.1) and `port` (default 0 = any free port). */
export async function startFhirServer(store: FhirStore, opts: FhirAppOptions & { host?: string; port?: number } = {}): Promise<StartedFhirServer> {
  const { host = '127.0.0.1', port, ...appOpts } = opts;
  const app = createFhirApp(store, appOpts);
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: host, port: port ?? 0 }, (info: AddressInfo) => {
      const h = host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${h}:${info.port}/fhir/`,
        port: info.port,
        host,
        app,
        close: () =>
          new Promise<void>((res) => {
            const s = server as unknown as { closeAllConnections?: () => void; close(cb: () => void): void };
            s.close(() => res());
            s.closeAllConnections?.();
          }),
      });
    });
    server.on('error', reject);
  });
}

export { GENERIC_PARAMS, SEARCH_PARAMS };
