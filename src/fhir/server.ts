/**
 * The FHIR HTTP API over a FhirStore. One routing table (`ROUTES` below) is served two ways: by a Hono app
 * (`createFhirApp`; `startFhirServer` listens with @hono/node-server) with Hono's body-limit middleware, and by an
 * in-process handler (`createFhirHandler`) that matches the same table with Hono's TrieRouter without building fetch
 * Requests and Responses (the eval harness's transport). Both give identical replies.
 *
 * Routes (all under `/fhir`, optionally prefixed by `/_session/{id}`):
 *   GET  /fhir/metadata                      CapabilityStatement
 *   GET  /fhir/{Type}?params                 search → searchset Bundle (HAPI shape, paging via _getpages)
 *   GET  /fhir?_getpages=…&_getpagesoffset=… next pages
 *   GET  /fhir/{Type}/{id}                   read
 *   POST /fhir/{Type}                        create (201, Location) in the request's session
 *   PUT  /fhir/{Type}/{id}                   update an existing resource (200, new versionId) in the request's session
 *   DELETE /fhir/_session/{id}               drop a session (204)
 *
 * Sessions: `/fhir/_session/{id}/…` (links then use that base) or header `X-Ehrgym-Session: {id}` (links stay on
 * the plain base). Requests naming no session read the session `default` and may not write (unless
 * `writableDefault`); the base is never written. Links use the request's own origin (or X-Forwarded-Host/-Proto
 * when `trustForwarded`) + `/fhir`.
 */
import { serve } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { TrieRouter } from 'hono/router/trie-router';
import { LRUCache } from 'lru-cache';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FhirError, operationOutcome, type OutcomeIssue } from './errors.js';
import { compact, jsonDepth, pretty } from './json.js';
import { closeServer, readBodyLimited } from './node-http.js';
import { countParam, MAX_PAGE_SIZE, parseSearch, type ParsedQuery } from './query.js';
import { R4_RESOURCE_TYPES } from './resource-types.js';
import { GENERIC_PARAMS, PARAM_DOCS, SEARCH_PARAMS, paramsFor } from './search-params.js';
import { DEFAULT_SESSION, SESSION_ID_RE, type FhirStore } from './store.js';
import { strictIssues } from './strict.js';
import { OFFICIAL_API_BASE, type Resource } from './types.js';

export const FHIR_CONTENT_TYPE = 'application/fhir+json;charset=utf-8';
export const SESSION_HEADER = 'X-Ehrgym-Session';
/** Largest accepted request body (bytes): 413 beyond. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Deepest nesting of objects and arrays accepted in a request body: 400 beyond. */
export const MAX_JSON_DEPTH = 100;
/** HAPI's default page size. */
export const DEFAULT_PAGE_SIZE = 20;
export { MAX_PAGE_SIZE };
/**
 * HAPI's search sync size (`SearchCoordinatorSvcImpl.DEFAULT_SYNC_SIZE`): HAPI answers the first page once the first
 * 250 matches are stored, while the search is still loading, so its size is not known yet. A first page holding
 * exactly `_count` (> 250) matches therefore carries no `total` and a `next` link (the official server's
 * `Patient?_count=500`); the next page is empty and carries the total.
 */
export const HAPI_SYNC_SIZE = 250;
/**
 * Pages with more entries than STREAM_ENTRIES are rendered (and sent) in chunks of CHUNK_ENTRIES, yielding to other
 * requests between chunks; smaller pages (≤ ~1.5 MB) are rendered at once and can be cached.
 */
export const STREAM_ENTRIES = 1000;
export const CHUNK_ENTRIES = 250;
/** Base positions per block of the entry-bytes cache. */
const RENDER_BLOCK = 256;

interface RenderBlock {
  slots: Array<Buffer | undefined>;
  bytes: number;
}

