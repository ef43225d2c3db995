/**
 * A small `fetch` over node:http/https with keep-alive pools, for the OpenAI SDK. It costs about half the CPU per
 * request of the built-in fetch, which matters when one process drives many concurrent episodes against local model
 * servers. Only what the SDK uses is supported: method, headers, string body, abort signal; compressed responses are
 * decoded.
 */
import http from 'node:http';
import https from 'node:https';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';

export const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: Infinity }),
  https: new https.Agent({ keepAlive: true, maxSockets: Infinity }),
};

export function decode(buf: Buffer, encoding: string | undefined): Buffer {
  switch ((encoding ?? '').trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(buf);
    case 'deflate':
      return inflateSync(buf);
    case 'br':
      return brotliDecompressSync(buf);
    default:
      return buf;
  }
}

export const nodeFetch: typeof fetch = (input, init) =>
  new Promise<Response>((resolve, reject) => {
    const href = typeof input === 'string' ? input : input instanceof URL ? input.href : (input as Request).url;
    const url = new URL(href);
    const secure = url.protocol === 'https:';
    if (!secure && url.protocol !== 'http:') {
      reject(new TypeError(`unsupported protocol ${url.protocol}`));
      return;
    }
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((v, k) => {
      headers[k] = v;
    });
    const body = init?.body;
    if (body !== undefined && body !== null && typeof body !== 'string') {
      reject(new TypeError('nodeFetch: only string bodies are supported'));
      return;
    }
    const req = (secure ? https : http).request(
      url,
      { method: init?.method ?? 'GET', headers, agent: secure ? agents.https : agents.http, signal: init?.signal ?? undefined },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          try {
            const h = new Headers();
            for (let i = 0; i < res.rawHeaders.length; i += 2) {
              const k = res.rawHeaders[i].toLowerCase();
              if (k === 'content-encoding' || k === 'content-length') continue;
              h.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
            }
            const status = res.statusCode ?? 0;
            const data = decode(Buffer.concat(chunks), res.headers['content-encoding']);
            resolve(new Response(status === 204 || status === 304 ? null : new Uint8Array(data), { status, statusText: res.statusMessage ?? '', headers: h }));
          } catch (err) {
            reject(err);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body ?? undefined);
  });
