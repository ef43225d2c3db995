/**
 * Episodes that write, driven through a load balancer in front of ehrgym replicas (test/scale-replicas.test.ts,
 * bench/scale.ts). Each episode opens a session, writes resources tagged with its own marker, reads them back and
 * closes; `read` reports every marker it saw, so an episode that reached another session (or lost its writes) shows.
 *
 * - `OrsEpisode`: ORS over HTTP+SSE (`create_session`, `create`, `medagentbench/call`, `delete`; `X-Session-ID`).
 * - `RpcEpisode`: OpenEnv JSON-RPC over `POST /mcp` (`openenv/session/create`, `tools/call`, `openenv/session/close`).
 * - `WsEpisode`: OpenEnv over the WebSocket `/ws` (reset, step, close).
 * - `FhirEpisode`: a FHIR session of `ehrgym serve` (`/fhir/_session/{id}/…` or the `X-Ehrgym-Session` header).
 */
import WebSocket from 'ws';
import { bpCall } from './env-oracle.js';

/** The patient the environment episodes write for (a replica patient). */
export const MRN = 'S6534835';

/** What a read-back saw: the markers of the resources it found, or the HTTP failure. */
export type ReadBack = { ok: true; markers: string[] } | { ok: false; status: number; body: string };

/** A failed request: its status and body. */
export class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body.slice(0, 300)}`);
    this.name = 'HttpFailure';
  }
}

/** A read whose request failed below HTTP (status 0, the error and its cause). */
const failed = (e: unknown): ReadBack => {
  const cause = (e as { cause?: { message?: string; code?: string } }).cause;
  return { ok: false, status: 0, body: `${(e as Error).message}${cause ? `: ${cause.code ?? ''} ${cause.message ?? ''}` : ''}` };
};

const markersIn = (text: string): string[] => text.match(/scale-mark-[A-Za-z0-9-]+-end/g) ?? [];

/** `scale-mark-<id>-end`: what an episode writes and looks for. */
export function marker(id: string): string {
  return `scale-mark-${id}-end`;
}

export interface ScaleEpisode {
  readonly kind: string;
  /** The session id once opened (the WebSocket's episodes have none the client sees). */
  sid: string | undefined;
  readonly marker: string;
  open(): Promise<void>;
  write(): Promise<void>;
  read(): Promise<ReadBack>;
  close(): Promise<void>;
}

async function ok(res: Response): Promise<string> {
  const body = await res.text();
  if (!res.ok) throw new HttpFailure(res.status, body);
  return body;
}

/** The data of the last `end` event of an SSE body (sse-starlette framing, CRLF line ends). */
function sseEnd(body: string): string {
  const events = body.split(/\r\n\r\n/).filter((e) => e.trim() !== '');
  const last = events.at(-1) ?? '';
  if (!/^event: end\r\n/.test(last)) throw new Error(`no end event in ${body.slice(0, 200)}`);
  return last
    .split('\r\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => l.slice(6))
    .join('\n');
}

/** The id the environment's POST answer names (`…/Observation/123/_history/1`). */
function createdId(text: string): string {
  const m = /Observation\/(\d+)\//.exec(text);
  if (!m) throw new Error(`no created id in ${text.slice(0, 200)}`);
  return m[1]!;
}

export class OrsEpisode implements ScaleEpisode {
  readonly kind = 'ors';
  sid: string | undefined;
  private id = '';
  constructor(
    private readonly base: string,
    readonly index: number,
    readonly marker: string,
  ) {}

  private async call(name: string, input: unknown): Promise<Response> {
    return fetch(`${this.base}/medagentbench/call`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': this.sid! },
      body: JSON.stringify({ name, input }),
    });
  }

  async open(): Promise<void> {
    const sse = await ok(await fetch(`${this.base}/create_session`, { method: 'POST' }));
    this.sid = /^event: task_id\r\ndata: (.+)\r\n/.exec(sse)?.[1];
    if (!this.sid) throw new Error(`create_session: ${sse}`);
    await ok(
      await fetch(`${this.base}/create`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-session-id': this.sid },
        body: JSON.stringify({ split: 'test', index: this.index % 300 }),
      }),
    );
  }

  async write(): Promise<void> {
    const out = JSON.parse(sseEnd(await ok(await this.call('observation_create', JSON.parse(bpCall(MRN, this.marker).arguments))))) as {
      ok: boolean;
      output?: { blocks: Array<{ text: string }> };
    };
    if (!out.ok) throw new Error(`observation_create: ${JSON.stringify(out)}`);
    this.id = createdId(out.output!.blocks[0]!.text);
  }

  async read(): Promise<ReadBack> {
    const res = await this.call('observation_search_vitals', { _id: this.id }).catch(failed);
    if (!(res instanceof Response)) return res;
    const body = await res.text();
    if (!res.ok) return { ok: false, status: res.status, body };
    return { ok: true, markers: markersIn(sseEnd(body)) };
  }

  async close(): Promise<void> {
    await ok(await fetch(`${this.base}/delete`, { method: 'POST', headers: { 'x-session-id': this.sid! } }));
  }
}

export class RpcEpisode implements ScaleEpisode {
  readonly kind = 'rpc';
  sid: string | undefined;
  private id = '';
  private n = 0;
  constructor(
    private readonly base: string,
    readonly index: number,
    readonly marker: string,
  ) {}

  private async rpc(method: string, params: Record<string, unknown>): Promise<Response> {
    return fetch(`${this.base}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++this.n, method, params }),
    });
  }

  private async result(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    const msg = JSON.parse(await ok(await this.rpc(method, params))) as { result?: Record<string, unknown>; error?: unknown };
    if (!msg.result) throw new Error(`${method}: ${JSON.stringify(msg.error)}`);
    return msg.result;
  }

  async open(): Promise<void> {
    this.sid = (await this.result('openenv/session/create', { split: 'test', index: this.index % 300 })).session_id as string;
  }

  async write(): Promise<void> {
    const r = await this.result('tools/call', { session_id: this.sid, name: 'observation_create', arguments: JSON.parse(bpCall(MRN, this.marker).arguments) });
    this.id = createdId(r.data as string);
  }

  async read(): Promise<ReadBack> {
    const res = await this.rpc('tools/call', { session_id: this.sid, name: 'observation_search_vitals', arguments: { _id: this.id } }).catch(failed);
    if (!(res instanceof Response)) return res;
    const body = await res.text();
    if (!res.ok) return { ok: false, status: res.status, body };
    const msg = JSON.parse(body) as { result?: { data: string }; error?: unknown };
    if (!msg.result) return { ok: false, status: res.status, body };
    return { ok: true, markers: markersIn(msg.result.data) };
  }

  async close(): Promise<void> {
    await this.result('openenv/session/close', { session_id: this.sid });
  }
}