export interface FhirAppOptions {
  /** Validate POSTed resources as FHIR R4 (422 with an OperationOutcome on failure). Default false (compat). */
  strict?: boolean;
  /** How many `_getpages` searches to remember (least recently used forgotten first → 410). Default 10,000. */
  pagingCacheSize?: number;
  /**
   * Budget (bytes) of the cache of pretty-printed base resources used in searchsets; base resources are
   * immutable, so their text can be reused. Least recently used first out. Default 64 MiB; 0 disables.
   */
  renderCacheChars?: number;
  /**
   * Budget (bytes) of the search response cache: a pretty-printed searchset is kept per (type, query string) when
   * the session has written nothing of that type, since the answer then depends on the immutable base only (like
   * HAPI's reuse of identical searches); the base URL and bundle id are spliced in per request. Least recently used
   * first out; one response at most 1/16 of it. Default 64 MiB; 0 disables.
   */
  responseCacheBytes?: number;
  /** Print links on `X-Forwarded-Host`/`-Proto` when a request sends them (behind a proxy you trust). Default false. */
  trustForwarded?: boolean;
  /** Let requests without a session write into the shared session `default`. Default false (read-only). */
  writableDefault?: boolean;
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

const SAFE_ID = /^[A-Za-z0-9\-.]+$/;
const SESSION_HEADER_LC = SESSION_HEADER.toLowerCase();
const BUNDLE_END = Buffer.from(' ]\n}');
const COMPACT_END = Buffer.from(']}');
const ENTRY_MID = '",\n    "resource": ';
const ENTRY_END = ',\n    "search": {\n      "mode": "match"\n    }\n  }';
const COMPACT_ENTRY_END = ',"search":{"mode":"match"}}';
const HOST_RE = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;
/** Methods that never write. */
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Stand-ins for the base URL and the bundle id in cached responses (letters, digits and `-`, so JSON and URL
 * escaping leave them as they are); a request whose query contains the common prefix is not cached.
 */
const MARK_PREFIX = 'zz-ehrgym-';
const BASE_MARK = `${MARK_PREFIX}base-5f0c2e7a-zz`;
const ID_MARK = `${MARK_PREFIX}id-5f0c2e7a-zz`;

/** A request as the FHIR handler sees it: the Hono app builds one per HTTP request, in-process transports directly. */
export interface FhirRequest {
  method: string;
  /** Absolute URL (its origin is the one links in responses use, unless trusted X-Forwarded-Host says otherwise). */
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

/** Answers one FHIR request; never rejects on a well-formed URL (errors are OperationOutcome replies). */
export type FhirHandler = (req: FhirRequest) => Promise<FhirReply>;

/** A reply whose body is produced chunk by chunk (large searchsets): streamed over HTTP, joined in-process. */
interface StreamedReply {
  status: number;
  headers: Record<string, string>;
  chunks: () => AsyncGenerator<Uint8Array>;
}

type Reply = FhirReply | StreamedReply;

/** What a route sees: the request, its session and base, its decoded path parameters. */
interface Call {
  req: FhirRequest;
  method: string;
  url: URL;
  type?: string;
  id?: string;
  session: string;
  /** Whether the request named its session (path prefix or header). */
  named: boolean;
  base: string;
  prettyPrint: boolean;
}

type RouteFn = (call: Call) => Reply | Promise<Reply>;

function respond(status: number, body: string | Uint8Array, headers: Record<string, string> = {}): FhirReply {
  return { status, body: status === 204 ? '' : body, headers: { 'content-type': FHIR_CONTENT_TYPE, ...headers } };
}

function errorReply(e: unknown): FhirReply {
  const err = e instanceof FhirError ? e : new FhirError(500, `Internal error: ${e instanceof Error ? e.message : String(e)}`);
  return respond(err.status, pretty(operationOutcome(err)), err.headers);
}

/** A reply as a fetch Response (a streamed reply becomes a pull-driven ReadableStream). */
function toFetchResponse(r: Reply): Response {
  if ('chunks' in r) {
    const it = r.chunks();
    const stream = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        const { value, done } = await it.next();
        if (done) ctrl.close();
        else ctrl.enqueue(value);
      },
      async cancel() {
        await it.return(undefined);
      },
    });
    return new Response(stream, { status: r.status, headers: r.headers });
  }
  return new Response(r.status === 204 ? null : (r.body as BodyInit), { status: r.status, headers: r.headers });
}

/** A streamed reply joined into one body (in-process). */
async function collect(r: Reply): Promise<FhirReply> {
  if (!('chunks' in r)) return r;
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const c of r.chunks()) {
    parts.push(c);
    size += c.byteLength;
  }
  return { status: r.status, body: Buffer.concat(parts, size), headers: r.headers };
}

