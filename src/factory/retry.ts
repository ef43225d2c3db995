import type { FhirTransport } from '../fhir/types.js';

/**
 * Retry a loopback request that failed below HTTP (a keep-alive socket the server closed while idle, reported by fetch
 * as `fetch failed`): such a failure is not part of the protocol and must not end up in a transcript.
 */
export function retrying(send: FhirTransport, attempts = 4): FhirTransport {
  return async (req) => {
    for (let i = 1; ; i++) {
      try {
        return await send(req);
      } catch (e) {
        if (i >= attempts) throw e;
        await new Promise((r) => setTimeout(r, 10 * i));
      }
    }
  };
}
