/**
 * Where episodes' FHIR requests go. Every episode gets its own sandbox session; graders read the base data.
 * All transports take URLs under the advertised `api_base` (default `http://localhost:8080/fhir/`), whatever the
 * real address of the server is.
 */
import type { FhirTransport } from '../fhir/types.js';
import { httpTransport, routedTransport } from '../agent/fhir-route.js';
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

/**
 * An external FHIR server (`--fhir-url`, e.g. the official image at `http://localhost:8080/fhir/`). Sessions are not
 * isolated there: in `official` POST mode nothing is ever written, exactly like the official harness.
 */
export function externalBackend(fhirUrl: string, apiBase: string, opts: { timeoutMs?: number } = {}): FhirBackend {
  const target = withSlash(fhirUrl);
  const transport = routedTransport({ apiBase, targetBase: target, send: httpTransport(opts) });
  return {
    world: { fhirUrl: target },
    base: transport,
    openSession: async () => ({ transport, close: async () => {} }),
    close: async () => {},
  };
}

/** Check that a FHIR server answers `GET {base}metadata` with 200 (the official harness's health check). */
export async function checkFhirServer(base: FhirTransport, apiBase: string): Promise<void> {
  const res = await base({ method: 'GET', url: `${apiBase}metadata` });
  if (res.status !== 200) throw new Error(`FHIR server answered ${res.status} to GET ${apiBase}metadata`);
}