/** `pathname` with runs of `/` collapsed and a trailing `/` dropped (`/fhir//Patient/` is `/fhir/Patient`). */
export function normalisePath(pathname: string): string {
  let p = pathname;
  if (p.includes('//')) p = p.replace(/\/{2,}/g, '/');
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

/** 400 unless every segment of `path` percent-decodes. */
function checkSegments(path: string): void {
  if (!path.includes('%')) return;
  for (const s of path.split('/')) {
    if (!s.includes('%')) continue;
    try {
      decodeURIComponent(s);
    } catch {
      throw new FhirError(400, `Malformed URL path segment "${s}"`);
    }
  }
}

function decodeParam(v: string | undefined): string | undefined {
  return v === undefined || !v.includes('%') ? v : decodeURIComponent(v);
}

function notFound(url: URL): FhirError {
  const path = url.pathname;
  if (path !== '/fhir' && !path.startsWith('/fhir/')) return new FhirError(404, `Not found: ${path} (the FHIR base is /fhir)`);
  checkSegments(path);
  return new FhirError(404, `Not found: ${path}`);
}

function methodNotAllowed(method: string, allow: string): FhirError {
  return new FhirError(405, `HTTP method ${method} is not allowed here (allowed: ${allow})`, undefined, { allow });
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

interface CachedSearch {
  /** The text split at the bundle id, each piece split at the base URL. */
  pieces: string[][];
  size: number;
  hasNext: boolean;
  /** The bytes for requests without a session on OFFICIAL_BASE (the MedAgentBench api_base), once asked for. */
  official?: { body: Buffer; id: string };
}

/** The advertised MedAgentBench base: cached searchsets keep their final bytes for it (a constant, not a header). */
const OFFICIAL_BASE = OFFICIAL_API_BASE.slice(0, -1);

/** Split rendered text at ID_MARK, then each piece at BASE_MARK. */
function template(text: string): { pieces: string[][]; size: number } {
  return { pieces: text.split(ID_MARK).map((p) => p.split(BASE_MARK)), size: 2 * text.length };
}

/**
 * The FHIR API over one store: route functions, caches and the routing table. `app` serves it over Hono, `handle`
 * in-process.
 */
class FhirApi {
  private readonly strict: boolean;
  private readonly trustForwarded: boolean;
  private readonly writableDefault: boolean;
  /** `_getpages` searches by bundle id. */
  private readonly paged: LRUCache<string, PagedSearch>;
  /**
   * Pretty-printed searchset entry bytes of base resources in blocks of RENDER_BLOCK consecutive base positions of a
   * type (one LRU entry per block, so a page costs a few cache operations rather than one per entry).
   */
  private readonly rendered?: LRUCache<number, RenderBlock>;
  /** Whole pretty-printed searchsets (base URL and bundle id spliced in per request), by type and query string. */
  private readonly responses?: LRUCache<string, CachedSearch>;
  /** The CapabilityStatement's text (it names no base URL), pretty and compact. */
  private readonly capability = new LRUCache<string, string>({ max: 2 });
  private readonly typeIndex = new Map<string, number>();
  private readonly router = new TrieRouter<RouteFn>();
  readonly app: Hono;

  constructor(
    private readonly store: FhirStore,
    opts: FhirAppOptions,
  ) {
    store.freeze();
    this.strict = opts.strict ?? false;
    this.trustForwarded = opts.trustForwarded ?? false;
    this.writableDefault = opts.writableDefault ?? false;
    this.paged = new LRUCache({ max: Math.max(1, opts.pagingCacheSize ?? 10_000) });
    const renderBudget = opts.renderCacheChars ?? 64 * 1024 * 1024;
    if (renderBudget > 0) this.rendered = new LRUCache({ maxSize: renderBudget, sizeCalculation: (b) => b.bytes + 8 * RENDER_BLOCK });
    const responseBudget = opts.responseCacheBytes ?? 64 * 1024 * 1024;
    if (responseBudget > 0) {
      this.responses = new LRUCache({
        maxSize: responseBudget,
        maxEntrySize: Math.max(1, Math.floor(responseBudget / 16)),
        sizeCalculation: (v, k) => v.size + k.length,
      });
    }
    [...R4_RESOURCE_TYPES].sort().forEach((t, i) => this.typeIndex.set(t, i));

    const routes = this.routes();
    for (const [method, path, fn] of routes) this.router.add(method, path, fn);
    const app = new Hono({ router: new TrieRouter(), getPath: (req) => normalisePath(new URL(req.url).pathname) });
    // the body limit on methods that write (a GET then takes Hono's single-handler path, and @hono/node-server
    // builds no fetch Request for it)
    const limit = bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => toFetchResponse(errorReply(new FhirError(413, `Request body too large (limit ${MAX_BODY_BYTES} bytes)`))),
    });
    app.on(['POST', 'PUT', 'PATCH', 'DELETE'], '*', limit);
    for (const [method, path, fn] of routes) {
      app.on(method, path, async (c) => {
        const p = c.req.param() as Record<string, string>;
        try {
          return toFetchResponse(await fn(this.call(honoRequest(c), new URL(c.req.url), p.sid, p.type, p.id, false)));
        } catch (e) {
          return toFetchResponse(errorReply(e));
        }
      });
    }
    app.notFound((c) => toFetchResponse(errorReply(notFound(new URL(c.req.url)))));
    app.onError((e) => toFetchResponse(errorReply(e)));
    this.app = app;
  }

  /** The routing table: [method, path pattern, route]; the first match wins. */
  private routes(): Array<[string, string, RouteFn]> {
    const api: Array<[string, string, RouteFn]> = [
      ['GET', '/metadata', (c) => this.metadata(c)],
      ['ALL', '/metadata', (c) => this.notAllowed(c, 'GET')],
      ['GET', '', (c) => this.root(c)],
      ['ALL', '', (c) => this.notAllowed(c, 'GET')],
      ['GET', '/:type', (c) => this.search(c)],
      ['POST', '/:type', (c) => this.create(c)],
      ['ALL', '/:type', (c) => this.notAllowed(c, 'GET, POST')],
      ['GET', '/:type/:id', (c) => this.read(c)],
      ['PUT', '/:type/:id', (c) => this.update(c)],
      ['ALL', '/:type/:id', (c) => this.notAllowed(c, 'GET, PUT')],
    ];
    return [
      ['DELETE', '/fhir/_session/:sid', (c) => this.dropSession(c)],
      ...api.map(([m, p, f]): [string, string, RouteFn] => [m, `/fhir/_session/:sid${p}`, f]),
      ...api.map(([m, p, f]): [string, string, RouteFn] => [m, `/fhir${p}`, f]),
    ];
  }

  /** The in-process handler: the same routing table matched with Hono's TrieRouter, no fetch Request/Response. */
  readonly handle: FhirHandler = async (req) => {
    const url = new URL(req.url);
    try {
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      let r = req;
      if (!READ_METHODS.has(method)) {
        // as the body-limit middleware does before routing: the whole body, 413 beyond the limit
        const bytes = await req.body(MAX_BODY_BYTES);
        r = { method: req.method, url: req.url, header: (n) => req.header(n), body: async () => bytes };
      }
      const match = this.router.match(method, normalisePath(url.pathname))[0];
      if (match.length === 0) throw notFound(url);
      const [fn, params] = match[0] as [RouteFn, Record<string, string>];
      const reply = await collect(await fn(this.call(r, url, params.sid, params.type, params.id, true)));
      return req.method === 'HEAD' ? { ...reply, body: '' } : reply;
    } catch (e) {
      return errorReply(e);
    }
  };

  /** Session, base and decoded parameters of a routed request. */
  private call(req: FhirRequest, url: URL, sid: string | undefined, type: string | undefined, id: string | undefined, raw: boolean): Call {
    checkSegments(url.pathname);
    if (raw) {
      sid = decodeParam(sid);
      type = decodeParam(type);
      id = decodeParam(id);
    }
    let origin = url.origin;
    if (this.trustForwarded) {
      const host = req.header('x-forwarded-host')?.split(',')[0]?.trim();
      if (host && HOST_RE.test(host)) {
        const proto = req.header('x-forwarded-proto')?.split(',')[0]?.trim();
        origin = `${proto === 'http' || proto === 'https' ? proto : url.protocol.slice(0, -1)}://${host}`;
      }
    }
    let session = DEFAULT_SESSION;
    let named = false;
    let base = `${origin}/fhir`;
    if (sid !== undefined) {
      if (!SESSION_ID_RE.test(sid)) throw new FhirError(400, `Invalid session id "${sid}" (expected [A-Za-z0-9_.-]{1,64})`);
      session = sid;
      named = true;
      base = `${origin}/fhir/_session/${sid}`;
    } else {
      const h = req.header(SESSION_HEADER_LC);
      if (h !== undefined && h !== '') {
        if (!SESSION_ID_RE.test(h)) throw new FhirError(400, `Invalid ${SESSION_HEADER} header "${h}" (expected [A-Za-z0-9_.-]{1,64})`);
        session = h;
        named = true;
      }
    }
    const prettyPrint = !url.search.includes('_pretty') || url.searchParams.get('_pretty') !== 'false';
    return { req, method: req.method, url, type, id, session, named, base, prettyPrint };
  }

  private out(call: Call, status: number, v: unknown, headers?: Record<string, string>): FhirReply {
    return respond(status, call.prettyPrint ? pretty(v) : compact(v), headers);
  }

  /** 404 for an unknown resource type (400 for `_session` without an id). */
  private checkType(type: string | undefined): string {
    if (type === '_session') throw new FhirError(400, 'Invalid session id "" (expected [A-Za-z0-9_.-]{1,64})');
    if (type === undefined || !R4_RESOURCE_TYPES.has(type)) {
      throw new FhirError(404, `Unknown resource type '${type}' - Server knows how to handle: [${[...R4_RESOURCE_TYPES].sort().join(', ')}]`);
    }
    return type;
  }

  /** 403 for a write that names no session (or names `default`) unless the default session is writable. */
  private checkWrite(call: Call): void {
    if (this.writableDefault || READ_METHODS.has(call.method)) return;
    if (!call.named) {
      throw new FhirError(
        403,
        `Writes need a session: send ${call.method} to /fhir/_session/<id>/… or add the header ${SESSION_HEADER}: <id> (requests without a session are read-only on this server; ehrgym serve --writable-default allows them)`,
      );
    }
    if (call.session === DEFAULT_SESSION) {
      throw new FhirError(403, `The session id "${DEFAULT_SESSION}" is what requests without a session read; it is read-only on this server: pick another id`);
    }
  }

  private notAllowed(call: Call, allow: string): Reply {
    this.checkWrite(call);
    if (call.type !== undefined) this.checkType(call.type);
    throw methodNotAllowed(call.method, allow);
  }

  private metadata(call: Call): Reply {
    const key = call.prettyPrint ? 'pretty' : 'compact';
    let body = this.capability.get(key);
    if (body === undefined) {
      const cs = capabilityStatement(this.store, this.strict);
      body = call.prettyPrint ? pretty(cs) : compact(cs);
      this.capability.set(key, body);
    }
    return respond(200, body);
  }

  private root(call: Call): Reply {
    if (call.url.searchParams.has('_getpages')) return this.getPage(call);
    throw new FhirError(
      400,
      'This is the base URL of the FHIR server. Unable to handle this request, as it does not contain a resource type or operation name.',
    );
  }

  private dropSession(call: Call): Reply {
    this.store.dropSession(call.session);
    return respond(204, '');
  }

  private read(call: Call): Reply {
    const type = this.checkType(call.type);
    const id = call.id!;
    const r = this.store.read(type, id, call.session);
    if (!r) throw new FhirError(404, `Resource ${type}/${id} is not known`);
    const headers: Record<string, string> = {};
    if (typeof r.meta?.versionId === 'string') headers.etag = `W/"${r.meta.versionId}"`;
    return this.out(call, 200, r, headers);
  }

  // ------------------------------------------------------------------ search and paging

  private searchId(session: string, type: string, pairs: Array<[string, string]>): string {
    const keyPairs = sortPairs(pairs).filter(([k]) => k !== '_format' && k !== '_pretty');
    return uuidFrom(`${session}\u0000${type}\u0000${JSON.stringify(keyPairs)}`);
  }

  private search(call: Call): Reply {
    const type = this.checkType(call.type);
    const { url, session, base } = call;
    const cacheKey =
      this.responses && call.prettyPrint && !this.store.sessionHasType(session, type) && !url.search.includes(MARK_PREFIX) ? `${type}${url.search}` : undefined;
    const official = base === OFFICIAL_BASE && session === DEFAULT_SESSION;
    if (cacheKey !== undefined) {
      const hit = this.responses!.get(cacheKey);
      if (hit?.official && official) {
        if (hit.hasNext) this.paged.set(hit.official.id, { resourceType: type, pairs: [...url.searchParams] as Array<[string, string]>, session });
        return respond(200, hit.official.body);
      }
      if (hit) {
        const pairs = [...url.searchParams] as Array<[string, string]>;
        const id = this.searchId(session, type, pairs);
        if (hit.hasNext) this.paged.set(id, { resourceType: type, pairs, session });
        const text = this.splice(hit, base, id);
        if (!official) return respond(200, text);
        const body = Buffer.from(text);
        this.responses!.set(cacheKey, { ...hit, size: hit.size + body.length, official: { body, id } });
        return respond(200, body);
      }
    }
    const pairs = [...url.searchParams] as Array<[string, string]>;
    const q = parseSearch(type, pairs);
    const result = this.store.search(type, q, session);
    const count = q.summaryCount ? 0 : (q.count ?? DEFAULT_PAGE_SIZE);
    // HAPI cannot tell a full first page of more than HAPI_SYNC_SIZE matches from one with more behind it
    const hasNext = count > 0 && (result.total > count || (q.totalMode !== 'accurate' && result.total === count && count > HAPI_SYNC_SIZE));
    const id = this.searchId(session, type, pairs);
    if (hasNext) this.paged.set(id, { resourceType: type, pairs, session });
    const page = (b: string, i: string): SearchPage => ({
      base: b,
      id: i,
      type,
      handles: result.handles,
      offset: 0,
      count,
      total: result.total,
      self: `${b}/${type}${pairs.length ? '?' : ''}${hapiQuery(pairs)}`,
      next: hasNext ? this.nextUrl(b, i, count, count, pairs) : undefined,
      session,
      totalMode: q.totalMode,
    });
    if (Math.min(count, result.handles.length) > STREAM_ENTRIES) return this.streamed(page(base, id), call.prettyPrint);
    if (!call.prettyPrint) return respond(200, compact(this.bundle(page(base, id))));
    if (cacheKey === undefined) return respond(200, this.bundleText(page(base, id)));
    const text = this.bundleText(page(BASE_MARK, ID_MARK));
    const t = template(typeof text === 'string' ? text : text.toString());
    const cached: CachedSearch = { ...t, hasNext };
    this.responses!.set(cacheKey, cached);
    return respond(200, this.splice(cached, base, id));
  }

  /** A cached searchset with this request's base URL and bundle id. */
  private splice(t: CachedSearch, base: string, id: string): string {
    const b = JSON.stringify(base).slice(1, -1);
    return t.pieces.map((p) => p.join(b)).join(id);
  }

  /** HAPI's paging link: `_format` echoed (first value, spaces back to `+`), `_pretty=true` when pretty-printing. */
  private nextUrl(base: string, id: string, offset: number, count: number, pairs: Array<[string, string]>): string {
    const fmt = pairs.find(([k]) => k === '_format');
    const prettyPrint = pairs.find(([k]) => k === '_pretty')?.[1] !== 'false';
    return `${base}?_getpages=${hapiEscapeParam(id)}&_getpagesoffset=${offset}&_count=${count}${fmt ? `&_format=${hapiEscapeParam(fmt[1].replace(/ /g, '+'))}` : ''}${prettyPrint ? '&_pretty=true' : ''}&_bundletype=searchset`;
  }

  private bundle({ base, id, type, handles, offset, count, total, next, prev, self, session, totalMode }: SearchPage): Record<string, unknown> {
    const b: Record<string, unknown> = { resourceType: 'Bundle', id, meta: { lastUpdated: this.store.clock }, type: 'searchset' };
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
          fullUrl: `${base}/${type}/${this.store.idOf(type, h, session)}`,
          resource: this.store.resourceOf(type, h, session),
          search: { mode: 'match' },
        };
      }
      b.entry = entry;
    }
    return b;
  }

  /**
   * UTF-8 bytes of a pretty searchset entry from the id in its fullUrl on: `1234",\n    "resource": {…},\n    "search": …}`.
   * Base resources are immutable, so their bytes are cached (bounded, least recently used out).
   */
  private renderTail(type: string, h: number, session: string): Buffer {
    const id = this.store.idOf(type, h, session);
    const idText = SAFE_ID.test(id) ? id : JSON.stringify(id).slice(1, -1);
    return Buffer.from(idText + ENTRY_MID + pretty(this.store.resourceOf(type, h, session), 2) + ENTRY_END);
  }

  /** Entry tails of `handles[from, to)`, base resources from (and into) the block cache. */
  private entryTails(type: string, handles: number[], from: number, to: number, session: string): Buffer[] {
    const out: Buffer[] = new Array(to - from);
    const cache = this.rendered;
    const typeKey = (this.typeIndex.get(type) ?? 0) * 4_294_967_296;
    let blockKey = -1;
    let block: RenderBlock | undefined;
    let grown: Map<number, RenderBlock> | undefined;
    for (let i = from; i < to; i++) {
      const h = handles[i];
      if (h < 0 || !cache) {
        out[i - from] = this.renderTail(type, h, session);
        continue;
      }
      const k = typeKey + Math.floor(h / RENDER_BLOCK);
      if (k !== blockKey) {
        blockKey = k;
        block = grown?.get(k) ?? cache.get(k);
        if (!block) {
          block = { slots: new Array(RENDER_BLOCK), bytes: 0 };
          cache.set(k, block);
        }
      }
      const slot = h % RENDER_BLOCK;
      let b = block!.slots[slot];
      if (b === undefined) {
        b = this.renderTail(type, h, session);
        block!.slots[slot] = b;
        block!.bytes += b.length;
        (grown ??= new Map()).set(k, block!);
      }
      out[i - from] = b;
    }
    // blocks that grew are set again (a new wrapper) so that the cache counts their new size
    if (grown) for (const [k, b] of grown) cache!.set(k, { slots: b.slots, bytes: b.bytes });
    return out;
  }

  /** A compact searchset entry: `{"fullUrl":"…","resource":{…},"search":{"mode":"match"}}`. */
  private compactEntry(page: SearchPage, h: number): string {
    const { base, type, session } = page;
    return `{"fullUrl":${JSON.stringify(`${base}/${type}/${this.store.idOf(type, h, session)}`)},"resource":${compact(this.store.resourceOf(type, h, session))}${COMPACT_ENTRY_END}`;
  }

  /** The bundle's text without entries, opened for them: `…"link": [ … ],\n  "entry": [ ` (pretty) or `…,"entry":[`. */
  private bundleHead(page: SearchPage, prettyPrint: boolean): Buffer {
    const b = this.bundle({ ...page, count: 0 });
    return Buffer.from(prettyPrint ? `${pretty(b).slice(0, -2)},\n  "entry": [ ` : `${compact(b).slice(0, -1)},"entry":[`);
  }

  /** Entries [from, to) of the page, rendered. */
  private entryBytes(page: SearchPage, from: number, to: number, prettyPrint: boolean): Buffer {
    const { base, type, handles, offset, session } = page;
    if (!prettyPrint) {
      let s = '';
      for (let i = from; i < to; i++) s += (i ? ',' : '') + this.compactEntry(page, handles[offset + i]);
      return Buffer.from(s);
    }
    const first = Buffer.from(`{\n    "fullUrl": ${JSON.stringify(`${base}/${type}/`).slice(0, -1)}`);
    const later = Buffer.concat([Buffer.from(', '), first]);
    const tails = this.entryTails(type, handles, offset + from, offset + to, session);
    const parts: Buffer[] = new Array(2 * (to - from));
    let size = 0;
    for (let i = from; i < to; i++) {
      const p = i === 0 ? first : later;
      const t = tails[i - from];
      parts[2 * (i - from)] = p;
      parts[2 * (i - from) + 1] = t;
      size += p.length + t.length;
    }
    return Buffer.concat(parts, size);
  }

  /** Same bytes as `pretty(bundle(...))` in UTF-8, assembled from cached entry bytes. */
  private bundleText(page: SearchPage): string | Buffer {
    const n = Math.max(0, Math.min(page.handles.length, page.offset + page.count) - page.offset);
    if (n === 0) return pretty(this.bundle({ ...page, count: 0 }));
    const head = this.bundleHead(page, true);
    const entries = this.entryBytes(page, 0, n, true);
    return Buffer.concat([head, entries, BUNDLE_END], head.length + entries.length + BUNDLE_END.length);
  }

  /** A large page, rendered CHUNK_ENTRIES entries at a time with a turn of the event loop between chunks. */
  private streamed(page: SearchPage, prettyPrint: boolean): StreamedReply {
    const n = Math.max(0, Math.min(page.handles.length, page.offset + page.count) - page.offset);
    const self = this;
    return {
      status: 200,
      headers: { 'content-type': FHIR_CONTENT_TYPE },
      async *chunks() {
        yield self.bundleHead(page, prettyPrint);
        for (let i = 0; i < n; i += CHUNK_ENTRIES) {
          if (i > 0) await yieldToEventLoop();
          yield self.entryBytes(page, i, Math.min(n, i + CHUNK_ENTRIES), prettyPrint);
        }
        yield prettyPrint ? BUNDLE_END : COMPACT_END;
      },
    };
  }

  private getPage(call: Call): Reply {
    const { url, base, session } = call;
    const sp = url.searchParams;
    const id = sp.get('_getpages') ?? '';
    const p = this.paged.get(id);
    if (!p || p.session !== session) {
      throw new FhirError(410, `Search ID "${id}" does not exist and may have expired`);
    }
    const q = parseSearch(p.resourceType, p.pairs);
    const offsetText = sp.get('_getpagesoffset');
    if (offsetText !== null && !/^\d{1,9}$/.test(offsetText)) throw new FhirError(400, `Invalid _getpagesoffset value: "${offsetText.slice(0, 40)}"`);
    const offset = offsetText === null ? 0 : Number(offsetText);
    const countText = sp.get('_count');
    const count = countText === null ? (q.count ?? DEFAULT_PAGE_SIZE) : countParam('_count', countText);
    const result = this.store.search(p.resourceType, q, session);
    const self = `${base}?${hapiQuery([...sp] as Array<[string, string]>)}`;
    const hasNext = count > 0 && result.total > offset + count;
    const page: SearchPage = {
      base,
      id,
      type: p.resourceType,
      handles: result.handles,
      offset,
      count,
      total: result.total,
      self,
      next: hasNext ? this.nextUrl(base, id, offset + count, count, p.pairs) : undefined,
      prev: offset > 0 ? this.nextUrl(base, id, Math.max(0, offset - count), count, p.pairs) : undefined,
      session,
      totalMode: q.totalMode,
    };
    const n = Math.max(0, Math.min(result.handles.length, offset + count) - offset);
    if (n > STREAM_ENTRIES) return this.streamed(page, call.prettyPrint);
    return call.prettyPrint ? respond(200, this.bundleText(page)) : respond(200, compact(this.bundle(page)));
  }

  // ------------------------------------------------------------------ writes

  /** The request body as a resource of `type`: UTF-8 JSON object, bounded size and depth, its resourceType checked. */
  private async resourceBody(call: Call, type: string): Promise<Resource> {
    const declared = Number(call.req.header('content-length') ?? '0');
    if (declared > MAX_BODY_BYTES) throw new FhirError(413, `Request body too large (limit ${MAX_BODY_BYTES} bytes)`);
    const buf = await call.req.body(MAX_BODY_BYTES);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
    } catch {
      throw new FhirError(400, 'Request body is not valid UTF-8');
    }
    if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
      throw new FhirError(400, `Request body nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`);
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
    if (this.strict) {
      const issues: OutcomeIssue[] = strictIssues(r);
      if (issues.length) throw new FhirError(422, `Resource failed FHIR R4 validation (${issues.length} issues)`, issues);
    }
    return r;
  }

  private async create(call: Call): Promise<Reply> {
    this.checkWrite(call);
    const type = this.checkType(call.type);
    const r = await this.resourceBody(call, type);
    const stored = this.store.create(r, call.session);
    const loc = `${call.base}/${type}/${stored.id}/_history/1`;
    return this.out(call, 201, stored, { location: loc, 'content-location': loc, etag: 'W/"1"' });
  }

  /**
   * FHIR update (PUT {Type}/{id}) of an existing resource, in the request's session: the body's `id` must equal the
   * URL's; `If-Match: W/"<version>"` makes it conditional on the current version (412 otherwise). 200 with the new
   * version, its Location and ETag.
   */
  private async update(call: Call): Promise<Reply> {
    this.checkWrite(call);
    const type = this.checkType(call.type);
    const id = call.id!;
    const r = await this.resourceBody(call, type);
    if (r.id !== id) {
      throw new FhirError(
        400,
        `The resource body must contain an id element which matches the request URL for an update (PUT): body ${JSON.stringify(r.id ?? null)}, URL ${JSON.stringify(id)}`,
      );
    }
    const header = call.req.header('if-match');
    let ifMatch: string | undefined;
    if (header !== undefined) {
      const m = /^\s*(?:W\/)?"?([^"\s]+)"?\s*$/.exec(header);
      if (!m) throw new FhirError(400, `If-Match: expected an ETag such as W/"1", got ${JSON.stringify(header)}`);
      ifMatch = m[1];
    }
    const stored = this.store.update(r, id, call.session, ifMatch);
    const version = String(stored.meta?.versionId);
    const loc = `${call.base}/${type}/${id}/_history/${version}`;
    return this.out(call, 200, stored, { location: loc, 'content-location': loc, etag: `W/"${version}"` });
  }
}

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

