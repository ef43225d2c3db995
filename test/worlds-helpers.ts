/**
 * Test helpers for the worlds tests: GET a URL through the embedded FHIR server's Hono `app.fetch` and parse the body,
 * so the tests see exactly what agents and the grader see (pretty-printed HAPI JSON, paging, insertion order).
 */
import type { FhirStore } from '../src/fhir/store.js';
import { createFhirApp, SESSION_HEADER } from '../src/fhir/server.js';

export type GetJson = (url: string) => Promise<unknown>;

/**
 * GET via `createFhirApp(store).fetch`; returns the parsed body (throws on non-2xx or a plain `application/json`).
 * With `session`, requests carry the session header (reads see that session's writes).
 */
export async function replicaTransport(store: FhirStore, session?: string): Promise<GetJson> {
  const app = createFhirApp(store);
  return async (url: string) => {
    const res = await app.fetch(new Request(url, session ? { headers: { [SESSION_HEADER]: session } } : {}));
    const text = await res.text();
    if (res.status < 200 || res.status > 299) throw new Error(`GET ${url} → ${res.status}: ${text.slice(0, 300)}`);
    const ct = res.headers.get('content-type') ?? '';
    if (ct === 'application/json') throw new Error(`GET ${url}: exactly application/json breaks the official grader`);
    return JSON.parse(text);
  };
}
