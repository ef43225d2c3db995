/**
 * Routing of the advertised `api_base` to wherever the FHIR server really is.
 *
 * Prompts, transcripts and grading always use the advertised base (default `http://localhost:8080/fhir/`). A routed
 * transport rewrites URLs under that base to the real target (the embedded server in-process, a session path on it,
 * or an external server given with `--fhir-url`) and rewrites `Location` headers back, so the agent never sees the
 * real address. URLs on any other host are never contacted: they fail like an unreachable host would.
 */
import { STATUS_CODES } from 'node:http';
import type { FhirHttpRequest, FhirHttpResponse, FhirTransport } from '../fhir/types.js';

export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? '';
}

function origin(u: string): string | null {
  const m = /^([a-z][a-z0-9+.-]*:\/\/[^/?#]*)/i.exec(u);
  return m ? m[1].toLowerCase() : null;
}

function defaultPort(scheme: string): string {
  return scheme === 'https' ? '443' : '80';
}

/** The text of the exception `requests` raises when nothing listens at a host (deterministic object address). */
export function connectionRefusedText(url: string): string {
  const m = /^([a-z]+):\/\/([^/?#]*)(.*)$/is.exec(url);
  const scheme = m ? m[1].toLowerCase() : 'http';
  const hostport = m ? m[2] : '';
  const [host, port] = hostport.includes(':')
    ? [hostport.slice(0, hostport.lastIndexOf(':')), hostport.slice(hostport.lastIndexOf(':') + 1)]
    : [hostport, defaultPort(scheme)];
  let path = m ? m[3] : '/';
  if (!path.startsWith('/')) path = '/' + path;
  const pool = scheme === 'https' ? 'HTTPSConnectionPool' : 'HTTPConnectionPool';
  const conn = scheme === 'https' ? 'HTTPSConnection' : 'HTTPConnection';
  return `${pool}(host='${host}', port=${port}): Max retries exceeded with url: ${path} (Caused by NewConnectionError('<urllib3.connection.${conn} object at 0x7f0000000000>: Failed to establish a new connection: [Errno 111] Connection refused'))`;
}

export interface RouteOptions {
  /** The advertised base, e.g. `http://localhost:8080/fhir/`. */
  apiBase: string;
  /** The real base the advertised base maps to, e.g. `http://127.0.0.1:40123/fhir/_session/run-3/`. */
  targetBase: string;
  /** Sends a request addressed under targetBase (or the target origin). */
  send: FhirTransport;
}

/**
 * A transport that accepts URLs as the agent wrote them (under the advertised base) and forwards them to the target.
 * URLs on the advertised origin but outside the base path go to the same path on the target origin.
 */
export function routedTransport(opts: RouteOptions): FhirTransport {
  const apiBase = opts.apiBase;
  const targetBase = opts.targetBase;
  const apiOrigin = origin(apiBase);
  const targetOrigin = origin(targetBase);
  if (!apiOrigin || !targetOrigin) throw new Error(`not an absolute http(s) URL: ${!apiOrigin ? apiBase : targetBase}`);
  const mapOut = (url: string): string | null => {
    if (url.startsWith(apiBase)) return targetBase + url.slice(apiBase.length);
    const o = origin(url);
    if (o === apiOrigin) return targetOrigin + url.slice(o.length);
    return null;
  };
  const mapBack = (url: string): string => {
    if (url.startsWith(targetBase)) return apiBase + url.slice(targetBase.length);
    const o = origin(url);
    if (o === targetOrigin) return apiOrigin + url.slice(o.length);
    return url;
  };
  return async (req: FhirHttpRequest): Promise<FhirHttpResponse> => {
    const hash = req.url.indexOf('#');
    const url = hash >= 0 ? req.url.slice(0, hash) : req.url;
    const mapped = mapOut(url);
    if (mapped === null) throw new Error(connectionRefusedText(url));
    const res = await opts.send({ ...req, url: mapped });
    const loc = res.headers?.['location'] ?? res.headers?.['Location'];
    if (loc !== undefined) {
      const headers = { ...res.headers };
      delete headers['Location'];
      headers['location'] = mapBack(loc);
      return { ...res, headers };
    }
    return res;
  };
}