function honoRequest(c: Context): FhirRequest {
  return {
    method: c.req.method,
    url: c.req.url,
    header: (name) => header(c, name),
    body: async (limit) => {
      const bytes = await readBodyLimited(c.req.raw, limit);
      if (bytes === undefined) throw new FhirError(413, `Request body too large (limit ${limit} bytes)`);
      return bytes;
    },
  };
}

/** Build the Hono app serving `store` (frozen here if it is not already). */
export function createFhirApp(store: FhirStore, opts: FhirAppOptions = {}): Hono {
  return new FhirApi(store, opts).app;
}

/**
 * The FHIR API over `store` (frozen here if it is not already) as an in-process handler: the Hono app's routing
 * table and replies, without a fetch Request/Response per request.
 */
export function createFhirHandler(store: FhirStore, opts: FhirAppOptions = {}): FhirHandler {
  return new FhirApi(store, opts).handle;
}

/** The CapabilityStatement: exactly the interactions and search parameters this server supports. */
export function capabilityStatement(store: FhirStore, strict: boolean): Record<string, unknown> {
  const kindType: Record<string, string> = { id: 'token', reference: 'reference', token: 'token', string: 'string', date: 'date' };
  const resource = [...R4_RESOURCE_TYPES].sort().map((type) => {
    const defs = paramsFor(type);
    const docs = PARAM_DOCS[type] ?? {};
    return {
      type,
      interaction: [{ code: 'read' }, { code: 'search-type' }, { code: 'create' }, { code: 'update' }],
      versioning: 'versioned-update',
      updateCreate: false,
      searchParam: Object.entries(defs)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([name, d]) => ({
          name,
          type: d.kind === 'token' && 'reference' in d && d.reference ? 'reference' : kindType[d.kind],
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
        documentation: `Search results: _count (default ${DEFAULT_PAGE_SIZE}, at most ${MAX_PAGE_SIZE} per page), _sort on date parameters (prefix - for descending), _summary=count, paging via _getpages. Writes are kept per session; ${strict ? 'strict FHIR R4 validation' : 'compat mode: bodies stored as sent'}.`,
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
  /** The same API in-process (shares the app's caches), e.g. for endpoints mounted next to it. */
  handle: FhirHandler;
  close(): Promise<void>;
}

/** Another endpoint served next to `/fhir` at exactly `path` (e.g. `/mcp`), answered by `fetch`. */
export type MountedFetch = (req: Request) => Response | Promise<Response>;

/**
 * Listen on `host` (default 127.0.0.1) and `port` (default 0 = any free port). `mounts` answers requests whose path
 * is exactly one of its keys (bound after listening, so that they can use `handle`); everything else is the FHIR app.
 */
export async function startFhirServer(
  store: FhirStore,
  opts: FhirAppOptions & { host?: string; port?: number; mounts?: Record<string, MountedFetch> } = {},
): Promise<StartedFhirServer> {
  const { host = '127.0.0.1', port, mounts, ...appOpts } = opts;
  const api = new FhirApi(store, appOpts);
  const app = api.app;
  const fetch: typeof app.fetch = mounts
    ? (req, ...rest) => {
        const path = pathOf(req.url);
        return Object.hasOwn(mounts, path) ? mounts[path](req) : app.fetch(req, ...rest);
      }
    : app.fetch;
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname: host, port: port ?? 0 }, (info: AddressInfo) => {
      const h = host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${h}:${info.port}/fhir/`,
        port: info.port,
        host,
        app,
        handle: api.handle,
        close: () => closeServer(server),
      });
    });
    server.on('error', reject);
  });
}

/** The path of an absolute URL (no query), without building a URL object. */
function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  if (start < 0) return '/';
  const end = url.slice(start).search(/[?#]/);
  return end < 0 ? url.slice(start) : url.slice(start, start + end);
}

export { GENERIC_PARAMS, SEARCH_PARAMS };
