/**
 * Where episodes' FHIR requests go. Every episode gets its own sandbox session; graders read the base data.
 * All transports take URLs under the advertised `api_base` (default `http://localhost:8080/fhir/`), whatever the
 * real address of the server is.
 */
import type { FhirTransport } from '../fhir/types.js';
import type { FhirStore } from '../fhir/store.js';
import { createFhirHandler, SESSION_HEADER } from '../fhir/server.js';
import { handlerTransport, httpTransport } from '../fhir/client.js';
import { routedTransport } from '../agent/fhir-route.js';
import type { RunManifest } from './types.js';

export interface EpisodeSession {
  /** Transport bound to this session (URLs under the advertised api_base). */
  transport: FhirTransport;
  /** Drop the session and everything it wrote. */
  close(): Promise<void>;
}

export interface FhirBackend {
  /** How the manifest records the data the run used. */
  readonly world: RunManifest['world'];
  /** Open an isolated session for one episode. */
  openSession(sessionId: string): Promise<EpisodeSession>;
  /** Transport on the base data (what graders read). */
  readonly base: FhirTransport;
  close(): Promise<void>;
}

/** Normalise a base URL to end with exactly one `/`. */
export function withSlash(url: string): string {
  return url.endsWith('/') ? url : url + '/';
}

function originOf(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}

/**
 * The embedded server, answered in-process (no socket). Requests on the advertised api_base go to the handler as they
 * are (it prints links on the origin it is addressed with), so transcripts carry the advertised base whatever
 * port a listening server would have. Each episode's session is a copy-on-write overlay dropped at the end.
 */
export function embeddedBackend(
  store: FhirStore,
  world: { name: string; seed?: number; patients?: number; fingerprint: string },
  apiBase: string,
  opts: { strict?: boolean } = {},
): FhirBackend {
  const handle = createFhirHandler(store, { strict: opts.strict });
  // The app serves /fhir/…; an advertised base with another path is mapped onto it.
  const targetBase = new URL(apiBase).pathname === '/fhir/' ? apiBase : `${originOf(apiBase)}/fhir/`;
  const guard = (send: FhirTransport) => routedTransport({ apiBase, targetBase, send });
  const opening = new Set<string>();
  return {
    world: { ...world },
    base: guard(handlerTransport(handle)),
    openSession: async (wanted) => {
      // A session of that name is live (another run in this process on the same world): take the next free name.
      let id = wanted;
      for (let n = 2; store.hasSession(id) || opening.has(id); n++) id = `${wanted}.${n}`;
      opening.add(id);
      return {
        transport: guard(handlerTransport(handle, { session: id })),
        close: async () => {
          opening.delete(id);
          store.dropSession(id);
        },
      };
    },
    close: async () => {},
  };
}

/**
 * An external FHIR server (`--fhir-url`, e.g. the official image at `http://localhost:8080/fhir/`). The advertised
 * api_base is mapped onto it; episodes name their session with the `X-Ehrgym-Session` header (an ehrgym server
 * isolates them; other servers ignore it, and in `official` POST mode nothing is written anyway, exactly like the
 * official harness).
 */
export function externalBackend(fhirUrl: string, apiBase: string, opts: { timeoutMs?: number; dropSessions?: boolean } = {}): FhirBackend {
  const target = withSlash(fhirUrl);
  const adv = new URL(apiBase);
  const fwd = { 'x-forwarded-host': adv.host, 'x-forwarded-proto': adv.protocol.replace(':', '') };
  const make = (session?: string) =>
    routedTransport({
      apiBase,
      targetBase: target,
      send: httpTransport({ headers: fwd, timeoutMs: opts.timeoutMs, ...(session !== undefined ? { session } : {}) }),
    });
  const base = make();
  return {
    world: { fhirUrl: target },
    base,
    openSession: async (id) => ({
      transport: make(id),
      close: async () => {
        // live POSTs wrote into the session: an ehrgym server drops it on DELETE {base}_session/{id}
        if (opts.dropSessions) await fetch(`${target}_session/${id}`, { method: 'DELETE' }).catch(() => undefined);
      },
    }),
    close: async () => {},
  };
}

export { SESSION_HEADER };

/** Check that a FHIR server answers `GET {base}metadata` with 200 (the official harness's health check). */
export async function checkFhirServer(base: FhirTransport, apiBase: string): Promise<void> {
  const res = await base({ method: 'GET', url: `${apiBase}metadata` });
  if (res.status !== 200) throw new Error(`FHIR server answered ${res.status} to GET ${apiBase}metadata`);
}
