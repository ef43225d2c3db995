/**
 * Replica tags of session ids (docs/scale.md): a server started with a replica id mints every session id it hands
 * out as `<replica id>.<random UUID>` (`r0.6f1c…`), so a load balancer in front of several replicas sends each later
 * request of that session to the replica that holds it by the id's prefix alone, with no state of its own. Without a
 * replica id the ids are plain random UUIDs, as before.
 *
 * A replica id is 1–27 characters of `[A-Za-z0-9_-]`, starting with a letter or digit: with the separator and a
 * 36-character UUID the id fits the 64 characters of a FHIR session id (an MCP session of `ehrgym serve` runs in the
 * FHIR session named by its id). The separator `.` never occurs in a replica id, so `r1.` and `r10.` never share a
 * prefix.
 */
import { randomUUID } from 'node:crypto';

/** The environment variable the servers read their replica id from when no `--replica-id` flag is given. */
export const REPLICA_ID_ENV = 'EHRGYM_REPLICA_ID';
/** What separates the replica id from the random part of a minted session id. */
export const REPLICA_SEPARATOR = '.';
/** Longest replica id: 64 (FHIR session id) − 1 (separator) − 36 (UUID). */
export const MAX_REPLICA_ID_LENGTH = 27;
export const REPLICA_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,26}$/;

/** Throws a RangeError naming the rule unless `id` is a valid replica id; returns it. */
export function checkReplicaId(id: string): string {
  if (!REPLICA_ID_RE.test(id)) {
    throw new RangeError(
      `a replica id is 1-${MAX_REPLICA_ID_LENGTH} characters of letters, digits, "_" and "-", starting with a letter or digit, got ${JSON.stringify(id)}`,
    );
  }
  return id;
}

/** A new session id: a random UUID, prefixed with `<replicaId>.` when the server has a replica id. */
export function mintSessionId(replicaId?: string): string {
  return replicaId === undefined ? randomUUID() : `${replicaId}${REPLICA_SEPARATOR}${randomUUID()}`;
}

/** The replica id a session id was minted with (the part before the first `.`), or undefined when it carries none. */
export function replicaOf(sessionId: string): string | undefined {
  const i = sessionId.indexOf(REPLICA_SEPARATOR);
  if (i <= 0) return undefined;
  const tag = sessionId.slice(0, i);
  return REPLICA_ID_RE.test(tag) ? tag : undefined;
}
