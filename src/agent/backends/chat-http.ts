/**
 * `POST {baseURL}/chat/completions` over node:http keep-alive pools, for the hot path of `openai:<model>` episodes.
 *
 * It sends a body that is already serialised and reads the reply as one buffer, skipping the SDK's per-request
 * option, header and logging machinery and the WHATWG Request/Response objects, which cost more CPU per call than the
 * rest of the harness when one process drives 64 episodes. The retry and error semantics are the `openai@6` SDK's:
 * retries on connection errors, timeouts, 408/409/429/5xx (an `x-should-retry` header overrides), waits from
 * `retry-after-ms` / `retry-after` when under 60 s or else 0.5 s × 2^n (≤ 8 s) with up to 25 % jitter; the errors
 * thrown are the SDK's own classes (`APIError.generate`, `APIConnectionError`, `APIConnectionTimeoutError`,
 * `APIUserAbortError`) with the same messages. Error bodies without an `error` key (vLLM's `{"object": "error", …}`)
 * or that are not JSON are wrapped as `{"error": {"message": <text>}}`, as `fetchKeepingErrorText` does.
 *
 * One deliberate difference: a 2xx reply that is not a chat completion (an HTML page, a body that is not JSON, JSON
 * without `choices`) throws `ModelEndpointError` (the SDK would hand back the text, which reads as an empty reply), so
 * a misconfigured endpoint stops the run instead of being scored as a model that answers nothing.
 */
import http from 'node:http';
import https from 'node:https';
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { VERSION as SDK_VERSION } from 'openai/version';
import { agents, decode } from './node-fetch.js';
import { describeNonCompletion, ModelEndpointError } from './endpoint-error.js';

export interface ChatEndpoint {
  /** e.g. `http://127.0.0.1:8000/v1` */
  baseURL: string;
  apiKey: string;
  /** Retries after the first attempt. */
  maxRetries: number;
  /** Per-attempt timeout (ms). */
  timeoutMs: number;
}

interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

class Timeout extends Error {}

/** One attempt. Rejects with the socket error, `Timeout`, or `APIUserAbortError`. */
function attempt(url: URL, headers: Record<string, string>, body: Buffer, timeoutMs: number, signal?: AbortSignal): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new APIUserAbortError());
      return;
    }
    const secure = url.protocol === 'https:';
    let settled = false;
    const finish = (err: unknown, value?: RawReply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(value!);
    };
    const req = (secure ? https : http).request(url, { method: 'POST', headers, agent: secure ? agents.https : agents.http }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => finish(err));
      res.on('aborted', () => finish(new Error('response aborted')));
      res.on('end', () => {
        try {
          finish(null, {
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: decode(Buffer.concat(chunks), res.headers['content-encoding']),
          });
        } catch (err) {
          finish(err);
        }
      });
    });
    const onAbort = () => {
      finish(new APIUserAbortError());
      req.destroy();
    };
    const timer = setTimeout(() => {
      finish(new Timeout('request timed out'));
      req.destroy();
    }, timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => finish(err));
    req.end(body);
  });
}

function header(h: http.IncomingHttpHeaders, name: string): string | null {
  const v = h[name];
  return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
}

/** The SDK's `shouldRetry`. */
function shouldRetry(r: RawReply): boolean {
  const x = header(r.headers, 'x-should-retry');
  if (x === 'true') return true;
  if (x === 'false') return false;
  return r.status === 408 || r.status === 409 || r.status === 429 || r.status >= 500;
}