export class WsEpisode implements ScaleEpisode {
  readonly kind = 'ws';
  sid: string | undefined;
  private ws: WebSocket | undefined;
  private id = '';
  private waiting: Array<(m: string | Error) => void> = [];
  /** The close code once the socket closed (1006: closed without a close frame, e.g. its replica died). */
  closeCode: number | undefined;
  constructor(
    private readonly base: string,
    readonly index: number,
    readonly marker: string,
  ) {}

  private send(msg: unknown): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.closeCode !== undefined) {
        reject(new Error(`socket closed (${this.closeCode})`));
        return;
      }
      this.waiting.push((m) => (m instanceof Error ? reject(m) : resolve(JSON.parse(m) as Record<string, unknown>)));
      this.ws.send(JSON.stringify(msg));
    });
  }

  async open(): Promise<void> {
    const ws = new WebSocket(`${this.base.replace(/^http/, 'ws')}/ws`);
    this.ws = ws;
    ws.on('message', (d) => this.waiting.shift()?.(d.toString()));
    ws.on('close', (code) => {
      this.closeCode = code;
      for (const w of this.waiting.splice(0)) w(new Error(`socket closed (${code})`));
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.on('error', () => undefined);
    const r = await this.send({ type: 'reset', data: { split: 'test', index: this.index % 300 } });
    if (r.type !== 'observation') throw new Error(`reset: ${JSON.stringify(r)}`);
    const state = await this.send({ type: 'state' });
    this.sid = String((state.data as { episode_id: string }).episode_id).split('/')[0];
  }

  private async step(name: string, args: unknown): Promise<string> {
    const r = await this.send({ type: 'step', data: { type: 'call_tool', tool_name: name, arguments: args } });
    const obs = (r.data as { observation?: { result?: { data?: string } } } | undefined)?.observation;
    if (r.type !== 'observation' || typeof obs?.result?.data !== 'string') throw new Error(`step ${name}: ${JSON.stringify(r)}`);
    return obs.result.data;
  }

  async write(): Promise<void> {
    this.id = createdId(await this.step('observation_create', JSON.parse(bpCall(MRN, this.marker).arguments)));
  }

  async read(): Promise<ReadBack> {
    try {
      return { ok: true, markers: markersIn(await this.step('observation_search_vitals', { _id: this.id })) };
    } catch (e) {
      return { ok: false, status: 0, body: (e as Error).message };
    }
  }

  async close(): Promise<void> {
    const ws = this.ws;
    if (!ws || this.closeCode !== undefined) return;
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    ws.send(JSON.stringify({ type: 'close' }));
    await closed;
  }
}

/** The Observation an episode of `ehrgym serve` writes: a code no world has, the marker as its value. */
function fhirObservation(markerText: string, n: number): string {
  return JSON.stringify({
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'urn:ehrgym:scale', code: 'scale-check' }] },
    valueString: markerText,
    note: [{ text: `write ${n}` }],
  });
}

export class FhirEpisode implements ScaleEpisode {
  readonly kind = 'fhir';
  constructor(
    /** The balancer's URL. */
    readonly base: string,
    /** A session id of the client's choosing. */
    public sid: string,
    readonly marker: string,
    /** `path`: `/fhir/_session/{id}/…`; `header`: `/fhir/…` with `X-Ehrgym-Session`. */
    readonly addressing: 'path' | 'header',
    /** Writes per episode. */
    readonly writes = 2,
  ) {}

  private url(rest: string): string {
    return this.addressing === 'path' ? `${this.base}/fhir/_session/${this.sid}/${rest}` : `${this.base}/fhir/${rest}`;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.addressing === 'header' ? { ...extra, 'x-ehrgym-session': this.sid } : extra;
  }

  async open(): Promise<void> {
    // a FHIR session opens with its first write
  }

  async write(): Promise<void> {
    for (let n = 0; n < this.writes; n++) {
      await ok(
        await fetch(this.url('Observation'), {
          method: 'POST',
          headers: this.headers({ 'content-type': 'application/fhir+json' }),
          body: fhirObservation(this.marker, n),
        }),
      );
    }
  }

  async read(): Promise<ReadBack> {
    const res = await fetch(this.url('Observation?code=urn:ehrgym:scale|scale-check&_count=100'), { headers: this.headers() }).catch(failed);
    if (!(res instanceof Response)) return res;
    const body = await res.text();
    if (!res.ok) return { ok: false, status: res.status, body };
    return { ok: true, markers: markersIn(body) };
  }

  async close(): Promise<void> {
    await ok(await fetch(`${this.base}/fhir/_session/${this.sid}`, { method: 'DELETE' }));
  }
}

/** Values at quantile q (0..1) of `xs` (nearest rank). */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
