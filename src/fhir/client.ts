/**
 * FhirTransport implementations: in-process over the Hono app (no socket) and HTTP to any FHIR server (our own,
 * HAPI, Medplum, the official MedAgentBench image) with a mapping from the advertised api_base to the real URL.
 */
import type { Hono } from 'hono';
import { FhirError } from './errors.js';
import { SESSION_HEADER, type FhirHandler } from './server.js';
import type { FhirHttpRequest, FhirHttpResponse, FhirTransport } from './types.js';

function headersOf(res: Response): Record<string, string> {
  const h: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    h[k] = v;
  });
  return h;
}

async function toResponse(res: Response): Promise<FhirHttpResponse> {
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    body: await res.text(),
    headers: headersOf(res),
  };
}

export interface InProcessOptions {
  /** Session id sent as `X-Ehrgym-Session` (links stay on the URL's own base). */
  session?: string;
}

const SESSION_HEADER_LC = SESSION_HEADER.toLowerCase();

/** The request's headers (names in lower case), the session's header when given, a FHIR JSON type for a body. */
function inProcessHeaders(req: FhirHttpRequest, session: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (req.headers) for (const k of Object.keys(req.headers)) headers[k.toLowerCase()] = req.headers[k];
  if (session !== undefined) headers[SESSION_HEADER_LC] = session;
  if (req.body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/fhir+json';
  return headers;
}

/**
 * Answer requests with the app directly. Absolute URLs on any origin are accepted (e.g. the official
 * `http://localhost:8080/fhir/…`); the app sees that origin, so links in responses keep it.
 */
/**
 * Read access to an in-process server with scratch sessions (`GraderContext` of the task layer: end-state grading
 * replays an episode's writes into `openSession(name)`, dropped on close).
 */
export function inProcessGraderAccess(
  app: Pick<Hono, 'fetch'>,
  store: { dropSession(id: string): unknown },
  apiBase: string,
): { apiBase: string; fhir: FhirTransport; openSession(name: string): Promise<{ transport: FhirTransport; close(): Promise<void> }> } {
  return {
    apiBase,
    fhir: inProcessTransport(app),
    openSession: async (name) => ({
      transport: inProcessTransport(app, { session: name }),
      close: async () => {
        store.dropSession(name);
      },
    }),
  };
}

export function inProcessTransport(app: Pick<Hono, 'fetch'>, opts: InProcessOptions = {}): FhirTransport {
  return async (req: FhirHttpRequest) => {
    const headers = inProcessHeaders(req, opts.session);
    const res = await app.fetch(new Request(req.url, { method: req.method, headers, body: req.body }));
    return toResponse(res);
  };
}

/**
 * Answer requests with the FHIR handler itself (`createFhirHandler`): what `inProcessTransport` over the Hono app
 * returns, byte for byte, without building a fetch Request and Response and streaming the body through them per
 * request. The embedded backend of `ehrgym eval` uses it.
 */
export function handlerTransport(handle: FhirHandler, opts: InProcessOptions = {}): FhirTransport {
  return async (req: FhirHttpRequest) => {
    const headers = inProcessHeaders(req, opts.session);
    const bytes = req.body === undefined ? undefined : Buffer.from(req.body, 'utf8');
    const r = await handle({
      method: req.method,
      url: new URL(req.url).href,
      header: (name) => headers[name],
      body: async (limit) => {
        if (bytes && bytes.length > limit) throw new FhirError(413, `Request body too large (limit ${limit} bytes)`);
        return bytes ?? new Uint8Array();
      },
    });
    let body = typeof r.body === 'string' ? r.body : Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength).toString('utf8');
    // as Response.text() decodes: a leading byte order mark is dropped
    if (body.charCodeAt(0) === 0xfeff) body = body.slice(1);
    const out: Record<string, string> = {};
    for (const k of Object.keys(r.headers).sort()) out[k] = r.headers[k];
    return { status: r.status, contentType: r.headers['content-type'] ?? '', body, headers: out };
  };
}

export interface HttpTransportOptions {
  /**
   * Rewrite URLs that start with `from` (the advertised api_base, e.g. `http://localhost:8080/fhir/`) to start with
   * `to` (where the server really is, e.g. `http://127.0.0.1:41234/fhir/`). URLs with another prefix go out unchanged.
   */
  map?: { from: string; to: string };
  /**
   * When mapping, send `X-Forwarded-Host`/`X-Forwarded-Proto` of the advertised base so servers that honour them
   * (ehrgym's does) print links on the advertised base. Default true.
   */
  forwardHost?: boolean;
  /** Session id sent as `X-Ehrgym-Session` (ehrgym servers only; others ignore it). */
  session?: string;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** Abort a request after this many ms (default 60,000). */
  timeoutMs?: number;
}

/** HTTP transport over Node's fetch (undici, keep-alive connection pool). */
export function httpTransport(opts: HttpTransportOptions = {}): FhirTransport {
  const map = opts.map;
  let fwd: Record<string, string> = {};
  if (map && (opts.forwardHost ?? true)) {
    const adv = new URL(map.from);
    fwd = { 'x-forwarded-host': adv.host, 'x-forwarded-proto': adv.protocol.replace(':', '') };
  }
  return async (req: FhirHttpRequest) => {
    let url = req.url;
    let mapped = false;
    if (map && url.startsWith(map.from)) {
      url = map.to + url.slice(map.from.length);
      mapped = true;
    } else if (map && url === map.from.replace(/\/$/, '')) {
      url = map.to.replace(/\/$/, '');
      mapped = true;
    }
    const headers: Record<string, string> = { accept: 'application/fhir+json', ...(opts.headers ?? {}), ...(req.headers ?? {}) };
    if (mapped) Object.assign(headers, fwd);
    if (opts.session !== undefined) headers[SESSION_HEADER] = opts.session;
    if (req.body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/fhir+json';
    }
    const res = await fetch(url, {
      method: req.method,
      headers,
      body: req.body,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
    });
    return toResponse(res);
  };
}
