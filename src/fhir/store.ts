/**
 * The in-memory FHIR R4 store: an immutable, indexed base (filled by a world through StoreLoader, then frozen) plus
 * copy-on-write session overlays, one per agent episode, each holding only that episode's writes.
 *
 * - Base ids: Patient ids (and any id given by the loader) are kept; resources added without an id get the next
 *   numeric id. Session creates continue from (max numeric base id + 1) with a per-session counter, so an episode
 *   always gets the same ids whatever other sessions do.
 * - Dropping a session is a Map delete: the base is never written after `freeze()`, and the store keeps no other
 *   reference to a session, so everything it wrote is garbage once dropped.
 * - Search results list base matches first (insertion order), then the session's own resources.
 * - A session costs what it wrote: its overlay holds one small table per type written (ids in a Map, no dense array).
 * - Limits: at most `maxSessions` live sessions (opening one more is a 503), `maxSessionBytes` bytes of stored
 *   JSON per session (a write beyond it is a 429) and `maxTotalSessionBytes` across all live sessions (a write beyond
 *   it is a 503 until sessions are dropped); all answered as FhirError, so the server replies with an
 *   OperationOutcome. Reads and searches never open a session: naming an unknown session reads the base.
 */
import { createHash } from 'node:crypto';
import { FhirDecimal } from './decimal.js';
import { FhirError } from './errors.js';
import { extractKeys } from './extract.js';
import { parseSearch, type ParsedQuery } from './query.js';
import { R4_RESOURCE_TYPES } from './resource-types.js';
import { paramsFor } from './search-params.js';
import type { StoreLoader } from './store-api.js';
import { Interner, TypeTable, idKey, type LazySource } from './table.js';
import type { IndexKeys, Resource } from './types.js';

/** The store's default clock: MedAgentBench's NOW with HAPI's millisecond format. */
export const DEFAULT_STORE_CLOCK = '2023-11-13T10:15:00.000+00:00';

export const SESSION_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** Session used for writes that name no session (the base itself is never written after freeze). */
export const DEFAULT_SESSION = 'default';

/** Default cap on live sessions (`StoreOptions.maxSessions`). */
export const DEFAULT_MAX_SESSIONS = 10_000;

/** Default budget of stored JSON bytes per session (`StoreOptions.maxSessionBytes`): 16 MiB. */
export const DEFAULT_MAX_SESSION_BYTES = 16 * 2 ** 20;

/** Default budget of stored JSON bytes across all live sessions (`StoreOptions.maxTotalSessionBytes`): 1 GiB. */
export const DEFAULT_MAX_TOTAL_SESSION_BYTES = 2 ** 30;

export interface StoreOptions {
  /** Timestamp written to `meta.lastUpdated` of created resources and to Bundle `meta.lastUpdated`. */
  clock?: string;
  /**
   * Most sessions live at once (default 10,000; `Infinity` = no cap). Opening one more (a write in a new session)
   * throws FhirError 503 until a session is dropped. The session `default` counts like any other.
   */
  maxSessions?: number;
  /**
   * Most bytes one session may store (default 16 MiB; `Infinity` = no cap), counted as the UTF-8 length of each
   * stored resource's compact JSON. A write that would pass it throws FhirError 429 and stores nothing.
   */
  maxSessionBytes?: number;
  /**
   * Most bytes all live sessions may store together (default 1 GiB; `Infinity` = no cap), counted like
   * `maxSessionBytes`. A write that would pass it throws FhirError 503 and stores nothing; dropping sessions frees
   * their bytes. With the other two caps this bounds the memory writes can take, whatever clients do.
   */
  maxTotalSessionBytes?: number;
}

/** What a live session holds (`FhirStore.sessionInfo`). */
export interface SessionInfo {
  id: string;
  /** Resources created. */
  writes: number;
  /** Updates (new versions of base or session resources). */
  updates: number;
  /** Bytes counted against `maxSessionBytes`. */
  bytes: number;
  /** Rows of the session's own table per resource type (base rows are never copied into a session). */
  rows: Record<string, number>;
}

/**
 * A search hit: `handle >= 0` is a base position, `handle < 0` is position `-handle - 1` in the session table.
 */
export interface SearchResult {
  resourceType: string;
  query: ParsedQuery;
  total: number;
  handles: number[];
}

