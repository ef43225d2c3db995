/**
 * Core FHIR-side types shared by the store, the search engine, the HTTP server and the client.
 * Resources are plain JSON objects; we never re-serialise stored strings (timestamps stay byte-exact).
 */

/** A FHIR resource as JSON. `resourceType` is always present; `id` is assigned by the store when absent. */
export interface Resource {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string; source?: string; [k: string]: unknown };
  [key: string]: any;
}

/**
 * Pre-extracted search keys for a resource. The store indexes these instead of walking the JSON,
 * which lets bulk-generated worlds add resources lazily (materialised only when returned).
 * Every field is optional; a missing field means "no value for this parameter".
 */
export interface IndexKeys {
  /** Patient id the resource belongs to (bare id, e.g. `S6534835`). */
  patient?: string;
  /** Tokens for `code` as `system|code` (system may be empty string). */
  code?: string[];
  /** Tokens for `category` as `system|code`. */
  category?: string[];
  /** Tokens for `status`. */
  status?: string[];
  /**
   * The resource's primary date as a [low, high) range in epoch ms (date/authoredon/authored/performed).
   * A date-time with a time of day is an instant (`[t, t + 1000)` and `[t, t + 1)` are both fine: ranges up to
   * one minute wide are indexed as the instant `t`, as HAPI does); date-only values span their day/month/year.
   */
  date?: [number, number];
  /** Secondary date range, type-specific (MedicationRequest `authoredon` vs `date`). */
  date2?: [number, number];
  /** `meta.lastUpdated` in epoch ms (used by `_lastUpdated` search and `_sort=_lastUpdated`). */
  lastUpdated?: number;
  /**
   * Any further string-valued keys by parameter name (Patient name parts, identifier values, …).
   * For string parameters (`name`, `family`, `given`, `address`, `address-city`, …) give the raw text;
   * for token parameters (`identifier`, `telecom`, `gender`, `intent`, …) give `system|value` or a bare value.
   */
  strings?: Record<string, string[]>;
}

/** One HTTP-level request/response used by the harness, graders and external clients alike. */
export interface FhirHttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Absolute URL, e.g. `http://localhost:8080/fhir/Observation?patient=S1&code=MG&_format=json`. */
  url: string;
  body?: string;
  headers?: Record<string, string>;
}

export interface FhirHttpResponse {
  status: number;
  /** Exact Content-Type header value (the official harness parses JSON only for exactly `application/json`). */
  contentType: string;
  body: string;
  headers?: Record<string, string>;
}

/** Anything that can answer FHIR HTTP requests: the embedded server in-process, or a real server over the network. */
export type FhirTransport = (req: FhirHttpRequest) => Promise<FhirHttpResponse>;

/** The fixed clock of the MedAgentBench world. */
export const MEDAGENTBENCH_NOW = '2023-11-13T10:15:00+00:00';
/** The official `fhir_api_base` (with trailing slash). */
export const OFFICIAL_API_BASE = 'http://localhost:8080/fhir/';
