/**
 * End-state grading: what an episode left in the record, rebuilt from its log.
 *
 * The episode's accepted writes (each POST or PUT whose reply says it was accepted) are replayed, in order, into a
 * fresh scratch session on the same world. The store numbers a session's new resources from a fixed point and the
 * clock is fixed, so the replay reproduces the episode's session exactly: the same ids, versions and contents. The
 * grader then reads the final state through FHIR (`read`, `search`), and compares it with the base (what changed,
 * what was created, what else was written). Because only the log is needed, a run is graded again the same way
 * (`ehrgym grade`) long after its sessions are gone, on any server that speaks the same FHIR (the embedded one or
 * an `ehrgym serve`).
 */
import type { FhirTransport, Resource } from '../fhir/types.js';
import { POST_ACCEPTED_PREFIX, PUT_ACCEPTED_PREFIX, parseAction } from '../protocol/text.js';
import type { GraderContext, HistoryItem } from './types.js';

/** One accepted write of an episode, as the agent wrote it. */
export interface EpisodeWrite {
  method: 'POST' | 'PUT';
  /** The URL as written (under the advertised api_base). */
  url: string;
  /** The body text as written. */
  body: string;
  /** Index of the agent turn in the history. */
  turn: number;
}

/** What replaying one write gave. */
export interface ReplayedWrite extends EpisodeWrite {
  status: number;
  /** The written resource's type and id (from the Location header), when the server accepted it. */
  type?: string;
  id?: string;
  /** The version the write produced. */
  version?: string;
  /** The server's refusal (an OperationOutcome's diagnostics), when it refused. */
  error?: string;
}

/** The writes the environment accepted, in order. `put`: the `ehrgym` dialect (a PUT is an action). */
export function acceptedWrites(history: readonly HistoryItem[], opts: { put?: boolean } = {}): EpisodeWrite[] {
  const out: EpisodeWrite[] = [];
  for (let i = 0; i < history.length; i++) {
    const item = history[i]!;
    if (item.role !== 'agent') continue;
    const a = parseAction(item.content, opts);
    if (a.kind !== 'post' && a.kind !== 'put') continue;
    const reply = history[i + 1];
    const prefix = a.kind === 'post' ? POST_ACCEPTED_PREFIX : PUT_ACCEPTED_PREFIX;
    if (reply?.role !== 'user' || !reply.content.startsWith(prefix)) continue;
    out.push({ method: a.kind === 'post' ? 'POST' : 'PUT', url: a.url, body: a.body, turn: i });
  }
  return out;
}

/** A fresh scratch session on the world the episode ran on (the grader closes it). */
export interface ScratchSession {
  transport: FhirTransport;
  close(): Promise<void>;
}

/** The final record state an episode left, read through a scratch session holding its replayed writes. */
export class EndState {
  private readonly baseCache = new Map<string, Resource | undefined>();

  constructor(
    readonly apiBase: string,
    /** The replayed writes, in order. */
    readonly writes: readonly ReplayedWrite[],
    private readonly session: FhirTransport,
    private readonly base: FhirTransport,
  ) {}

  /** Resources the episode created (their final versions), optionally of one type, in the order written. */
  async created(type?: string): Promise<Resource[]> {
    const keys = new Set<string>();
    const out: Resource[] = [];
    for (const w of this.writes) {
      if (w.method !== 'POST' || !w.type || !w.id || (type && w.type !== type)) continue;
      const k = `${w.type}/${w.id}`;
      if (keys.has(k)) continue;
      keys.add(k);
      const r = await this.read(w.type, w.id);
      if (r) out.push(r);
    }
    return out;
  }

  /** Base resources the episode changed: the version before and the final one, optionally of one type. */
  async updated(type?: string): Promise<Array<{ before: Resource; after: Resource }>> {
    const created = new Set(this.writes.filter((w) => w.method === 'POST' && w.id).map((w) => `${w.type}/${w.id}`));
    const keys = new Set<string>();
    const out: Array<{ before: Resource; after: Resource }> = [];
    for (const w of this.writes) {
      if (w.method !== 'PUT' || !w.type || !w.id || (type && w.type !== type)) continue;
      const k = `${w.type}/${w.id}`;
      if (keys.has(k) || created.has(k)) continue;
      keys.add(k);
      const before = await this.readBase(w.type, w.id);
      const after = await this.read(w.type, w.id);
      if (before && after) out.push({ before, after });
    }
    return out;
  }