/** An episode's private overlay. */
export class Session {
  /** Creates so far (ids are `firstId + seq`). */
  seq = 0;
  /** Stored JSON bytes (see `StoreOptions.maxSessionBytes`). */
  bytes = 0;
  /** Updates so far (`FhirStore.update`). */
  updates = 0;
  /** Per resource type, the base ids this session has updated (its own version hides the base row). */
  shadowed: Map<string, Set<string>> | undefined;
  readonly interner = new Interner();
  readonly tables = new Map<string, TypeTable>();
  constructor(readonly id: string) {}

  /** Number of resources this session created. */
  get writes(): number {
    return this.seq;
  }
}

const STRING_PARAMS_CACHE = new Map<string, Set<string>>();
function stringParams(type: string): Set<string> {
  let s = STRING_PARAMS_CACHE.get(type);
  if (!s) {
    s = new Set();
    for (const def of Object.values(paramsFor(type))) if (def.kind === 'string') s.add(def.strings);
    STRING_PARAMS_CACHE.set(type, s);
  }
  return s;
}

/** Deep, deep-frozen copy of JSON data; FhirDecimal values (immutable) are kept as they are. */
function frozenCopy(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || v instanceof FhirDecimal) return v;
  if (Array.isArray(v)) {
    const a = new Array(v.length);
    for (let i = 0; i < v.length; i++) a[i] = frozenCopy(v[i]);
    return Object.freeze(a);
  }
  const out: Record<string, unknown> = {};
  for (const k in v) if (Object.hasOwn(v, k)) out[k] = frozenCopy((v as Record<string, unknown>)[k]);
  return Object.freeze(out);
}

/**
 * A resource as a write stores it: as sent (deep-frozen copies), with `id` and `meta {…sent meta, versionId,
 * lastUpdated}` placed first.
 */
function storedVersion(resource: Resource, id: string, versionId: string, clock: string): Resource {
  const stored: Resource = { resourceType: resource.resourceType, id, meta: undefined };
  for (const k in resource) {
    if (k !== 'resourceType' && k !== 'id' && k !== 'meta' && Object.hasOwn(resource, k)) stored[k] = frozenCopy(resource[k]);
  }
  const meta = resource.meta;
  const m = meta && typeof meta === 'object' ? (frozenCopy(meta) as Record<string, unknown>) : undefined;
  stored.meta = Object.freeze({ ...m, versionId, lastUpdated: clock });
  return Object.freeze(stored);
}