/** The SDK's `retryRequest` wait. */
function retryDelay(headers: http.IncomingHttpHeaders | undefined, retriesRemaining: number, maxRetries: number): number {
  let ms: number | undefined;
  const afterMs = headers ? header(headers, 'retry-after-ms') : null;
  if (afterMs) {
    const v = parseFloat(afterMs);
    if (!Number.isNaN(v)) ms = v;
  }
  const after = headers ? header(headers, 'retry-after') : null;
  if (after && !ms) {
    const s = parseFloat(after);
    ms = !Number.isNaN(s) ? s * 1000 : Date.parse(after) - Date.now();
  }
  if (!(ms && 0 <= ms && ms < 60_000)) {
    const n = maxRetries - retriesRemaining;
    const sleepSeconds = Math.min(0.5 * 2 ** n, 8);
    ms = sleepSeconds * (1 - Math.random() * 0.25) * 1000;
  }
  return ms;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new APIUserAbortError());
      return;
    }
    const onAbort = () => {
      clearTimeout(t);
      reject(new APIUserAbortError());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The error body as the SDK would see it through `fetchKeepingErrorText`. */
function errorJson(text: string): Record<string, unknown> {
  try {
    const j = JSON.parse(text);
    if (j && typeof j === 'object' && 'error' in j) return j as Record<string, unknown>;
  } catch {
    // not JSON: wrapped below
  }
  return { error: { message: text } };
}

function toHeaders(raw: string[]): Headers {
  const h = new Headers();
  for (let i = 0; i < raw.length; i += 2) h.append(raw[i], raw[i + 1]);
  return h;
}

/**
 * Send one chat-completions request (`body` is the JSON text or its UTF-8 bytes) and return the parsed reply, retrying as the SDK does.
 * A success that is not a chat completion (not JSON, or without `choices`) throws `ModelEndpointError`.
 */
export async function postChatCompletion(ep: ChatEndpoint, body: string | Buffer, signal?: AbortSignal): Promise<Record<string, any>> {
  const url = new URL(ep.baseURL + (ep.baseURL.endsWith('/') ? 'chat/completions' : '/chat/completions'));
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new APIConnectionError({ cause: new TypeError(`unsupported protocol ${url.protocol}`) });
  const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  let retriesRemaining = ep.maxRetries;
  for (;;) {
    const headers: Record<string, string> = {
      accept: 'application/json',
      'content-type': 'application/json',
      'content-length': String(payload.length),
      'user-agent': `OpenAI/JS ${SDK_VERSION}`,
      'x-stainless-retry-count': String(ep.maxRetries - retriesRemaining),
      'x-stainless-timeout': String(Math.trunc(ep.timeoutMs / 1000)),
      authorization: `Bearer ${ep.apiKey}`,
    };
    let reply: RawReply;
    try {
      reply = await attempt(url, headers, payload, ep.timeoutMs, signal);
    } catch (err) {
      if (err instanceof APIUserAbortError || signal?.aborted) throw new APIUserAbortError();
      if (retriesRemaining > 0) {
        await sleep(retryDelay(undefined, retriesRemaining, ep.maxRetries), signal);
        retriesRemaining--;
        continue;
      }
      if (err instanceof Timeout) throw new APIConnectionTimeoutError();
      throw new APIConnectionError({ cause: err instanceof Error ? err : new Error(String(err)) });
    }
    if (reply.status >= 200 && reply.status < 300) {
      const mediaType = (header(reply.headers, 'content-type') ?? '').split(';')[0].trim().toLowerCase();
      const text = reply.body.toString('utf8');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new ModelEndpointError(describeNonCompletion(url.href, mediaType, text));
      }
      if (!parsed || typeof parsed !== 'object' || !Array.isArray((parsed as Record<string, unknown>).choices)) {
        const shown = text.trim().slice(0, 80);
        throw new ModelEndpointError(
          `the model endpoint answered JSON without "choices" (${url.href}: ${shown}${text.trim().length > 80 ? '…' : ''}); is --base-url an OpenAI-compatible /v1 API root?`,
        );
      }
      return parsed as Record<string, any>;
    }
    if (retriesRemaining > 0 && shouldRetry(reply)) {
      await sleep(retryDelay(reply.headers, retriesRemaining, ep.maxRetries), signal);
      retriesRemaining--;
      continue;
    }
    const text = reply.body.toString('utf8');
    if (reply.status >= 400) throw APIError.generate(reply.status, errorJson(text), undefined, toHeaders(reply.rawHeaders));
    // 1xx/3xx: the SDK's own reading of the body (fetchKeepingErrorText leaves these alone)
    let j: Record<string, unknown> | undefined;
    try {
      j = JSON.parse(text) as Record<string, unknown>;
    } catch {
      j = undefined;
    }
    throw APIError.generate(reply.status, j, j ? undefined : text, toHeaders(reply.rawHeaders));
  }
}