  /** Every resource the episode wrote (created or changed), as `Type/id`, in the order first written. */
  touched(): string[] {
    return [...new Set(this.writes.filter((w) => w.type && w.id).map((w) => `${w.type}/${w.id}`))];
  }

  /** A resource as the episode left it (its session's version), or undefined. */
  async read(type: string, id: string): Promise<Resource | undefined> {
    return readJson(this.session, `${this.apiBase}${type}/${id}`);
  }

  /** A resource as the world has it (before the episode). */
  async readBase(type: string, id: string): Promise<Resource | undefined> {
    const k = `${type}/${id}`;
    if (!this.baseCache.has(k)) this.baseCache.set(k, await readJson(this.base, `${this.apiBase}${k}`));
    return this.baseCache.get(k);
  }

  /** Every match of a search in the final state (all pages), e.g. `MedicationRequest?patient=S1&status=active`. */
  async search(query: string): Promise<Resource[]> {
    const out: Resource[] = [];
    let url: string | undefined = `${this.apiBase}${query}${query.includes('?') ? '&' : '?'}_count=1000`;
    for (let page = 0; url && page < 100; page++) {
      const b = (await readJson(this.session, url)) as { entry?: Array<{ resource: Resource }>; link?: Array<{ relation: string; url: string }> } | undefined;
      if (!b) break;
      for (const e of b.entry ?? []) out.push(e.resource);
      url = b.link?.find((l) => l.relation === 'next')?.url;
    }
    return out;
  }
}

async function readJson(fhir: FhirTransport, url: string): Promise<Resource | undefined> {
  const res = await fhir({ method: 'GET', url });
  if (res.status !== 200) return undefined;
  return JSON.parse(res.body) as Resource;
}

/** `…/<Type>/<id>/_history/<v>` (a Location header) → its parts. */
function locationParts(location: string): { type: string; id: string; version?: string } | undefined {
  const m = /\/([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([^/?#]+))?\/?$/.exec(location);
  return m ? { type: m[1]!, id: m[2]!, version: m[3] } : undefined;
}

function diagnostics(body: string): string {
  try {
    const o = JSON.parse(body) as { issue?: Array<{ diagnostics?: string }> };
    return o.issue?.[0]?.diagnostics ?? body.slice(0, 200);
  } catch {
    return body.slice(0, 200);
  }
}

/**
 * Replay an episode's accepted writes into a fresh scratch session and return its end state (close it when done).
 * Needs `ctx.openSession` (the harness, the environment server and `ehrgym grade` provide it).
 */
export async function replayEndState(
  ctx: GraderContext,
  history: readonly HistoryItem[],
  opts: { put?: boolean; session: string },
): Promise<{ state: EndState; close(): Promise<void> }> {
  if (!ctx.openSession) throw new Error('end-state grading needs a scratch session on the world (GraderContext.openSession)');
  const scratch = await ctx.openSession(opts.session);
  const replayed: ReplayedWrite[] = [];
  try {
    for (const w of acceptedWrites(history, opts)) {
      const res = await scratch.transport({ method: w.method, url: w.url, body: w.body, headers: { 'content-type': 'application/fhir+json' } });
      const r: ReplayedWrite = { ...w, status: res.status };
      if (res.status < 300) {
        const loc = locationParts(res.headers?.location ?? res.headers?.Location ?? '');
        if (loc) Object.assign(r, { type: loc.type, id: loc.id, version: loc.version });
      } else r.error = diagnostics(res.body);
      replayed.push(r);
    }
  } catch (e) {
    await scratch.close();
    throw e;
  }
  return { state: new EndState(ctx.apiBase, replayed, scratch.transport, ctx.fhir), close: () => scratch.close() };
}