function checkLimit(name: string, n: number): number {
  if (n === Infinity || (Number.isSafeInteger(n) && n >= 1)) return n;
  throw new RangeError(`FhirStore: ${name} must be a positive integer or Infinity, got ${n}`);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

export class FhirStore implements StoreLoader {
  readonly clock: string;
  private readonly interner = new Interner();
  private readonly tables = new Map<string, TypeTable>();
  private readonly sessions = new Map<string, Session>();
  private isFrozen = false;
  private maxNumericId = 0;
  private baseCount = 0;
  private sessionCap: number;
  private sessionBytesCap: number;
  private totalBytesCap: number;
  private totalBytes = 0;

  constructor(opts: StoreOptions = {}) {
    this.clock = opts.clock ?? DEFAULT_STORE_CLOCK;
    this.sessionCap = checkLimit('maxSessions', opts.maxSessions ?? DEFAULT_MAX_SESSIONS);
    this.sessionBytesCap = checkLimit('maxSessionBytes', opts.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES);
    this.totalBytesCap = checkLimit('maxTotalSessionBytes', opts.maxTotalSessionBytes ?? DEFAULT_MAX_TOTAL_SESSION_BYTES);
  }

  /** Cap on live sessions (see `StoreOptions.maxSessions`); lowering it below the live count drops nothing. */
  get maxSessions(): number {
    return this.sessionCap;
  }

  set maxSessions(n: number) {
    this.sessionCap = checkLimit('maxSessions', n);
  }

  /** Budget of stored JSON bytes per session (see `StoreOptions.maxSessionBytes`); applies to later writes. */
  get maxSessionBytes(): number {
    return this.sessionBytesCap;
  }

  set maxSessionBytes(n: number) {
    this.sessionBytesCap = checkLimit('maxSessionBytes', n);
  }

  /** Budget of stored JSON bytes across all live sessions (see `StoreOptions.maxTotalSessionBytes`). */
  get maxTotalSessionBytes(): number {
    return this.totalBytesCap;
  }

  set maxTotalSessionBytes(n: number) {
    this.totalBytesCap = checkLimit('maxTotalSessionBytes', n);
  }

  /** Stored JSON bytes of all live sessions together. */
  get sessionBytes(): number {
    return this.totalBytes;
  }

  // ---------------------------------------------------------------- loading (StoreLoader)

  private table(type: string): TypeTable {
    let t = this.tables.get(type);
    if (!t) {
      if (!R4_RESOURCE_TYPES.has(type)) throw new Error(`unknown FHIR R4 resource type: ${type}`);
      t = new TypeTable(type, this.interner);
      this.tables.set(type, t);
    }
    return t;
  }

  private assertOpen(): void {
    if (this.isFrozen) throw new Error('FhirStore is frozen: base data cannot change; write through a session');
  }

  private noteId(id: string): void {
    const k = idKey(id);
    if (typeof k === 'number' && k > this.maxNumericId) this.maxNumericId = k;
  }

  add(resource: Resource): string {
    this.assertOpen();
    if (!resource || typeof resource.resourceType !== 'string') throw new Error('add: resource without resourceType');
    const t = this.table(resource.resourceType);
    let r = resource;
    if (r.id === undefined) {
      const { resourceType, ...rest } = r;
      r = { resourceType, id: String(this.maxNumericId + 1), ...rest };
    }
    const id = r.id as string;
    t.append(id, extractKeys(r), deepFreeze(r), stringParams(r.resourceType));
    this.noteId(id);
    this.baseCount++;
    return id;
  }

  addLazy(resourceType: string, id: string, keys: IndexKeys, materialize: LazySource): string {
    this.assertOpen();
    const t = this.table(resourceType);
    t.append(id, keys, materialize, stringParams(resourceType));
    this.noteId(id);
    this.baseCount++;
    return id;
  }

  /** Make the base immutable. Sessions can be opened only afterwards. Idempotent. */
  freeze(): this {
    if (!this.isFrozen) for (const t of this.tables.values()) t.seal();
    this.isFrozen = true;
    return this;
  }

  get frozen(): boolean {
    return this.isFrozen;
  }

  /** Number of base resources (all types). */
  get size(): number {
    return this.baseCount;
  }

  /** Base resource count of one type. */
  count(resourceType: string): number {
    return this.tables.get(resourceType)?.size ?? 0;
  }

  /** Resource types present in the base. */
  types(): string[] {
    return [...this.tables.keys()];
  }

  /** First id given to session creates. */
  get firstSessionId(): number {
    return this.maxNumericId + 1;
  }

  // ---------------------------------------------------------------- sessions

  /**
   * The session with this id, opened on first use. Throws FhirError 400 for a malformed id and 503 when
   * `maxSessions` sessions are live.
   */
  session(id: string): Session {
    let s = this.sessions.get(id);
    if (s) return s;
    this.checkOpen(id);
    s = new Session(id);
    this.sessions.set(id, s);
    return s;
  }

  /** Throws unless a session `id` (not live) may be opened now. */
  private checkOpen(id: string): void {
    if (!SESSION_ID_RE.test(id)) throw new FhirError(400, `Invalid session id "${id}" (expected [A-Za-z0-9_.-]{1,64})`);
    if (!this.isFrozen) throw new Error('FhirStore: freeze() the base before opening sessions');
    if (this.sessions.size >= this.sessionCap) {
      const msg = `Too many live sessions (limit ${this.sessionCap}): cannot open session "${id}"; drop finished sessions (DELETE /fhir/_session/{id}) and retry`;
      throw new FhirError(503, msg, [{ severity: 'error', code: 'throttled', diagnostics: msg }]);
    }
  }

  hasSession(id: string): boolean {
    return this.sessions.has(id);
  }

  /** What a live session holds, or undefined when no such session is live. */
  sessionInfo(id: string): SessionInfo | undefined {
    const s = this.sessions.get(id);
    if (!s) return undefined;
    const rows: Record<string, number> = {};
    for (const [type, t] of s.tables) rows[type] = t.size;
    return { id, writes: s.seq, updates: s.updates, bytes: s.bytes, rows };
  }

  /** Ids of the live sessions, in the order they were opened. */
  sessionIds(): string[] {
    return [...this.sessions.keys()];
  }

  /** Whether a session holds resources of `resourceType` (if not, its searches on that type equal the base's). */
  sessionHasType(id: string, resourceType: string): boolean {
    return this.sessions.get(id)?.tables.has(resourceType) ?? false;
  }

  /** Drop a session and everything it wrote. O(1). Returns whether it existed. */
  dropSession(id: string): boolean {
    const s = this.sessions.get(id);
    if (!s) return false;
    this.totalBytes -= s.bytes;
    return this.sessions.delete(id);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  // ---------------------------------------------------------------- reads and writes

  /** Whether `type` is a resource type this server answers for (any FHIR R4 type). */
  isKnownType(type: string): boolean {
    return R4_RESOURCE_TYPES.has(type);
  }

  /** Read by id: the session's own resources first, then the base. */
  read(resourceType: string, id: string, sessionId?: string): Resource | undefined {
    const s = sessionId === undefined ? undefined : this.sessions.get(sessionId);
    if (s) {
      const st = s.tables.get(resourceType);
      const p = st?.posOf(id);
      if (st && p !== undefined) return st.resourceAt(p);
    }
    const t = this.tables.get(resourceType);
    const p = t?.posOf(id);
    return t && p !== undefined ? t.resourceAt(p) : undefined;
  }

  /**
   * Create a resource inside a session (opened on first use). The body is stored as sent (compat), with the
   * server-assigned `id` and `meta {versionId: "1", lastUpdated: clock}` placed first. Returns the stored resource.
   * Throws FhirError 503 when the session is new and `maxSessions` are live, 429 when the session's stored JSON would
   * pass `maxSessionBytes`; a refused write opens no session, stores nothing and uses no id.
   */
  create(resource: Resource, sessionId: string = DEFAULT_SESSION): Resource {
    if (!resource || typeof resource !== 'object' || typeof resource.resourceType !== 'string') {
      throw new FhirError(400, 'Resource has no resourceType');
    }
    const resourceType = resource.resourceType;
    if (!R4_RESOURCE_TYPES.has(resourceType)) {
      throw new FhirError(400, `Unknown resource type "${resourceType}"`);
    }
    const live = this.sessions.get(sessionId);
    if (!live) this.checkOpen(sessionId);
    const seq = live ? live.seq : 0;
    const id = String(this.maxNumericId + 1 + seq);
    const stored = storedVersion(resource, id, '1', this.clock);
    const bytes = Buffer.byteLength(JSON.stringify(stored));
    const used = live ? live.bytes : 0;
    this.checkBudget(sessionId, resourceType, bytes, used);
    const s = live ?? this.session(sessionId);
    s.seq = seq + 1;
    s.bytes = used + bytes;
    this.totalBytes += bytes;
    let t = s.tables.get(resourceType);
    if (!t) s.tables.set(resourceType, (t = new TypeTable(resourceType, s.interner, { denseIds: false })));
    t.append(id, extractKeys(stored), stored, stringParams(resourceType));
    return stored;
  }

  /**
   * Update (FHIR `update`, PUT) a resource that exists in the session or the base, inside a session (opened on first
   * use): the body is stored as sent with `id` and `meta {versionId: previous + 1, lastUpdated: clock}`; the new
   * version hides the old one from reads and searches of this session only (the base and other sessions keep theirs).
   * `ifMatch` (the version an `If-Match` header names) must be the current version (412 otherwise). Throws FhirError
   * 404 for a resource that does not exist, and the session and budget errors of `create`.
   */
  update(resource: Resource, id: string, sessionId: string = DEFAULT_SESSION, ifMatch?: string): Resource {
    if (!resource || typeof resource !== 'object' || typeof resource.resourceType !== 'string') {
      throw new FhirError(400, 'Resource has no resourceType');
    }
    const resourceType = resource.resourceType;
    if (!R4_RESOURCE_TYPES.has(resourceType)) throw new FhirError(400, `Unknown resource type "${resourceType}"`);
    const current = this.read(resourceType, id, sessionId);
    if (!current) {
      throw new FhirError(404, `Resource ${resourceType}/${id} is not known (this server updates existing resources; create new ones with POST)`);
    }
    const version = Number(current.meta?.versionId ?? '1');
    const currentVersion = Number.isSafeInteger(version) && version >= 1 ? version : 1;
    if (ifMatch !== undefined && ifMatch !== String(currentVersion)) {
      const msg = `Version conflict: If-Match names version ${ifMatch} of ${resourceType}/${id}, the current version is ${currentVersion}`;
      throw new FhirError(412, msg, [{ severity: 'error', code: 'conflict', diagnostics: msg }]);
    }
    const live = this.sessions.get(sessionId);
    if (!live) this.checkOpen(sessionId);
    const stored = storedVersion(resource, id, String(currentVersion + 1), this.clock);
    const bytes = Buffer.byteLength(JSON.stringify(stored));
    const used = live ? live.bytes : 0;
    this.checkBudget(sessionId, resourceType, bytes, used);
    const s = live ?? this.session(sessionId);
    s.updates++;
    s.bytes = used + bytes;
    this.totalBytes += bytes;
    let t = s.tables.get(resourceType);
    if (!t) s.tables.set(resourceType, (t = new TypeTable(resourceType, s.interner, { denseIds: false })));
    if (t.posOf(id) !== undefined) t.replace(id, extractKeys(stored), stored, stringParams(resourceType));
    else {
      t.append(id, extractKeys(stored), stored, stringParams(resourceType));
      s.shadowed ??= new Map();
      let ids = s.shadowed.get(resourceType);
      if (!ids) s.shadowed.set(resourceType, (ids = new Set()));
      ids.add(id);
    }
    return stored;
  }

  /** Throw (storing nothing) when `bytes` more would pass the session's budget (429) or all sessions' budget (503). */
  private checkBudget(sessionId: string, resourceType: string, bytes: number, used: number): void {
    if (used + bytes > this.sessionBytesCap) {
      const msg = `Session "${sessionId}" is over its budget of ${this.sessionBytesCap} bytes: this ${resourceType} needs ${bytes} bytes and ${used} are used; drop the session or write less`;
      throw new FhirError(429, msg, [{ severity: 'error', code: 'too-costly', diagnostics: msg }]);
    }
    if (this.totalBytes + bytes > this.totalBytesCap) {
      const msg = `The server's sessions hold ${this.totalBytes} bytes of their budget of ${this.totalBytesCap}: this ${resourceType} needs ${bytes} bytes; retry after sessions are dropped`;
      throw new FhirError(503, msg, [{ severity: 'error', code: 'throttled', diagnostics: msg }]);
    }
  }

  // ---------------------------------------------------------------- search

  /**
   * Search `resourceType` with decoded query pairs (or a query string). Throws FhirError(400) on an unknown
   * parameter, modifier or malformed value, FhirError(404) on an unknown resource type.
   */
  search(resourceType: string, query: Array<[string, string]> | string | ParsedQuery, sessionId?: string): SearchResult {
    if (!R4_RESOURCE_TYPES.has(resourceType)) throw new FhirError(404, `Unknown resource type "${resourceType}"`);
    const q =
      typeof query === 'string' ? parseSearch(resourceType, [...new URLSearchParams(query)]) : Array.isArray(query) ? parseSearch(resourceType, query) : query;
    const base = this.tables.get(resourceType);
    let handles = base ? base.search(q.criteria) : [];
    const s = sessionId === undefined ? undefined : this.sessions.get(sessionId);
    const hidden = s?.shadowed?.get(resourceType);
    if (hidden !== undefined && base !== undefined) handles = handles.filter((h) => !hidden.has(base.idAt(h)));
    const st = s?.tables.get(resourceType);
    if (st) {
      const own = st.search(q.criteria);
      if (own.length) {
        handles = handles.slice();
        for (const p of own) handles.push(-p - 1);
      }
    }
    if (q.sort.length) handles = this.sortHandles(handles, q, base, st);
    return { resourceType, query: q, total: handles.length, handles };
  }

  private sortHandles(handles: number[], q: ParsedQuery, base?: TypeTable, st?: TypeTable): number[] {
    const n = handles.length;
    const keys = q.sort.map((k) => {
      const vals = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const h = handles[i];
        vals[i] = h >= 0 ? base!.sortValue(k.key, h) : st!.sortValue(k.key, -h - 1);
      }
      return vals;
    });
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => {
      for (let k = 0; k < keys.length; k++) {
        const va = keys[k][a];
        const vb = keys[k][b];
        const na = va !== va;
        const nb = vb !== vb;
        if (na || nb) {
          if (na && nb) continue;
          return na ? 1 : -1; // missing values last, whatever the direction
        }
        if (va !== vb) return q.sort[k].desc ? vb - va : va - vb;
      }
      return a - b;
    });
    return order.map((i) => handles[i]);
  }

  /** Id of a search hit. */
  idOf(resourceType: string, handle: number, sessionId?: string): string {
    return this.tableFor(resourceType, handle, sessionId).idAt(handle >= 0 ? handle : -handle - 1);
  }

  /** Materialise a search hit. */
  resourceOf(resourceType: string, handle: number, sessionId?: string): Resource {
    return this.tableFor(resourceType, handle, sessionId).resourceAt(handle >= 0 ? handle : -handle - 1);
  }

  private tableFor(resourceType: string, handle: number, sessionId?: string): TypeTable {
    const t = handle >= 0 ? this.tables.get(resourceType) : sessionId !== undefined ? this.sessions.get(sessionId)?.tables.get(resourceType) : undefined;
    if (!t) throw new Error(`stale search handle ${handle} for ${resourceType}`);
    return t;
  }

  /** Convenience: all matching resources, in result order. */
  searchResources(resourceType: string, query: Array<[string, string]> | string, sessionId?: string): Resource[] {
    const r = this.search(resourceType, query, sessionId);
    return r.handles.map((h) => this.resourceOf(resourceType, h, sessionId));
  }

  /**
   * Check that the index keys of base resources equal what the store extracts from their JSON (catches a bulk world
   * whose `addLazy` keys disagree with its materialised resources). Checks every `step`-th resource of each type;
   * returns one line per disagreement (empty = consistent).
   */
  auditKeys(step = 1): string[] {
    const problems: string[] = [];
    const norm = (k: IndexKeys) => {
      const tokens = (xs?: string[]) => (xs ? [...new Set(xs.map((x) => (x.includes('|') ? x : `|${x}`)))].sort() : []);
      const point = (r?: [number, number]) => (r ? [r[0], r[1] - r[0] <= 60_000 ? r[0] + 1 : r[1]] : null);
      const strings: Record<string, string[]> = {};
      for (const [n, v] of Object.entries(k.strings ?? {})) if (v.length) strings[n] = [...v].sort();
      return {
        patient: k.patient ?? null,
        code: tokens(k.code),
        category: tokens(k.category),
        status: tokens(k.status).map((t) => t.slice(t.indexOf('|') + 1)),
        date: point(k.date),
        date2: point(k.date2),
        lastUpdated: k.lastUpdated ?? null,
        strings,
      };
    };
    for (const [type, t] of this.tables) {
      for (let p = 0; p < t.size; p += Math.max(1, step)) {
        const stored = norm(t.keysAt(p));
        const extracted = norm(extractKeys(t.resourceAt(p)));
        for (const f of Object.keys(stored) as Array<keyof typeof stored>) {
          const a = JSON.stringify(stored[f]);
          const b = JSON.stringify(extracted[f]);
          if (a !== b) problems.push(`${type}/${t.idAt(p)} ${f}: indexed ${a}, JSON gives ${b}`);
        }
      }
    }
    return problems;
  }

  /**
   * SHA-256 over every base resource (type, id, JSON) in insertion order: equal fingerprints mean an unchanged base.
   * Materialises everything; meant for tests and audits, not hot paths.
   */
  fingerprint(): string {
    const h = createHash('sha256');
    for (const [type, t] of [...this.tables].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      for (let p = 0; p < t.size; p++) {
        h.update(type)
          .update('\u0000')
          .update(t.idAt(p))
          .update('\u0000')
          .update(JSON.stringify(t.resourceAt(p)))
          .update('\n');
      }
    }
    return h.digest('hex');
  }
}
